import t from 'tap'
import { startStack } from '../helpers/stack.js'

// The security rules for logout.

const CSRF = { 'x-csrf': '1' }

t.test('logout is POST only', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const get = await browser.get(`${stack.url}/auth/logout`, CSRF)
  t.ok(get.status === 404 || get.status === 405, `GET: ${get.status}`)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'still signed in')
})

t.test('a request in flight during logout cannot bring the session back', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const cookie = browser.cookieHeader(stack.url) as string
  const sid = stack.sessionIdOf(browser)
  // The in-flight request will also need a refresh, which lands after the logout.
  const set = await stack.app.tokenStore.get(sid)
  if (set === null) throw new Error('no token set')
  await stack.app.tokenStore.save(sid, { ...set, expiresAt: Date.now() - 1000 })
  stack.mock.setLatency('token', 600)
  const inFlight = browser.get(`${stack.url}/api/user/info`, { ...CSRF, cookie })
  await new Promise((resolve) => setTimeout(resolve, 150))
  const out = await browser.post(`${stack.url}/auth/logout`, { ...CSRF, cookie })
  t.equal(out.status, 204)
  await inFlight
  stack.mock.setLatency('token', 0)
  t.equal(await stack.app.tokenStore.get(sid), null, 'no token set came back')
  const stored = await new Promise((resolve, reject) => stack.app.tokenStore.sessionStore.get(sid, (err, s) => err ? reject(err) : resolve(s)))
  t.notOk(stored, 'no session came back')
  const after = await browser.get(`${stack.url}/api/user/info`, { ...CSRF, cookie })
  t.equal(after.status, 401, 'the old cookie gets 401')
})
