import t from 'tap'
import { launch, openPage, waitForTestIdText } from '../helpers/chromium.js'
import { findLeaks, startStack } from '../helpers/stack.js'

// A whole normal session (sign in through the popup, refresh the balance, open the top-up page,
// sign out) in one browser: no console error, no uncaught exception, and no token, code or
// secret anywhere the page's scripts or its user can read.

t.test('a normal session: no console error, and no token or secret reaches the browser', async (t) => {
  const browser = await launch(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page, watch } = await openPage(t, browser)
  // Every message any window of the app receives, as the page would see it.
  await context.addInitScript(() => {
    const seen: string[] = []
    Object.defineProperty(window, '__messages', { value: seen })
    window.addEventListener('message', (event) => { seen.push(`${event.origin} ${JSON.stringify(event.data)}`) })
  })
  // The sign-in window closes itself as soon as it has posted; hold that close until the test
  // has read the window (its DOM, storage and answer), then let it go.
  await context.addInitScript(() => {
    if (window.name !== 'aihubmix_login') return
    window.close = () => { document.documentElement.dataset.closeRequested = 'yes' }
  })

  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  await popup.locator('html[data-close-requested="yes"]').waitFor({ state: 'attached' })
  t.equal(new URL(popup.url()).pathname, '/auth/callback', 'the sign-in window rests on the callback page')
  const popupDom = await popup.content()
  const popupStorage = await popup.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }))
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  await popup.close()

  stack.mock.setUser({ used_quota: 500000 })
  await page.getByTestId('refresh-balance').click()
  await waitForTestIdText(page, 'balance', '500.00')

  const newTab = context.waitForEvent('page')
  await page.getByTestId('topup').click()
  const tab = await newTab
  await tab.waitForURL(`${stack.mock.url}/topup`)
  await tab.close()

  const signedInDom = await page.content()
  const storage = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }))
  t.same(storage, { local: 0, session: 0, cookie: '' }, 'no storage used, no cookie readable by script')

  await page.getByTestId('logout').click()
  await page.getByTestId('login').waitFor({ state: 'visible' })

  // What there was to find: the mock issued real values during this session.
  const issued = stack.mock.issued()
  t.equal(issued.accessTokens.length, 1, 'one access token was issued')
  t.equal(issued.refreshTokens.length, 1, 'one refresh token was issued')
  t.equal(issued.codes.length, 1, 'one code was issued')
  const secrets = stack.secrets()
  t.ok(secrets.includes(stack.clientSecret), 'the client secret is among the searched values')

  const responses = await watch.responses()
  const appResponses = responses.filter((r) => r.url.startsWith(`${stack.url}/`))
  t.ok(appResponses.filter((r) => r.body !== undefined).length >= 8, 'the app\'s answers were read')
  const callbackBody = appResponses.find((r) => new URL(r.url).pathname === '/auth/callback')?.body
  t.match(callbackBody, /aihubmix:login/, 'the sign-in window\'s answer is among them')
  const messages = await page.evaluate(() => (window as unknown as { __messages: string[] }).__messages)
  t.same(messages, [`${stack.url} {"type":"aihubmix:login","ok":true}`], 'the page got exactly one message, from its own origin, with no token')

  const haystacks = [
    signedInDom,
    await page.content(),
    popupDom,
    popupStorage,
    JSON.stringify(await page.evaluate(() => ({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie }))),
    ...messages,
    ...responses.map((r) => r.body ?? ''),
    ...appResponses.map((r) => JSON.stringify(r.headers)),
    page.url()
  ]
  t.same(findLeaks(secrets, haystacks), [], 'no token, code or secret in the DOM, storage, messages or any answer')
  // Script-readable cookies of every origin the browser visited: none.
  const readable = (await context.cookies()).filter((c) => !c.httpOnly)
  t.same(readable.map((c) => c.name), [], 'every cookie is HttpOnly')
  t.same(findLeaks(secrets, stack.logs), [], 'nor in the app\'s log lines')

  t.same(watch.errorsAt(stack.url), [], 'no console error or exception on the app\'s pages')
  t.same(watch.pageErrors, [], 'no uncaught exception anywhere')
})
