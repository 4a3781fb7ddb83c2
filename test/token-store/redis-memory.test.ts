import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { redisServerOrSkip, startRedisServer, until, type RedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { TestBrowser } from '../helpers/browser.js'
import { startComposedApp, type ComposedApp } from '../helpers/readme-composition.js'

// Redis full (maxmemory reached under noeviction): every write is refused, and users get 503 store_unavailable, as
// documented. Before, the log said "The token store is unavailable" hundreds of times and never why (the OOM reply
// was dropped), and a Redis that would EVICT the keys instead signed users out with no line at all.

interface Line { level: number, msg: string, error?: { code?: string, message?: string, cause?: { message?: string } }, err?: { cause?: { message?: string } } }

async function ownRedis (t: Test, what: string, args: string[] = []): Promise<{ server: RedisServer, admin: Redis } | undefined> {
  const binary = redisServerOrSkip(t, what)
  if (binary === undefined) return undefined
  const server = await startRedisServer(binary, await freePort(), args)
  t.teardown(() => server.close())
  const admin = new Redis(server.port, '127.0.0.1')
  t.teardown(() => admin.disconnect())
  return { server, admin }
}

async function composedOn (t: Test, server: RedisServer): Promise<ComposedApp> {
  const redis = new Redis(server.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))
  return await startComposedApp(t, { tokenStore: { redis, keyPrefix: 'memory-test:' } })
}

t.test('Redis full: the 503s are logged with their cause, and one line a minute says what to fix', async (t) => {
  const own = await ownRedis(t, 'the Redis-full line')
  if (own === undefined) return
  const composed = await composedOn(t, own.server)
  const logs = (): Line[] => composed.logs() as Line[]
  const alice = new TestBrowser()
  t.equal((await composed.signIn(alice)).headers.location, '/', 'signed in while Redis has room')

  // Full: any maxmemory under what Redis uses now, with the policy that refuses writes rather than evicting.
  await own.admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
  await own.admin.call('CONFIG', 'SET', 'maxmemory', '1')
  composed.mock.expireAccessTokens()
  // A refresh needs its lock written; twice, and a second browser's sign-in needs its session written.
  for (let i = 0; i < 2; i++) {
    const res = await alice.get(`${composed.url}/api/user/info`, { 'x-csrf': '1' })
    t.equal(res.status, 503, `a refresh with Redis full: 503 (${i + 1})`)
    t.equal(JSON.parse(res.body).error, 'store_unavailable')
  }
  const bob = new TestBrowser()
  t.match((await composed.signIn(bob)).headers.location, /error=store_unavailable/, 'a sign-in with Redis full: store_unavailable')

  const proxyLines = logs().filter((l) => l.msg === 'aihubmix proxy error')
  t.equal(proxyLines.length, 1, 'the first refused request logged at warn; the next, within 10 s, at debug')
  for (const line of proxyLines) {
    t.equal(line.error?.code, 'FST_AIHUBMIX_STORE_UNAVAILABLE')
    t.match(line.error?.cause?.message, /^OOM command not allowed/, 'with Redis\'s reply as its cause')
  }
  const routeLines = logs().filter((l) => l.msg === 'oauth-routes: request failed')
  t.ok(routeLines.length >= 1, 'the sign-in\'s failure logged')
  for (const line of routeLines) t.match(line.error?.cause?.message, /^OOM command not allowed/, 'with its cause too')

  const full = logs().filter((l) => /Redis refused a write because it is full/.test(l.msg))
  t.equal(full.length, 1, 'one "Redis is full" line for three refused requests')
  t.equal(full[0]?.level, 50, 'at error')
  t.match(full[0]?.msg, /503 store_unavailable.*Fix: raise maxmemory/)

  // Room again: served as before, nothing more said.
  await own.admin.call('CONFIG', 'SET', 'maxmemory', '0')
  t.equal((await alice.get(`${composed.url}/api/user/info`, { 'x-csrf': '1' })).status, 200, 'Redis with room: 200')
  t.equal(logs().filter((l) => /because it is full/.test(l.msg)).length, 1)
})

t.test('a Redis that evicts when full (maxmemory with an evicting policy) is warned about at start, once', async (t) => {
  for (const policy of ['allkeys-lru', 'volatile-ttl']) {
    const own = await ownRedis(t, 'the eviction warning', ['--maxmemory', '100mb', '--maxmemory-policy', policy])
    if (own === undefined) return
    const composed = await composedOn(t, own.server)
    const evicts = (): Line[] => (composed.logs() as Line[]).filter((l) => /maxmemory-policy/.test(l.msg))
    await until(async () => evicts().length > 0, `the ${policy} warning`, { timeoutMs: 5000 })
    t.equal(evicts().length, 1, `${policy}: one line`)
    t.equal(evicts()[0]?.level, 40, 'at warn')
    t.match(evicts()[0]?.msg, new RegExp(`maxmemory 104857600 bytes with maxmemory-policy ${policy}: once full, it evicts sessions and token sets.*Fix: maxmemory-policy noeviction \\(CONFIG SET maxmemory-policy noeviction, or a managed Redis.s parameter group`))
  }
})

t.test('no eviction warning for noeviction, or without maxmemory', async (t) => {
  const quiet = await ownRedis(t, 'the eviction warning', ['--maxmemory', '100mb', '--maxmemory-policy', 'noeviction'])
  if (quiet === undefined) return
  const unbounded = await ownRedis(t, 'the eviction warning', ['--maxmemory', '0', '--maxmemory-policy', 'allkeys-lru'])
  if (unbounded === undefined) return
  for (const own of [quiet, unbounded]) {
    const composed = await composedOn(t, own.server)
    // The check's INFO is sent at ready on the app's connection, before the sign-in's writes: answered first.
    const browser = new TestBrowser()
    t.equal((await composed.signIn(browser)).headers.location, '/', 'served')
    t.same((composed.logs() as Line[]).filter((l) => /maxmemory/.test(l.msg)), [], 'nothing said')
  }
})
