import t from 'tap'
import { Redis } from 'ioredis'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'
import { startStack } from '../helpers/stack.js'
import { freePort } from '../helpers/free-port.js'

// Issue 5: stopping Redis gives 503 JSON with a clear code and no crash; starting it
// again heals by itself, and nothing is lost.

const CSRF = { 'x-csrf': '1' }

t.test('Redis stops, then starts again', async (t) => {
  const binary = redisServerOrSkip(t, 'Redis outage test')
  if (binary === undefined) return
  const server = await startRedisServer(binary, await freePort())
  t.teardown(() => server.close())
  // The client as the example configures it: fail fast while down, reconnect by itself.
  const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 1000, retryStrategy: () => 100 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))

  const stack = await startStack({ redis })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)

  await server.stop()
  for (const path of ['/api/user/info', '/api/user/topup']) {
    const res = await browser.get(`${stack.url}${path}`, CSRF)
    t.equal(res.status, 503, `${path} while Redis is down`)
    t.same(JSON.parse(res.body), { error: 'store_unavailable', message: 'Session storage is unavailable; try again shortly.' })
  }
  const session = await browser.get(`${stack.url}/auth/session`)
  t.equal(session.status, 503, '/auth/session while Redis is down')
  t.same(JSON.parse(session.body), { error: 'store_unavailable', message: 'Session storage is unavailable; try again shortly.' })
  // A browser navigation: /auth/login cannot read the session cookie's session, and says so as every sign-in
  // failure does, a redirect to the page with a code it shows in the user's language.
  const login = await browser.get(`${stack.url}/auth/login`)
  t.same([login.status, login.headers.location], [302, '/?error=store_unavailable'], '/auth/login while Redis is down')
  const popup = await browser.get(`${stack.url}/auth/login?mode=popup`)
  t.equal(popup.status, 200, 'in a popup: the popup page, which tells the opener')
  t.match(popup.body, /"error":"store_unavailable"/)
  // The page needs no store: it loads (and then shows what is wrong), the signed-in cookie notwithstanding.
  const page = await browser.get(`${stack.url}/`)
  t.same([page.status, String(page.headers['content-type'])], [200, 'text/html; charset=utf-8'], 'the page while Redis is down')
  t.equal(stack.mock.counts().userinfo, 2, 'no provider call without the store (one at sign-in, one above)')

  await server.start()
  const deadline = Date.now() + 10_000
  let healed = await browser.get(`${stack.url}/api/user/info`, CSRF)
  while (healed.status !== 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    healed = await browser.get(`${stack.url}/api/user/info`, CSRF)
  }
  t.equal(healed.status, 200, 'the same session works again: healed by itself, nothing lost')
  t.equal(JSON.parse(healed.body).username, 'user123')
})
