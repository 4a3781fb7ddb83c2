import t from 'tap'
import { connectRedis, uniquePrefix, cleanupPrefix, scanKeys, readStoredKeys } from '../helpers/redis.js'
import { startStack, findLeaks } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// Issue 5: two instances of the example app sharing one real Redis (127.0.0.1:6379 or REDIS_URL).

const CSRF = { 'x-csrf': '1' }

t.test('two instances sharing Redis', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('e2e')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ instances: 2, redis, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  const [a, b] = stack.peers.map((p) => ({ url: p.url })) as [{ url: string }, { url: string }]

  await t.test('a session made on one works on the other', async (t) => {
    const { browser } = await stack.login()
    const cookie = browser.cookieHeader(a.url) as string
    const onB = await browser.get(`${b.url}/api/user/info`, { ...CSRF, cookie })
    t.equal(onB.status, 200)
    t.equal(JSON.parse(onB.body).username, 'user123')
  })

  await t.test('50 concurrent requests split over both, on an expired token: exactly 1 refresh', async (t) => {
    const { browser } = await stack.login()
    const cookie = browser.cookieHeader(a.url) as string
    const sid = stack.sessionIdOf(browser)
    const set = await stack.app.tokenStore.get(sid)
    if (set === null) throw new Error('no token set')
    await stack.app.tokenStore.save(sid, { ...set, expiresAt: Date.now() - 1000 })
    stack.mock.resetCounts()
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      browser.get(`${i % 2 === 0 ? a.url : b.url}/api/user/info`, { ...CSRF, cookie })))
    t.same(all.map((r) => r.status), Array(50).fill(200))
    t.equal(stack.mock.counts().grants.refresh_token, 1)
  })

  await t.test('a login state consumed on one cannot be consumed on the other', async (t) => {
    const browser = new TestBrowser()
    const start = await browser.get(`${a.url}/auth/login`)
    const back = await browser.get(TestBrowser.location(start))
    const callback = new URL(TestBrowser.location(back))
    const cookie = browser.cookieHeader(a.url) as string
    const path = callback.pathname + callback.search
    const [first, second] = await Promise.all([
      browser.get(`${a.url}${path}`, { cookie }),
      browser.get(`${b.url}${path}`, { cookie })
    ])
    const locations = [first.headers.location, second.headers.location].sort()
    t.same(locations, ['/', '/?error=invalid_state'], 'exactly one of the two racing callbacks wins')
  })

  await t.test('restarting an instance loses no session', async (t) => {
    const { browser } = await stack.login()
    await stack.restart(0)
    t.equal((await browser.get(`${a.url}/api/user/info`, CSRF)).status, 200)
  })

  await t.test('logout on one ends the session on the other', async (t) => {
    const { browser } = await stack.login()
    const cookie = browser.cookieHeader(a.url) as string
    t.equal((await browser.post(`${b.url}/auth/logout`, { ...CSRF, cookie })).status, 204)
    const after = await browser.get(`${a.url}/api/user/info`, { ...CSRF, cookie })
    t.equal(after.status, 401)
  })

  await t.test('no token in plain text in Redis, and every key has a TTL', async (t) => {
    await stack.login()
    const { stored, ended } = await readStoredKeys(redis, prefix)
    t.ok(stored.length > 0, `${stored.length} keys`)
    if (ended.length > 0) t.comment(`ended between the scan and their read: ${ended.join(', ')}`)
    for (const { key, ttl, type } of stored) {
      t.ok(ttl > 0, `${key} has a TTL (${ttl} ms)`)
      t.ok(type === 'string' || type === 'hash', `${key}: a string or a hash (${type})`)
    }
    const values = stored.map(({ value }) => value)
    const keys = stored.map(({ key }) => key)
    const issued = stack.mock.issued()
    t.same(findLeaks([...issued.accessTokens, ...issued.refreshTokens, ...issued.codes, stack.clientSecret], [...values, ...keys]), [])
  })
})

t.test('REDIS_URL alone switches every store to Redis (through @fastify/redis)', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('env')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ env: { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  const keys = await scanKeys(redis, prefix)
  t.ok(keys.some((k) => k.includes('sess')), `the session is in Redis: ${keys.join(', ')}`)
  t.ok(keys.some((k) => k.includes('tok')), 'the token set is in Redis')
})
