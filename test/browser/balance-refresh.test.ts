import t from 'tap'
import { gate, launch, testIdText, waitForTestIdText } from '../helpers/chromium.js'
import { signedInPage } from '../helpers/signed-in-page.js'

t.test('refresh balance shows the provider\'s new balance, with a loading state meanwhile', async (t) => {
  const browser = await launch(t)
  if (browser === undefined) return
  const { stack, context, page, watch } = await signedInPage(t, browser)
  t.equal(await testIdText(page, 'balance'), '750.00')
  const calls = stack.mock.counts().userinfo

  // The user spends at the provider: 400000 of 1000000 used.
  stack.mock.setUser({ quota: 1000000, used_quota: 400000 })
  t.equal(await testIdText(page, 'balance'), '750.00', 'nothing changes by itself')

  // Hold the app's answer to see the loading state.
  const held = gate()
  let routed = 0
  await context.route(`${stack.url}/api/user/info`, async (route) => {
    routed++
    await held.promise
    await route.continue()
  })
  await page.getByTestId('refresh-balance').click()
  await waitForTestIdText(page, 'refresh-balance', 'Refreshing…')
  t.equal(await page.getByTestId('refresh-balance').isDisabled(), true, 'no second click while it runs')
  t.equal(await page.locator('#status-text').textContent(), 'Refreshing your balance…')
  t.equal(await page.getByTestId('refresh-balance').getAttribute('aria-busy'), 'true')
  held.open()

  await waitForTestIdText(page, 'balance', '600.00')
  await waitForTestIdText(page, 'refresh-balance', 'Refresh balance')
  t.equal(await page.getByTestId('refresh-balance').isEnabled(), true)
  t.equal(await page.locator('#status-text').textContent(), '', 'the loading message is gone')
  t.match(await page.locator('#balance-note').textContent(), /^Balance changed, updated at /)
  t.equal(await page.locator('#usage-text').textContent(), '40% of your quota used')
  t.equal(routed, 1, 'one request from the page')
  t.equal(stack.mock.counts().userinfo, calls + 1, 'one userinfo call at the provider')
  await context.unroute(`${stack.url}/api/user/info`)

  // Refreshing again with no change says it is up to date.
  await page.getByTestId('refresh-balance').click()
  await page.locator('#balance-note', { hasText: /^Up to date as of / }).waitFor()
  t.equal(await testIdText(page, 'balance'), '600.00')
  t.equal(stack.mock.counts().userinfo, calls + 2)
  t.same(watch.errorsAt(stack.url), [], 'no console error')
})
