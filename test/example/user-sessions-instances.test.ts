import t, { type Test } from 'tap'
import type { RedisStore } from '../../src/token-store/redis-store.js'
import type { TrackingCache } from '../../src/token-store/tracking-cache.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'

// A user's sessions across two example instances on one Redis: listed the same on both, and a session ended
// through one instance refused by the other at once, also with the Redis client-side cache on (the other
// instance has the session's values in its process memory until Redis announces the deletion).

const CSRF = { 'x-csrf': '1' }

interface Listed { id: string, current: boolean, createdAt: string, userAgent: string }

const shape = (list: Listed[]): unknown[] => list.map((s) => [s.id, s.current, s.createdAt, s.userAgent])

t.test('a session ended on one instance is refused on the other at once', async (t) => { await endedElsewhere(t, false) })
t.test('a session ended on one instance is refused on the other at once, with the client-side cache', async (t) => { await endedElsewhere(t, true) })

async function endedElsewhere (t: Test, cache: boolean): Promise<void> {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('us-e2e')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ instances: 2, redis, tokenStore: { keyPrefix: prefix, redisClientCache: cache } })
  t.teardown(() => stack.close())
  const [a, b] = stack.peers as [{ url: string, app: typeof stack.app }, { url: string, app: typeof stack.app }]
  const { browser: laptop } = await stack.login()
  const { browser: phone } = await stack.login()
  const phoneCookie = phone.cookieHeader(a.url) as string
  const laptopCookie = laptop.cookieHeader(a.url) as string

  const onA = JSON.parse((await laptop.get(`${a.url}/auth/sessions`, { cookie: laptopCookie })).body).sessions as Listed[]
  const onB = JSON.parse((await laptop.get(`${b.url}/auth/sessions`, { cookie: laptopCookie })).body).sessions as Listed[]
  t.equal(onA.length, 2)
  t.same(shape(onB), shape(onA), 'the same sessions on both instances')
  const phoneSession = onA.find((s) => !s.current) as Listed

  // The phone's session is in use on B (with the cache on, B now holds its values in memory).
  const kv = (b.app.tokenStore as unknown as { kv: RedisStore }).kv
  await (kv.clientCache as TrackingCache | undefined)?.sync()
  for (let i = 0; i < 3; i++) t.equal((await phone.get(`${b.url}/api/user/info`, { ...CSRF, cookie: phoneCookie })).status, 200)

  t.equal((await laptop.delete(`${a.url}/auth/sessions/${phoneSession.id}`, { ...CSRF, cookie: laptopCookie })).status, 204, 'ended through A')
  // With the cache on, every announcement Redis sent before this point is applied (the deletion's included).
  await (kv.clientCache as TrackingCache | undefined)?.sync()
  t.equal((await phone.get(`${b.url}/api/user/info`, { ...CSRF, cookie: phoneCookie })).status, 401, 'refused by B on the first request')
  t.same(JSON.parse((await phone.get(`${b.url}/auth/session`, { cookie: phoneCookie })).body), { authenticated: false })
  t.equal((await laptop.get(`${b.url}/api/user/info`, { ...CSRF, cookie: laptopCookie })).status, 200, 'the laptop goes on, on B')
  const after = JSON.parse((await laptop.get(`${b.url}/auth/sessions`, { cookie: laptopCookie })).body).sessions as Listed[]
  t.same(after.map((s) => s.current), [true], 'and B lists the laptop alone')

  // Everywhere, through B: A refuses the laptop at once too.
  const { browser: tablet } = await stack.login()
  const tabletCookie = tablet.cookieHeader(a.url) as string
  await (kv.clientCache as TrackingCache | undefined)?.sync()
  t.equal((await tablet.get(`${a.url}/api/user/info`, { ...CSRF, cookie: tabletCookie })).status, 200)
  t.equal((await laptop.post(`${b.url}/auth/logout?everywhere=1`, { ...CSRF, cookie: laptopCookie })).status, 204)
  const kvA = (a.app.tokenStore as unknown as { kv: RedisStore }).kv
  await (kvA.clientCache as TrackingCache | undefined)?.sync()
  t.equal((await tablet.get(`${a.url}/api/user/info`, { ...CSRF, cookie: tabletCookie })).status, 401, 'the tablet is refused by A')
  t.equal((await laptop.get(`${a.url}/api/user/info`, { ...CSRF, cookie: laptopCookie })).status, 401, 'the laptop too')
}
