import t from 'tap'
import type { Page } from 'playwright-core'
import { gate, isAuthorize, openPage, sharedBrowser, testIdText, waitForTestIdText } from '../helpers/chromium.js'
import { signedOutPage } from '../helpers/signed-in-page.js'
import { startStack, type Stack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

// Every failure of the sign-in ends in words a user understands, in [data-testid=error],
// with the sign-in button ready again; nothing from the address bar is ever echoed.

t.test('the first load says it is checking, then offers the sign-in', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page } = await openPage(t, browser)
  const held = gate()
  await context.route(`${stack.url}/auth/session`, async (route) => {
    await held.promise
    await route.continue()
  })
  await page.goto(`${stack.url}/`)
  await page.getByText('Checking whether you are signed in…').waitFor()
  t.equal(await page.getByTestId('login').isVisible(), false, 'no button before the answer')
  t.equal(await page.getByTestId('user-info').isVisible(), false)
  held.open()
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await page.locator('#status-text').textContent(), '', 'the checking message is gone')
})

t.test('/?error=<code> shows the code\'s message and cleans the address', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  const cases: Array<[string, string]> = [
    ['access_denied', 'You cancelled the sign-in at AIHubMix. Sign in again whenever you like.'],
    ['invalid_state', 'The sign-in link expired or was already used. Please sign in again.'],
    ['token_exchange_failed', 'AIHubMix could not complete the sign-in. Please try again in a moment.'],
    ['some_unknown_code', 'Something went wrong on our side. Please try again.'],
    ['toString', 'Something went wrong on our side. Please try again.'],
    ['__proto__', 'Something went wrong on our side. Please try again.']
  ]
  for (const [code, message] of cases) {
    await page.goto(`${stack.url}/?error=${encodeURIComponent(code)}`)
    await page.getByTestId('login').waitFor({ state: 'visible' })
    t.equal(await testIdText(page, 'error'), message, code)
    t.equal(page.url(), `${stack.url}/`, `${code}: the address is cleaned`)
  }
  t.same(watch.errorsAt(stack.url), [], 'no console error')
})

t.test('an error parameter carrying markup is never echoed', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  const hostile = '<img src=x onerror="document.title=\'pwned\'">'
  await page.goto(`${stack.url}/?error=${encodeURIComponent(hostile)}`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'error'), 'Something went wrong on our side. Please try again.')
  const html = await page.content()
  t.notMatch(html, 'onerror', 'nothing of it in the DOM')
  t.notMatch(html, '<img src="x"')
  t.equal(await page.title(), 'AIHubMix sign-in example')
  t.same(watch.pageErrors, [])
})

async function startPopupLogin (stack: Stack, page: Page): Promise<Page> {
  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  return opened
}

t.test('denying at the provider\'s consent screen, in the popup: "you cancelled"', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  // The popup stops once at the provider; then the user is asked, as without auto_authorize.
  stack.mock.setFault('authorize', 'non_json', { times: 1 })
  const popup = await startPopupLogin(stack, page)
  await popup.waitForURL(isAuthorize(stack.mock.url))
  const consent = new URL(popup.url())
  consent.searchParams.delete('auto_authorize')
  await popup.goto(consent.href)
  await popup.getByTestId('deny').click()
  if (!popup.isClosed()) await popup.waitForEvent('close')

  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'error'), 'You cancelled the sign-in at AIHubMix. Sign in again whenever you like.')
  t.equal(await page.getByTestId('login').isEnabled(), true, 'the sign-in button is ready again')
  t.equal(await page.getByTestId('user-info').isVisible(), false)
  t.equal(page.url(), `${stack.url}/`)
  t.equal(stack.mock.counts().token, 0, 'no token call')
  t.same(watch.errorsAt(stack.url), [], 'no console error on the app\'s pages')
})

t.test('the provider failing the code exchange, in the popup: a readable error', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page } = await openPage(t, browser)
  stack.mock.setFault('token', 'http500')
  const popup = await startPopupLogin(stack, page)
  if (!popup.isClosed()) await popup.waitForEvent('close')
  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'error'), 'AIHubMix could not complete the sign-in. Please try again in a moment.')
  t.equal(await page.getByTestId('login').isEnabled(), true)
  t.equal(stack.mock.counts().token, 1, 'one token call, refused')

  // Once the provider is back, the same button signs in.
  stack.mock.setFault('token', null)
  const again = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const second = await again
  if (!second.isClosed()) await second.waitForEvent('close')
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  t.equal(await page.getByTestId('error').isVisible(), false, 'the error is gone')
})

