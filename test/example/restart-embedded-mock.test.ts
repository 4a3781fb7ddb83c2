import t from 'tap'
import { main } from '../../example/server.js'
import { TestBrowser } from '../helpers/browser.js'
import { cleanupPrefix, connectRedis, redisUrl } from '../helpers/redis.js'
import { freePort } from '../helpers/free-port.js'

// The example with its embedded mock provider, REDIS_URL and a fixed SESSION_SECRET, restarted: the mock has
// forgotten every token it issued, so a browser signed in before the restart is signed out for /auth/session and
// /api/* alike (never "signed in" on one and reauth_required on the other).

const CSRF = { 'x-csrf': '1' }

t.test('after a restart, /auth/session and /api/* agree that a session signed in through the old mock is gone', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const port = await freePort()
  const env = (): Record<string, string> => ({
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    SESSION_SECRET: 'a-fixed-session-secret-of-at-least-32-chars',
    REDIS_URL: redisUrl(),
    LOG_LEVEL: 'silent',
    ENV_FILE: '/nonexistent/.env'
  })
  let server = await main(env())
  t.teardown(() => server.close())
  t.match(server.keyPrefix, /^aihubmix:mock-[0-9a-f-]{36}:$/, 'a key prefix of this run')
  cleanupPrefix(t, redis, server.keyPrefix as string)
  const browser = new TestBrowser()
  const start = await browser.get(`${server.url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  await browser.get(TestBrowser.location(back))
  t.match(JSON.parse((await browser.get(`${server.url}/auth/session`)).body), { authenticated: true })
  t.equal((await browser.get(`${server.url}/api/user/info`, CSRF)).status, 200, 'signed in')

  await server.close()
  server = await main(env())
  cleanupPrefix(t, redis, server.keyPrefix as string)
  const session = await browser.get(`${server.url}/auth/session`)
  const info = await browser.get(`${server.url}/api/user/info`, CSRF)
  t.same([session.status, JSON.parse(session.body)], [200, { authenticated: false }], '/auth/session: signed out')
  t.same([info.status, JSON.parse(info.body).error], [401, 'unauthenticated'], '/api/user/info: signed out too')

  const again = await browser.get(`${server.url}/auth/login`)
  const back2 = await browser.get(TestBrowser.location(again))
  await browser.get(TestBrowser.location(back2))
  t.equal((await browser.get(`${server.url}/api/user/info`, CSRF)).status, 200, 'and signs in again at once')
})
