import t from 'tap'
import fastifyCookie from '@fastify/cookie'
import { redisServerOrSkip, startRedisServer, until } from '../helpers/redis-server.js'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import { freePort } from '../helpers/free-port.js'

// REDIS_URL names a Redis that is not running when the example starts: it starts anyway (token-store makes the
// client from the URL), says so in one log line naming the URL (never its password), answers 503 store_unavailable wherever the store is needed, and heals by
// itself once Redis comes up: sign-in and the API work, with no restart. (Redis failing later: redis-down.test.ts.)

const CSRF = { 'x-csrf': '1' }
const STORE_UNAVAILABLE = { error: 'store_unavailable', message: 'Session storage is unavailable; try again shortly.' }

t.test('Redis down at start: the server starts, one line names the URL, 503 store_unavailable, then heals by itself', async (t) => {
  const binary = redisServerOrSkip(t, 'Redis down at start')
  if (binary === undefined) return
  const port = await freePort()
  // Nothing listens on the port yet. A password in the URL must never reach the log.
  const secret = 'a-session-secret-of-at-least-32-characters'
  const stack = await startStack({ env: { REDIS_URL: `redis://:pass-must-not-be-logged@127.0.0.1:${port}`, SESSION_SECRET: secret } })
  t.teardown(() => stack.close())

  const logged = (): string[] => stack.logs.join('').split('\n').filter((line) => line.includes('token-store: Redis at'))
  t.equal(logged().length, 1, 'one line')
  t.match(logged()[0], `token-store: Redis at redis://127.0.0.1:${port} is unavailable (ECONNREFUSED): requests that need the store answer 503 store_unavailable until it is back; reconnecting in the background`)
  t.match(JSON.parse(logged()[0] as string), { level: 40 }, 'a warning')

  const browser = stack.browser()
  const session = await browser.get(`${stack.url}/auth/session`)
  t.same([session.status, JSON.parse(session.body)], [200, { authenticated: false }], '/auth/session without a cookie needs no store')
  // Starting a sign-in stores nothing (the pending login is a sealed cookie); finishing it needs the store (the
  // single-use marker, then the session), so the callback fails before the code is exchanged, as a navigation.
  const login = await browser.get(`${stack.url}/auth/login`)
  t.equal(login.status, 302, '/auth/login while Redis is down: the pending login needs no store')
  const back = await browser.get(TestBrowser.location(login))
  const callback = await browser.get(TestBrowser.location(back))
  t.same([callback.status, callback.headers.location], [302, '/?error=store_unavailable'], 'the callback while Redis is down')
  const stale = stack.browser()
  // A browser still holding a (validly signed) cookie from before: its session must be read from the store.
  stale.cookies.set(stack.url, new Map([['sid', encodeURIComponent(fastifyCookie.sign('a-session-id-from-before-the-restart', secret))]]))
  for (const [answer, what] of [[await stale.get(`${stack.url}/api/user/info`, CSRF), '/api/user/info'], [await stale.get(`${stack.url}/auth/session`), '/auth/session with a cookie']] as const) {
    t.equal(answer.status, 503, `${what} while Redis is down`)
    t.same(JSON.parse(answer.body), STORE_UNAVAILABLE)
  }
  t.equal(stack.mock.counts().token, 0, 'no provider call without the store')

  const server = await startRedisServer(binary, port)
  t.teardown(() => server.close())
  await until(async () => (await stale.get(`${stack.url}/auth/session`)).status === 200, 'the example to reach Redis by itself', { timeoutMs: 15_000, everyMs: 100 })
  t.same(JSON.parse((await stale.get(`${stack.url}/auth/session`)).body), { authenticated: false }, 'the stale cookie, read from Redis: unknown')

  const { browser: signedIn } = await stack.login()
  const info = await signedIn.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(info.status, 200, 'signed in and served, no restart')
  t.equal(JSON.parse(info.body).username, 'user123')
  t.equal(logged().length, 2, 'and one line when it is back')
  t.match(logged()[1], `token-store: Redis at redis://127.0.0.1:${port} is available again`)
  t.notMatch(stack.logs.join(''), 'pass-must-not-be-logged', 'the password never logged')
})
