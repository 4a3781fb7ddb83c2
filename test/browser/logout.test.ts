import t from 'tap'
import { launch } from '../helpers/chromium.js'
import { signedInPage } from '../helpers/signed-in-page.js'

t.test('sign out ends the session for good and shows the sign-in button', async (t) => {
  const browser = await launch(t)
  if (browser === undefined) return
  const { stack, context, page, watch } = await signedInPage(t, browser)
  const signedIn = (await context.cookies(stack.url)).find((c) => c.name === 'sid')
  t.ok(signedIn, 'a session cookie while signed in')
  t.equal(signedIn?.httpOnly, true)
  t.equal(signedIn?.sameSite, 'Lax')

  const logout = page.waitForRequest(`${stack.url}/auth/logout`)
  await page.getByTestId('logout').click()
  const request = await logout
  t.equal(request.method(), 'POST')
  t.equal(await request.headerValue('x-csrf'), '1')
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await page.getByTestId('user-info').isVisible(), false)
  t.equal(await page.locator('#status-text').textContent(), 'You are signed out.')
  t.equal(await page.getByTestId('error').isVisible(), false)
  t.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-testid')), 'login', 'focus on the sign-in button')
  t.notOk((await context.cookies(stack.url)).find((c) => c.name === 'sid'), 'the cookie is cleared')

  // The app agrees, and a reload stays signed out.
  t.same(await page.evaluate(async () => (await fetch('/auth/session')).json()), { authenticated: false })
  await page.reload()
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await page.getByTestId('user-info').isVisible(), false)

  // The old cookie, put back, does not sign anyone in.
  await context.addCookies([signedIn!])
  t.same(await page.evaluate(async () => (await fetch('/auth/session')).json()), { authenticated: false }, 'the old cookie is dead')
  t.same(watch.errorsAt(stack.url), [], 'no console error')
})
