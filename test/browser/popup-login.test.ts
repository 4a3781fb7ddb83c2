import t from 'tap'
import { launch, openPage, testIdText } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

t.test('one click signs in through a popup; the page shows name, e-mail and balance', async (t) => {
  const browser = await launch(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)

  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await page.getByTestId('user-info').isVisible(), false, 'signed out: no user info')
  t.equal(await page.getByTestId('error').isVisible(), false, 'no error on a first visit')
  t.same(watch.requests.filter((u) => u.startsWith(`${stack.url}/api/`)), [], 'the signed-out probe calls no /api route')
  t.equal(stack.mock.counts().authorize, 0)

  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  if (!popup.isClosed()) await popup.waitForEvent('close')
  t.ok(popup.isClosed(), 'the popup closed itself after signing in')
  await page.getByTestId('user-info').waitFor({ state: 'visible' })

  t.equal(await testIdText(page, 'username'), 'user123')
  t.equal(await testIdText(page, 'email'), 'user@example.com')
  t.equal(await testIdText(page, 'balance'), '750.00')
  t.equal(await page.getByTestId('login').isVisible(), false, 'the sign-in button is gone')
  t.equal(await page.getByTestId('error').isVisible(), false)
  t.equal(await page.locator('#usage-text').textContent(), '25% of your quota used')
  t.equal(page.url(), `${stack.url}/`, 'the page itself never navigated')

  const popupHops = watch.requests.filter((u) => u.includes('/auth/login') || u.includes('/authorize') || u.includes('/auth/callback'))
  t.equal(popupHops.length, 3, 'login, authorize, callback: one pass each')
  t.match(popupHops[0], `${stack.url}/auth/login?mode=popup`)
  t.match(popupHops[1], `${stack.mock.url}/api/oauth2/authorize?`)
  t.match(popupHops[2], `${stack.url}/auth/callback?`)
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'one code exchange')
  t.equal(stack.mock.counts().userinfo, 2, 'one userinfo call at sign-in (who signed in), one for the page')

  // A reload finds the session by itself: no second sign-in.
  await page.reload()
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'username'), 'user123')
  t.equal(stack.mock.counts().authorize, 1, 'no new authorization on reload')

  t.same(watch.consoleErrors, [], 'no console error')
  t.same(watch.pageErrors, [], 'no uncaught exception')
})
