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
