import t from 'tap'
import { startStack } from '../helpers/stack.js'

// Session lifetime: idle and absolute timeouts come from server-side timestamps.

const CSRF = { 'x-csrf': '1' }
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

t.test('an idle session ends; its token set is gone', async (t) => {
  const stack = await startStack({ oauth: { idleTimeoutMs: 1500 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const sid = stack.sessionIdOf(browser)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  await sleep(1800)
  const res = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(res.status, 401)
  t.same(JSON.parse(res.body).error, 'unauthenticated')
  t.equal(await stack.app.tokenStore.get(sid), null, 'the token set was deleted')
  t.same(JSON.parse((await browser.get(`${stack.url}/auth/session`)).body), { authenticated: false })
})

t.test('an active session stays; the absolute timeout ends it anyway', async (t) => {
  const stack = await startStack({ oauth: { idleTimeoutMs: 3000, absoluteTimeoutMs: 5000 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const started = Date.now()
  // Active every 500 ms for 4 s: longer than the idle timeout, shorter than the absolute one.
  while (Date.now() - started < 4000) {
    t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'active: still signed in')
    await sleep(500)
  }
  while (Date.now() - started < 5300) await sleep(100)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 401, 'past the absolute timeout')
})

// The example reads sessions two ways: /api/* from the signed cookie (token-store's `sessionCookie`), /auth/*
// through @fastify/session. The same timeouts hold on both.
t.test('the timeouts hold on the @fastify/session routes too, and an ended session leaves no record', async (t) => {
  const stack = await startStack({ oauth: { idleTimeoutMs: 3000, absoluteTimeoutMs: 60_000 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const sid = stack.sessionIdOf(browser)
  const kv = (stack.app.tokenStore as unknown as { kv: { get (key: string): Promise<string | null> } }).kv
  const keys = (stack.app.tokenStore as unknown as { keys: { session (sid: string): string } }).keys
  const started = Date.now()
  // Active on /auth/session only (every 500 ms for 4 s, longer than the idle timeout): "last seen" moves there.
  while (Date.now() - started < 4000) {
    t.same(JSON.parse((await browser.get(`${stack.url}/auth/session`)).body).authenticated, true, 'active: signed in')
    await sleep(500)
  }
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'and the proxy sees the same session')
  await sleep(3300)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 401, 'idle: ended on the proxy route')
  t.equal(await kv.get(keys.session(sid)), null, 'the session record is gone, not only the token set')
  t.same(JSON.parse((await browser.get(`${stack.url}/auth/session`)).body), { authenticated: false })
})

// A session nobody comes back to is never seen ending by a request: its token set (the refresh token sealed in it)
// was kept for refreshTokenTtlMs (30 days) after its last save. It now goes with the session's absolute timeout.
t.test('a session left untouched: its token set leaves the store at the absolute timeout, without a request', async (t) => {
  const stack = await startStack({ oauth: { absoluteTimeoutMs: 1500 } })
  t.teardown(() => stack.close())
  const before = Date.now()
  const { browser } = await stack.login()
  const sid = stack.sessionIdOf(browser)
  const set = await stack.app.tokenStore.get(sid)
  t.ok(set?.notAfter !== undefined && set.notAfter >= before + 1500 && set.notAfter <= Date.now() + 1500,
    'the set carries its session\'s end')
  await sleep(1800)
  t.equal(await stack.app.tokenStore.get(sid), null, 'gone with the session, though no request came')
})
