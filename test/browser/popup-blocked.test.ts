import t from 'tap'
import { launch, openPage, testIdText } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

t.test('with popups blocked, sign-in takes the whole page to the provider and back, signed in', async (t) => {
  const browser = await launch(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page, watch } = await openPage(t, browser)
  // What a popup blocker does to window.open: no window.
  await context.addInitScript(() => { window.open = () => null })

  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  // A mark on this document: gone once the page has really navigated away and back.
  await page.evaluate(() => { document.documentElement.dataset.before = 'login' })
  const callback = page.waitForRequest((request) => new URL(request.url()).pathname === '/auth/callback')
  await page.getByTestId('login').click()
  t.equal(new URL((await callback).url()).origin, stack.url, 'the page itself went through the callback')
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  t.equal(await page.evaluate(() => document.documentElement.dataset.before), undefined, 'a new document')

  t.equal(page.url(), `${stack.url}/`, 'back on the page, no code or state left in the address')
  t.equal(await testIdText(page, 'username'), 'user123')
  t.equal(await testIdText(page, 'email'), 'user@example.com')
  t.equal(await testIdText(page, 'balance'), '750.00')
  t.equal(context.pages().length, 1, 'no window was opened')

  const login = watch.requests.filter((u) => u.startsWith(`${stack.url}/auth/login`))
  t.same(login, [`${stack.url}/auth/login?returnTo=%2F`], 'a redirect-mode login (no mode=popup), back to /')
  t.equal(stack.mock.counts().grants.authorization_code, 1)
  t.same(watch.errorsAt(stack.url), [], 'no console error')
})