t.test('a sign-in that comes back with a bad state, in the popup: the page that opened it says so', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  // The popup stops at the provider; then a callback arrives whose state this browser never made.
  stack.mock.setFault('authorize', 'non_json', { times: 1 })
  const popup = await startPopupLogin(stack, page)
  await popup.waitForURL(isAuthorize(stack.mock.url))
  // Sent there by the page at the provider, as a provider's redirect would (a navigation typed
  // into the address bar would cut the popup off from its opener).
  const forged = `${stack.url}/auth/callback?code=forged&state=${'A'.repeat(43)}`
  await popup.evaluate((url) => { window.location.href = url }, forged).catch(() => null)
  if (!popup.isClosed()) await popup.waitForEvent('close')
  t.ok(popup.isClosed(), 'the popup closed itself')

  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'error'), 'The sign-in link expired or was already used. Please sign in again.')
  t.equal(await page.getByTestId('login').isEnabled(), true)
  t.equal(stack.mock.counts().token, 0, 'no token call')
  t.same(watch.errorsAt(stack.url), [], 'no console error on the app\'s pages')
})

// What users saw: old sign-in errors shown again, or in the wrong tab. A tab that once landed on /?error=<code> (a
// full-page sign-in that failed) kept announcing that error on the sign-in channel for its whole life, and the
// next sign-in window of that tab closed by hand showed the old error instead of "The sign-in window was closed
// before signing in finished."; a tab whose sign-in window had been closed once kept taking every sign-in error
// announced on the channel, whoever's it was. Now only a page in the sign-in window announces, for a few seconds,
// answers to a query go to the tab that asked, and a tab stops listening once it has called its window closed.
t.test('a popup closed by hand after an earlier full-page sign-in failed: the notice, not the old error', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, page } = await signedOutPage(t, browser)

  // A full-page sign-in (the popup fallback) that the provider fails: back at /?error=token_exchange_failed.
  stack.mock.setFault('token', 'http500', { times: 1 })
  await page.goto(`${stack.url}/auth/login?returnTo=%2F`)
  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.equal(await page.getByTestId('error').textContent(), 'AIHubMix could not complete the sign-in. Please try again in a moment.')

  // Later, in the same tab, a popup sign-in the user abandons: the window rests at the provider, then is closed.
  stack.mock.setFault('authorize', 'non_json', { times: 1 })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  await popup.waitForURL(isAuthorize(stack.mock.url))
  t.equal(await page.getByTestId('error').isVisible(), false, 'the click cleared the old error')
  await popup.close()
  // (While the window is open the button says "Show the sign-in window": its own words again once the page gave up.)
  await waitForTestIdText(page, 'login', 'Sign in with AIHubMix')
  await page.waitForTimeout(1000)
  t.equal(await page.locator('#status-text').textContent(), 'The sign-in window was closed before signing in finished.', 'the closed-window notice')
  t.equal(await page.getByTestId('error').isVisible(), false, 'no error: the old one is not shown again')
})

t.test('a sign-in failing in another tab\'s popup is not reported in a tab whose own popup was closed earlier', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, context, page: first } = await signedOutPage(t, browser)
  stack.mock.setFault('authorize', 'non_json', { times: 1 })
  const firstOpened = first.waitForEvent('popup')
  await first.getByTestId('login').click()
  const firstPopup = await firstOpened
  await firstPopup.waitForURL(isAuthorize(stack.mock.url))
  await firstPopup.close()
  await first.getByText('The sign-in window was closed before signing in finished.').waitFor()

  // The second tab's sign-in comes back with a state it never made (as an expired one does): its popup lands on
  // /?error=invalid_state, cut off from its opener, and announces the error.
  const second = await context.newPage()
  await second.goto(`${stack.url}/`)
  await second.getByTestId('login').waitFor({ state: 'visible' })
  stack.mock.setFault('authorize', 'non_json', { times: 1 })
  const secondOpened = second.waitForEvent('popup')
  await second.getByTestId('login').click()
  const secondPopup = await secondOpened
  await secondPopup.waitForURL(isAuthorize(stack.mock.url))
  await secondPopup.evaluate((url) => { window.location.href = url }, `${stack.url}/auth/callback?code=forged&state=${'A'.repeat(43)}`).catch(() => null)
  await second.getByTestId('error').waitFor({ state: 'visible' })
  await first.waitForTimeout(500)
  t.equal(await first.getByTestId('error').isVisible(), false, 'the first tab, which started no sign-in, shows no error')
})
