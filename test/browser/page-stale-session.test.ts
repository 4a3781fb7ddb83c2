import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { openPage, sharedBrowser, signInWithPopup, testIdText } from '../helpers/chromium.js'
import { signedInPage, signedOutPage } from '../helpers/signed-in-page.js'
import { startStack, type Stack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

async function authenticated (page: Page): Promise<boolean> {
  return await page.evaluate(async () => (await (await fetch('/auth/session')).json()).authenticated === true)
}

type OpenedPage = Awaited<ReturnType<typeof openPage>>

/** The page open in two browsers (a laptop and a phone) of one user, both signed in; undefined: no browser here. */
async function twoDevices (t: Test): Promise<{ stack: Stack, laptop: OpenedPage, phone: OpenedPage } | undefined> {
  const browser = await browserFor(t)
  if (browser === undefined) return undefined
  const stack = await startStack()
  t.teardown(() => stack.close())
  const laptop = await openPage(t, browser)
  const phone = await openPage(t, browser)
  await signInWithPopup(phone.page, stack.url)
  await signInWithPopup(laptop.page, stack.url)
  return { stack, laptop, phone }
}

// the session ends in another tab while the page is open; the user then clicks "Sign out everywhere"
// (for instance to kick out a phone they lost). The page must not claim every device is signed out when the
// phone is still signed in.
t.test('"Sign out everywhere" on a page whose session already ended elsewhere does not claim what it did not do', async (t) => {
  const devices = await twoDevices(t)
  if (devices === undefined) return
  const { stack, laptop, phone } = devices
  await laptop.page.getByTestId('session-item').nth(1).waitFor({ state: 'visible' })

  // A second tab of the laptop signs out (this device only).
  const otherTab = await laptop.context.newPage()
  await otherTab.goto(`${stack.url}/`)
  await otherTab.getByTestId('logout').click()
  await otherTab.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await authenticated(phone.page), true, 'the phone is still signed in')

  // Back in the first tab, still showing the account: "Sign out everywhere".
  await laptop.page.bringToFront()
  await laptop.page.getByTestId('logout-everywhere').click()
  await laptop.page.getByTestId('login').waitFor({ state: 'visible' })
  const status = await laptop.page.locator('#status-text').textContent()
  const error = await laptop.page.getByTestId('error').isVisible() ? await testIdText(laptop.page, 'error') : ''
  t.comment(`status: "${status}", error: "${error}"`)
  const phoneStill = await authenticated(phone.page)
  t.equal(phoneStill, true, 'nothing ended the phone\'s session (the server cannot know whose it was)')
  t.not(status, 'You are signed out on every device.', 'the page must not say every device is signed out while the phone still is signed in')
})

// a balance refresh that was in flight when the user signed out lands after the sign-out and puts the
// account back on the page of a signed-out browser.
t.test('a balance refresh answered after "Sign out" does not show the account again', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, page } = await signedInPage(t, browser)
  // A slow provider: the refresh reaches the app while signed in, and its answer comes back after the sign-out.
  stack.mock.setLatency('userinfo', 1500)
  const refreshed = page.waitForResponse((r) => r.url() === `${stack.url}/api/user/info`)
  await page.getByTestId('refresh-balance').click()
  await page.waitForTimeout(300)
  await page.getByTestId('logout').click()
  await page.locator('#status-text', { hasText: 'You are signed out.' }).waitFor()
  t.equal(await authenticated(page), false, 'signed out at the server')
  t.equal((await refreshed).status(), 200, 'the refresh was answered (it was asked while signed in)')
  await page.waitForTimeout(300)
  t.equal(await page.getByTestId('login').isVisible(), true, 'the sign-in button stays')
  t.equal(await page.getByTestId('user-info').isVisible(), false, 'the account of a signed-out browser is not shown again')
})

// ending another device's session while the store is failing leaves that button disabled and busy
// ("Signing out…") for good: nothing sets it back when the list could not be reloaded.
t.test('an "end session" that fails, followed by a list that cannot load, leaves no button stuck busy', async (t) => {
  const devices = await twoDevices(t)
  if (devices === undefined) return
  const { stack, laptop } = devices
  const end = laptop.page.getByTestId('end-session')
  await end.waitFor({ state: 'visible' })
  const unavailable = { status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'store_unavailable', message: 'Session storage is unavailable; try again shortly.' }) }
  await laptop.context.route(`${stack.url}/auth/sessions**`, async (route) => { await route.fulfill(unavailable) })
  await end.click()
  await laptop.page.getByTestId('error').waitFor({ state: 'visible' })
  await laptop.page.waitForTimeout(500)
  t.equal(await testIdText(laptop.page, 'error'), 'We cannot reach our session storage right now. Please try again in a moment.')
  // The outage is over: the user tries again.
  await laptop.context.unroute(`${stack.url}/auth/sessions**`)
  t.equal(await end.isEnabled(), true, 'the button can be clicked again')
  t.equal(await testIdText(laptop.page, 'end-session'), 'Sign out', 'and says what it does, not "Signing out…"')
})

// What users saw: a sign-in that finished while the page did not hold the sign-in window was never noticed. A
// reload while the window was still at work (the page believed the window's message only from the window it had
// opened, which a reload forgets), or a second tab, signed out, that the user came back to after signing in in the
// first (the page asked the server again only when it was signed in): the server said signed in, the page kept
// offering "Sign in". Now a sign-in message from any window of the page's origin, and a signed-out tab that comes
// back into view, make the page ask the server.
t.test('reloading the page while the sign-in window works: the page shows the account once it has signed in', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, page } = await signedOutPage(t, browser)
  // A slow provider: the token exchange takes 2 s, the user reloads the page meanwhile (F5).
  stack.mock.setLatency('token', 2000)
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  await page.waitForTimeout(500)
  await page.reload()
  const popup = await opened
  if (!popup.isClosed()) await popup.waitForEvent('close')
  await page.waitForTimeout(1500)
  t.equal(await authenticated(page), true, 'the server: signed in')
  t.equal(await page.getByTestId('user-info').isVisible(), true, 'the page shows the account')
  t.equal(await page.getByTestId('login').isVisible(), false, 'the page no longer offers "Sign in"')
})

t.test('a second tab, signed out, that the user comes back to after signing in in the first', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page: first } = await openPage(t, browser)
  const second = await context.newPage()
  await second.goto(`${stack.url}/`)
  await second.getByTestId('login').waitFor({ state: 'visible' })
  await first.bringToFront()
  await signInWithPopup(first, stack.url)
  await second.bringToFront()
  // Headless Chromium keeps every tab 'visible' and fires no visibilitychange on bringToFront: the event a real
  // browser fires when the user switches back to the tab is dispatched by hand (visibilityState is 'visible').
  await second.evaluate(() => { document.dispatchEvent(new Event('visibilitychange')) })
  await second.waitForTimeout(1000)
  t.equal(await second.evaluate(() => document.visibilityState), 'visible')
  t.equal(await authenticated(second), true, 'the server: signed in')
  t.equal(await second.getByTestId('user-info').isVisible(), true, 'the second tab shows the account')
})
