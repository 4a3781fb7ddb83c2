import t from 'tap'
import type { Page } from 'playwright-core'
import { openPage, sharedBrowser, type TestLike } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

// What users saw: with a provider whose sign-in page sends `Cross-Origin-Opener-Policy: same-origin` (common on
// identity providers' login pages), the page said "The sign-in window was closed before signing in finished."
// half a second after the window opened, while the user was still at the provider; and once they approved, the
// whole app opened inside the small sign-in window, while the page that started the sign-in kept offering
// "Sign in". Chromium puts such a popup in a new browsing context group: the opener's `popup.closed` turns true
// at once and the popup's `window.opener` is null for good. The popup page now tells the app's pages over a
// same-origin BroadcastChannel and closes once one took it; the page asks the server for a while before it
// calls a vanished window closed.
//
// The mock provider sends no COOP, and a route cannot catch the authorize request while it is a redirect's
// target, so /auth/login's 302 is turned into a script navigation (same Location, same cookies) and the
// provider's consent page (autoAuthorize off) gets the header.

const browserFor = sharedBrowser(t)

/** The example stack with its consent page behind COOP: same-origin, a page on it, and its sign-in window opened. */
async function coopSignIn (t: TestLike): Promise<{ page: Page, popup: Page } | undefined> {
  const browser = await browserFor(t)
  if (browser === undefined) return undefined
  const stack = await startStack({ oauth: { autoAuthorize: false } })
  t.teardown(() => stack.close())
  const { context, page } = await openPage(t, browser)
  await context.route((url) => url.pathname === '/auth/login', async (route) => {
    const res = await route.fetch({ maxRedirects: 0 })
    const headers = { ...res.headers() }
    const location = headers.location ?? ''
    delete headers.location
    await route.fulfill({ status: 200, headers: { ...headers, 'content-type': 'text/html' }, body: `<script>location.replace(${JSON.stringify(location)})</script>` })
  })
  await context.route((url) => url.pathname === '/api/oauth2/authorize', async (route) => {
    const res = await route.fetch({ maxRedirects: 0 })
    await route.fulfill({ response: res, headers: { ...res.headers(), 'cross-origin-opener-policy': 'same-origin' } })
  })
  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  await popup.getByTestId('approve').waitFor()
  return { page, popup }
}

t.test('a provider page with COOP: same-origin: the sign-in still finishes in the page that started it', async (t) => {
  const opened = await coopSignIn(t)
  if (opened === undefined) return
  const { page, popup } = opened
  await page.waitForTimeout(1500)
  t.not(await page.locator('#status-text').textContent(), 'The sign-in window was closed before signing in finished.',
    'the page does not call the window closed while the user is still at the provider')

  await popup.getByTestId('approve').click()
  await page.waitForTimeout(2500)
  t.equal(await page.evaluate(async () => (await (await fetch('/auth/session')).json()).authenticated), true, 'the server: signed in')
  t.equal(await page.getByTestId('user-info').isVisible(), true, 'the page that started the sign-in shows the account')
  t.equal(popup.isClosed(), true, 'the sign-in window has closed (it does not show the app itself)')
})

// A user who takes longer than the page waits for a vanished window (4 s: a password, a 2FA code), then denies: the
// page had called the window closed and dropped its failure, which no page took, so the sign-in window showed the
// whole app with the error, and never closed. The page that gave up on its window still takes that window's failure.
t.test('COOP, the user takes 6 s at the provider and denies: the page that started it shows the error, the window closes', async (t) => {
  const opened = await coopSignIn(t)
  if (opened === undefined) return
  const { page, popup } = opened
  await page.waitForTimeout(6000)
  await popup.getByTestId('deny').click()
  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.match(await page.getByTestId('error').textContent(), /denied|cancel/i, 'the page that started the sign-in shows the refusal')
  await popup.waitForEvent('close', { timeout: 5000 }).catch(() => {})
  t.equal(popup.isClosed(), true, 'the sign-in window has closed (it does not show the app itself)')
  t.equal(await page.getByTestId('login').isVisible(), true, 'and offers to sign in again')
})
