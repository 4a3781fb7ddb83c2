import t from 'tap'
import { sharedBrowser, testIdText, waitForTestIdText } from '../helpers/chromium.js'
import { signedInPage } from '../helpers/signed-in-page.js'

const browserFor = sharedBrowser(t)

t.test('the provider down while refreshing the balance: a readable error, the account stays', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, page } = await signedInPage(t, browser)

  const faults: Array<['http429' | 'http503' | 'http500' | 'non_json', string]> = [
    ['http429', 'AIHubMix is busy right now. Please try again in a moment.'],
    ['http503', 'AIHubMix gave an unexpected answer. Please try again in a moment.'],
    ['http500', 'AIHubMix gave an unexpected answer. Please try again in a moment.'],
    ['non_json', 'AIHubMix gave an unexpected answer. Please try again in a moment.']
  ]
  for (const [fault, message] of faults) {
    stack.mock.setFault('userinfo', fault)
    await page.getByTestId('refresh-balance').click()
    await waitForTestIdText(page, 'error', message)
    t.equal(await testIdText(page, 'error'), message, fault)
    t.equal(await page.getByTestId('user-info').isVisible(), true, `${fault}: still signed in`)
    t.equal(await testIdText(page, 'balance'), '750.00', `${fault}: the last known balance stays`)
    await waitForTestIdText(page, 'refresh-balance', 'Refresh balance')
    t.equal(await page.getByTestId('refresh-balance').isEnabled(), true, `${fault}: the button works again`)
  }

  // The provider is back: the next refresh clears the error.
  stack.mock.setFault('userinfo', null)
  stack.mock.setUser({ used_quota: 300000 })
  await page.getByTestId('refresh-balance').click()
  await waitForTestIdText(page, 'balance', '700.00')
  t.equal(await page.getByTestId('error').isVisible(), false, 'the error is gone')
})

t.test('access withdrawn at the provider: the next refresh asks the user to sign in again', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, page } = await signedInPage(t, browser)

  // The user revokes the app in the provider's user center.
  stack.mock.revokeGrants()
  await page.getByTestId('refresh-balance').click()
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'error'), 'Your access to AIHubMix was withdrawn or has expired. Please sign in again.')
  t.equal(await page.getByTestId('user-info').isVisible(), false, 'the account is hidden')
  t.equal(await page.getByTestId('login').isEnabled(), true)
  t.same(await page.evaluate(async () => (await fetch('/auth/session')).json()), { authenticated: false }, 'the session is over')
})

// What users saw: a signed-in user who opened (or reloaded) the page during a short provider hiccup was shown the
// signed-out page: any error of the first user info call, while the account was not shown yet, offered "Sign in",
// which ran a whole new sign-in (a second grant at the provider) instead of asking again. Only a 401 means signed
// out now; any other error stays on the screen with a "Try again" button.
t.test('a 503 from the provider on page load, signed in: the error and "Try again", not the signed-out page', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, page } = await signedInPage(t, browser)

  // The provider answers 503 to the page's user info call (and the proxy's one retry, if any), then recovers.
  stack.mock.setFault('userinfo', 'http503', { times: 2 })
  await page.reload()
  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.equal(await page.evaluate(async () => (await (await fetch('/auth/session')).json()).authenticated), true, 'the server: still signed in')
  t.equal(await page.getByTestId('login').isVisible(), false, 'no "Sign in" offered to a signed-in user')
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'one grant so far')

  // The provider is back: the user tries again.
  stack.mock.setFault('userinfo', null)
  await page.getByRole('button', { name: 'Try again' }).click()
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  t.equal(await page.getByTestId('error').isVisible(), false, 'the error is gone')
  t.equal(await page.getByRole('button', { name: 'Try again' }).isVisible(), false, 'and so is "Try again"')
  t.equal(await testIdText(page, 'balance'), '750.00')
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'still one grant: no new sign-in')
})
