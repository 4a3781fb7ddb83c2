import t from 'tap'
import type { Page } from 'playwright-core'
import { isAuthorize, sharedBrowser, openPage, testIdText } from '../helpers/chromium.js'
import { startStack, type Stack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

// The opener believes a sign-in message only from its own origin and only from the window it
// opened. To hold the popup on a page of the provider's origin, the mock's authorize endpoint
// answers its `non_json` fault once: an HTML page at the provider's origin, no code issued.

async function popupRestingAtProvider (stack: Stack, page: Page): Promise<Page> {
  stack.mock.setFault('authorize', 'non_json', { times: 1 })
  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  await popup.waitForURL(isAuthorize(stack.mock.url))
  return popup
}

t.test('a sign-in message posted from the provider\'s origin inside the popup is ignored', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  const popup = await popupRestingAtProvider(stack, page)

  const from = await popup.evaluate(() => {
    window.opener.postMessage({ type: 'aihubmix:login', ok: true }, '*')
    return window.location.origin
  })
  t.equal(from, stack.mock.url, 'the forged message came from the popup, at another origin')
  // The page learns that the window closed without a (believed) message.
  await popup.close()
  await page.getByText('The sign-in window was closed before signing in finished.').waitFor()
  t.equal(await page.getByTestId('login').isEnabled(), true, 'the sign-in button works again')
  t.equal(await page.getByTestId('user-info').isVisible(), false, 'no user info')
  t.same(watch.requests.filter((u) => u.startsWith(`${stack.url}/api/`)), [], 'the forged message made no /api call')
  t.equal(stack.mock.counts().token, 0, 'no token call')
  t.same(watch.pageErrors, [])
})

t.test('synthetic message events: only the page\'s own origin, from its own popup, is believed', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  await popupRestingAtProvider(stack, page)

  const before = watch.requests.length
  await page.evaluate(() => {
    // The same browsing context the page opened, found by its name.
    const popupWindow = window.open('', 'aihubmix_login')
    const data = { type: 'aihubmix:login', ok: true }
    for (const origin of ['https://evil.example', 'null', '', 'http://127.0.0.1', window.location.origin + '.evil.example']) {
      window.dispatchEvent(new MessageEvent('message', { origin, source: popupWindow, data }))
    }
    // Its own origin, but not from the popup.
    window.dispatchEvent(new MessageEvent('message', { origin: window.location.origin, source: window, data }))
    window.dispatchEvent(new MessageEvent('message', { origin: window.location.origin, data }))
    // Its own origin and the popup, but not the sign-in message.
    window.dispatchEvent(new MessageEvent('message', { origin: window.location.origin, source: popupWindow, data: 'aihubmix:login' }))
    window.dispatchEvent(new MessageEvent('message', { origin: window.location.origin, source: popupWindow, data: { type: 'other', ok: true } }))
  })
  t.same(watch.requests.slice(before), [], 'no request followed any of them')
  t.equal(await testIdText(page, 'login'), 'Show the sign-in window', 'still waiting for the popup')
  t.equal(await page.getByTestId('user-info').isVisible(), false)

  // The control: the same event from the page's own origin and popup is believed (and, since
  // nobody signed in, the app answers 401 and the page says so).
  await page.evaluate(() => {
    const popupWindow = window.open('', 'aihubmix_login')
    window.dispatchEvent(new MessageEvent('message', { origin: window.location.origin, source: popupWindow, data: { type: 'aihubmix:login', ok: true } }))
  })
  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.ok(watch.requests.slice(before).includes(`${stack.url}/api/user/info`), 'a believed message loads the user')
  t.equal(await page.getByTestId('error').textContent(), 'You are signed out. Please sign in again.')
  t.same(watch.pageErrors, [])
})

t.test('closing the sign-in window by hand brings the sign-in button back with a notice', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  const popup = await popupRestingAtProvider(stack, page)
  t.equal(await testIdText(page, 'login'), 'Show the sign-in window', 'the button brings the open window back')
  t.match(await page.locator('#status').textContent(), /Finish signing in in the AIHubMix window/)

  // A second click while the window is open opens no second window.
  const pages = page.context().pages().length
  await page.getByTestId('login').click()
  t.equal(page.context().pages().length, pages, 'no second window')

  await popup.close()
  await page.getByText('The sign-in window was closed before signing in finished.').waitFor()
  t.equal(await page.getByTestId('login').isEnabled(), true)
  t.equal(await page.getByTestId('error').isVisible(), false, 'closing the window is not an error')
  t.equal(stack.mock.counts().token, 0, 'no token call')
  t.same(watch.errorsAt(stack.url), [], 'no console error on the app\'s pages')

  // And signing in afterwards works as usual.
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const second = await opened
  if (!second.isClosed()) await second.waitForEvent('close')
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  t.equal(await page.getByText('The sign-in window was closed').count(), 0, 'the notice is gone')
})
