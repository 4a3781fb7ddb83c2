import t from 'tap'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { TokenStoreOptionsError, createTokenStore } from '@fastify-aihubmix/token-store'
import { RedisStore } from '../../src/token-store/redis-store.js'
import { CLIENT_CACHE_FENCE_MS } from '../../src/token-store/tracking-cache.js'
import type { TrackingCache } from '../../src/token-store/tracking-cache.js'
import { cleanupPrefix, connectRedis, nextCommand, recordCommands, redisUrl, uniquePrefix } from '../helpers/redis.js'
import type { IoredisMajor } from '../helpers/redis.js'
import { KEY_A, buildApp, deferred, sleep } from '../helpers/token-store.js'
import type { T } from '../helpers/token-store.js'
import { startStack } from '../helpers/stack.js'
import { until } from '../helpers/redis-server.js'

// The Redis store's client-side cache (`redisClientCache`): values read by getMany are kept in the process and
// dropped when Redis announces a change (CLIENT TRACKING ... BCAST on the cache's own connection). Everything here
// runs against the real Redis; "another instance" is another connection writing the same keys.

const TRACKING_NAME = 'aihubmix-token-store-tracking'

interface Setup {
  /** The store under test (client cache on), on its own connection. */
  store: RedisStore
  /** The store's client. */
  client: Redis
  cache: TrackingCache
  /** The tracking connections the cache opened (duplicates of the client), newest last. */
  tracking: Redis[]
  /** Every command the store's client sent, as NAME. */
  commands: string[]
  /** Another instance: its own connection to the same Redis. */
  other: Redis
  prefix: string
}

async function setup (t: T, cacheOptions: { maxEntries?: number, maxAgeMs?: number } = {}, clientOptions: Record<string, unknown> = {}, major: IoredisMajor = 5): Promise<Setup | undefined> {
  const other = await connectRedis(t)
  if (other === undefined) return undefined
  const prefix = uniquePrefix('cc')
  cleanupPrefix(t, other, prefix)
  const client = await connectRedis(t, clientOptions, major) as Redis
  const commands = recordCommands(client, (name) => name)
  const tracking: Redis[] = []
  const duplicate = client.duplicate.bind(client)
  client.duplicate = ((override?: Record<string, unknown>) => {
    const connection = duplicate(override)
    if (override?.connectionName === TRACKING_NAME) tracking.push(connection)
    return connection
  }) as typeof client.duplicate
  const store = new RedisStore({
    client,
    lockChannel: prefix + 'lock-released',
    commandTimeoutMs: 5000,
    clientCache: { prefix, maxEntries: cacheOptions.maxEntries ?? 1000, maxAgeMs: cacheOptions.maxAgeMs ?? 60_000 }
  })
  t.teardown(() => store.close())
  const cache = store.clientCache as TrackingCache
  await cache.sync() // tracking is on
  return { store, client, cache, tracking, commands, other, prefix }
}

/**
 * A PING answered on the tracking connection just now, so the fence holds for the read that follows. The cache
 * serves only while a PING sent less than 50 ms ago is answered; on a loaded machine the heartbeat's last answer
 * can be older, and the cache then rightly reads Redis (the fence tests cover that). Reads asserted to be served
 * from the process come right after this.
 */
async function fenceFresh (cache: TrackingCache): Promise<void> {
  await cache.sync()
}

function mgets (commands: string[]): number {
  return commands.filter((c) => c === 'MGET').length
}

t.test('a repeated read is answered from the process, with no Redis command; absent keys too', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, cache, commands, prefix } = s
  await store.set(prefix + 'a', 'A', 60_000)
  commands.length = 0
  t.same(await store.getMany([prefix + 'a', prefix + 'none']), ['A', null])
  t.equal(mgets(commands), 1, 'the first read goes to Redis')
  commands.length = 0
  for (let i = 0; i < 5; i++) {
    await fenceFresh(cache)
    t.same(await store.getMany([prefix + 'a', prefix + 'none']), ['A', null])
  }
  t.same(commands, [], 'five more reads: not one command')
  await fenceFresh(cache)
  t.same(await store.getMany([prefix + 'a']), ['A'], 'any subset of cached keys is a hit')
  t.same(commands, [])
  t.same(await store.getMany([prefix + 'a', prefix + 'b']), ['A', null], 'one key not cached: the whole read goes to Redis')
  t.equal(mgets(commands), 1)
})

t.test('another instance\'s changes are announced: once the announcement is in, the new value is read', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, cache, other, prefix } = s
  const a = prefix + 'a'
  const b = prefix + 'b'
  await other.set(a, 'A1')
  t.same(await store.getMany([a, b]), ['A1', null])

  await other.set(a, 'A2')
  await cache.sync()
  t.same(await store.getMany([a, b]), ['A2', null], 'SET announced')

  await other.set(b, 'B1', 'PX', 60_000)
  await cache.sync()
  t.same(await store.getMany([a, b]), ['A2', 'B1'], 'a key created after a read of it as absent')

  await other.mset(a, 'A3', b, 'B2')
  await cache.sync()
  t.same(await store.getMany([a, b]), ['A3', 'B2'], 'both keys of one command')

  await other.del(a)
  await cache.sync()
  t.same(await store.getMany([a, b]), [null, 'B2'], 'DEL announced')

  await other.pexpire(b, 30)
  // An access expires the key at once if the active expiry cycle has not yet.
  await until(async () => await other.exists(b) === 0, 'the key to expire')
  await cache.sync()
  t.same(await store.getMany([a, b]), [null, null], 'the expiry announced')
})

t.test('with an ioredis 6 client (RESP3 by default) changes are announced too: the tracking connection speaks RESP2', async t => {
  // Over RESP3 Redis sends announcements as `invalidate` push frames, which ioredis 6 drops without an event: a
  // tracking connection in RESP3 would keep serving values another instance has changed.
  const s = await setup(t, {}, {}, 6)
  if (s === undefined) return
  const { store, cache, other, prefix } = s
  const a = prefix + 'a'
  await other.set(a, 'A1')
  t.same(await store.getMany([a]), ['A1'])
  t.same(await store.getMany([a]), ['A1'], 'cached')
  await other.set(a, 'A2')
  await cache.sync()
  t.same(await store.getMany([a]), ['A2'], 'SET announced')
  await other.del(a)
  await cache.sync()
  t.same(await store.getMany([a]), [null], 'DEL announced')
})

t.test('this process reads its own writes at once (no announcement awaited)', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, prefix } = s
  const k = prefix + 'k'
  const read = async (): Promise<string | null> => (await store.getMany([k]))[0] as string | null
  t.equal(await read(), null)
  await store.set(k, 'one', 60_000)
  t.equal(await read(), 'one', 'set')
  t.equal(await store.replace(k, 'two', 60_000), true)
  t.equal(await read(), 'two', 'replace')
  t.equal(await store.compareAndSet(k, 'two', 'three', 60_000), 'ok')
  t.equal(await read(), 'three', 'compareAndSet')
  t.equal(await store.take(k), 'three')
  t.equal(await read(), null, 'take')
  await store.set(k, 'four', 60_000)
  t.equal(await read(), 'four')
  await store.delete([k])
  t.equal(await read(), null, 'delete')
})

t.test('a read in flight while another instance writes never leaves the older value behind', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, client, cache, other, prefix } = s
  const k = prefix + 'k'
  // A large value read together with k makes the answer slow to arrive, so the announcement of a change made just
  // after the read ran (on the tracking connection) mostly arrives BEFORE the answer with the older value: the
  // order in which a cache that kept every answer would keep a stale value for good.
  const big = prefix + 'big'
  await other.set(big, 'x'.repeat(8 * 1024 * 1024), 'PX', 60_000)
  let stale = 0
  for (let i = 0; i < 20; i++) {
    await other.set(k, `old${i}`, 'PX', 60_000)
    await cache.sync()
    const sent = nextCommand(client, 'MGET')
    const reading = store.getMany([k, big])
    await sent // the MGET is written (the store sends one per tick): it reaches Redis first
    await other.set(k, `new${i}`, 'PX', 60_000)
    const [value] = await reading
    t.ok(value === `old${i}` || value === `new${i}`, 'the read itself answers either value')
    await cache.sync() // every announcement is in
    const [after] = await store.getMany([k])
    if (after !== `new${i}`) stale++
  }
  t.equal(stale, 0, 'after the announcements, every read sees the newest value')
})

t.test('the fence: with announcements held back, a change another instance completed is never served from the cache', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, cache, tracking, commands, prefix } = s
  // Another instance with the cache on: its writes complete CLIENT_CACHE_FENCE_MS after Redis answered them.
  const writerClient = await connectRedis(t) as Redis
  const writer = new RedisStore({ client: writerClient, lockChannel: prefix + 'lock-released', commandTimeoutMs: 5000, clientCache: { prefix, maxEntries: 1000, maxAgeMs: 60_000 } })
  t.teardown(() => writer.close())
  const k = prefix + 'k'
  await writer.set(k, 'v1', 60_000) // a creation: no fence (nothing to unlearn)
  await cache.sync() // its announcement is in, so it cannot drop what the next read keeps
  t.same(await store.getMany([k]), ['v1'])
  commands.length = 0
  await fenceFresh(cache)
  t.same(await store.getMany([k]), ['v1'])
  t.equal(mgets(commands), 0, 'cached')

  // Nothing more is read from the tracking connection: neither the announcement of the next change nor any
  // PING answer (as when the network or this process is slow to deliver them).
  const connection = tracking.at(-1) as Redis
  connection.stream.pause()
  const started = performance.now()
  await writer.set(k, 'v2', 60_000)
  t.ok(performance.now() - started >= CLIENT_CACHE_FENCE_MS, 'the write completes no sooner than the fence after it was sent')
  commands.length = 0
  t.same(await store.getMany([k]), ['v2'], 'the completed change is read, although its announcement has not arrived')
  t.equal(mgets(commands), 1, 'from Redis')
  t.equal(cache.fenced, false, 'no PING answered recently: the cache serves nothing')
  t.same(await store.getMany([k]), ['v2'])
  t.equal(mgets(commands), 2, 'and keeps reading from Redis')

  connection.stream.resume()
  await until(async () => cache.fenced, 'a PING answered again')
  t.same(await store.getMany([k]), ['v2'])
  commands.length = 0
  await fenceFresh(cache)
  t.same(await store.getMany([k]), ['v2'])
  t.equal(mgets(commands), 0, 'answers in again: cached again')
})

/** Counts the fences the store's writes wait for. */
function countFences (cache: TrackingCache): number[] {
  const fences: number[] = []
  const fence = cache.fence.bind(cache)
  cache.fence = () => {
    fences.push(1)
    return fence()
  }
  return fences
}

t.test('a write waits for the fence only when another instance could hold what it replaced or deleted', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, cache, other, prefix } = s
  const fences = countFences(cache)
  const k = prefix + 'k'
  await store.set(k, 'v1', 60_000)
  t.equal(fences.length, 0, 'creating a key: nothing to unlearn')
  await store.set(k, 'v1', 60_000)
  t.equal(fences.length, 0, 'writing the value it holds: nothing to unlearn')
  await store.set(k, 'v2', 60_000)
  t.equal(fences.length, 1, 'replacing a value: the fence')
  t.equal(await store.replace(prefix + 'none', 'x', 60_000), false)
  t.equal(fences.length, 1, 'SET XX of a missing key: no fence')
  t.equal(await store.replace(k, 'v3', 60_000), true)
  t.equal(fences.length, 2, 'SET XX that replaced: the fence')
  t.equal(await store.compareAndSet(k, 'not v3', 'v4', 60_000), 'changed')
  t.equal(await store.compareAndSet(prefix + 'none', 'v3', 'v4', 60_000), 'missing')
  t.equal(fences.length, 2, 'a compare-and-set that wrote nothing: no fence')
  t.equal(await store.compareAndSet(k, 'v3', 'v4', 60_000), 'ok')
  t.equal(fences.length, 3, 'one that replaced: the fence')
  await store.delete([prefix + 'none', prefix + 'none2'])
  t.equal(await store.take(prefix + 'none'), null)
  t.equal(fences.length, 3, 'deleting or taking keys that do not exist: no fence')
  t.equal(await store.take(k), 'v4')
  t.equal(fences.length, 4, 'taking a value: the fence')
  await store.set(k, 'v5', 60_000)
  await store.delete([k, prefix + 'none'])
  t.equal(fences.length, 5, 'deleting a value: the fence')

  const outside = 'outside:' + prefix + 'rec'
  t.teardown(async () => { await other.del(outside) })
  await store.set(outside, 'r', 60_000)
  await store.set(outside, 'r2', 60_000)
  t.equal(await store.take(outside), 'r2')
  t.equal(fences.length, 5, 'keys outside the tracked prefix (one-time records): never a fence')
  await store.set(outside, 'r3', 60_000)
  const { commands } = s
  commands.length = 0
  t.same(await store.getMany([outside]), ['r3'])
  t.same(await store.getMany([outside]), ['r3'])
  t.equal(mgets(commands), 2, 'and never kept (Redis would not announce their changes)')
})

t.test('through the token store: only session records and token sets are cached and fenced; a sign-out waits once', async t => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('cc-ts')
  cleanupPrefix(t, redis, prefix)
  const store = createTokenStore({ backend: 'redis', redis, keyPrefix: prefix, encryptionKeys: KEY_A, redisClientCache: true })
  t.teardown(() => store.close())
  const cache = ((store as unknown as { kv: RedisStore }).kv).clientCache as TrackingCache
  await cache.sync()
  const fences = countFences(cache)
  const set = { accessToken: 'a1', tokenType: 'Bearer' as const, expiresAt: Date.now() + 3_600_000, refreshToken: 'r1', scope: ['profile'], obtainedAt: Date.now() }
  await store.save('sid1', set)
  await store.addUserSession('u1', 'sid1', { userAgent: 'test', ttlMs: 3_600_000 })
  t.equal(fences.length, 0, 'a new session\'s token set and user link: nothing to unlearn')
  await store.save('sid1', { ...set, accessToken: 'a2' })
  t.equal(fences.length, 1, 'a token set replaced: the fence')
  await store.endSession('sid1')
  t.equal(fences.length, 2, 'a session ended: one fence (the user link is never cached, and not fenced)')
})

t.test('the heartbeat stops when the cache is idle: the first read after goes to Redis, the next are cached', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, cache, commands, prefix } = s
  const k = prefix + 'k'
  await store.set(k, 'v', 60_000)
  t.same(await store.getMany([k]), ['v'])
  commands.length = 0
  await fenceFresh(cache)
  t.same(await store.getMany([k]), ['v'])
  t.equal(mgets(commands), 0, 'cached')
  await sleep(1300) // no lookup for longer than the heartbeat's idle time: no PING sent since
  t.equal(cache.fenced, false, 'idle: no recent PING answer')
  t.same(await store.getMany([k]), ['v'])
  t.equal(mgets(commands), 1, 'the first read after the pause goes to Redis (and starts the heartbeat)')
  await until(async () => cache.fenced, 'a PING answered')
  commands.length = 0
  await fenceFresh(cache)
  t.same(await store.getMany([k]), ['v'])
  t.equal(mgets(commands), 0, 'then served from the cache again')
})

t.test('the tracking connection lost: everything dropped, nothing served until tracking is on again', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, cache, tracking, commands, other, prefix } = s
  const k = prefix + 'k'
  await other.set(k, 'v1', 'PX', 60_000)
  t.same(await store.getMany([k]), ['v1'])
  commands.length = 0
  await fenceFresh(cache)
  t.same(await store.getMany([k]), ['v1'])
  t.equal(mgets(commands), 0, 'cached')

  // Redis drops this cache's tracking connection (and no other test's).
  const connection = tracking.at(-1) as Redis
  // Not events.once: a reset socket may emit 'error' (ECONNRESET) before 'close', and once() would reject on it.
  const closed = new Promise<void>((resolve) => { connection.once('close', () => resolve()) })
  await other.call('CLIENT', ['KILL', 'ADDR', `${connection.stream.localAddress ?? ''}:${connection.stream.localPort ?? ''}`])
  await closed // after the cache's own listener, registered first
  t.equal(cache.live, false, 'the cache saw its connection close')
  t.equal(cache.size, 0, 'and dropped every entry')
  await other.set(k, 'v2', 'PX', 60_000) // announced to nobody
  commands.length = 0
  t.same(await store.getMany([k]), ['v2'], 'read from Redis')
  t.same(await store.getMany([k]), ['v2'])
  t.equal(mgets(commands), 2, 'nothing cached while tracking is off')

  await cache.sync() // reconnects on its own
  t.equal(cache.live, true, 'tracking again')
  t.same(await store.getMany([k]), ['v2'])
  commands.length = 0
  await fenceFresh(cache)
  t.same(await store.getMany([k]), ['v2'])
  t.equal(mgets(commands), 0, 'cached again')
  await other.set(k, 'v3', 'PX', 60_000)
  await cache.sync()
  t.same(await store.getMany([k]), ['v3'], 'and announcements arrive on the new connection')
})

t.test('FLUSHDB (of any database) drops every entry', async t => {
  const s = await setup(t)
  if (s === undefined) return
  const { store, cache, commands, prefix } = s
  await store.set(prefix + 'k', 'v', 60_000)
  await store.getMany([prefix + 'k'])
  t.equal(cache.size, 1)
  // Database 9 holds nothing of any test: flushing it disturbs nobody, and Redis still announces "everything".
  const db9 = await connectRedis(t, { db: 9 })
  if (db9 === undefined) return
  await db9.flushdb()
  await cache.sync()
  t.equal(cache.size, 0, 'a flush is announced as "everything changed"')
  commands.length = 0
  t.same(await store.getMany([prefix + 'k']), ['v'])
  t.equal(mgets(commands), 1)
})

t.test('maxAgeMs: an entry is served that long at most; maxEntries: the oldest go first', async t => {
  const s = await setup(t, { maxAgeMs: 80, maxEntries: 4 })
  if (s === undefined) return
  const { store, cache, commands, prefix } = s
  const keys = (i: number): string[] => [`${prefix}s${i}:sess`, `${prefix}s${i}:tok`]
  await store.getMany(keys(0))
  commands.length = 0
  await fenceFresh(cache)
  await store.getMany(keys(0))
  t.equal(mgets(commands), 0, 'fresh: served')
  await sleep(120)
  await store.getMany(keys(0))
  t.equal(mgets(commands), 1, 'older than maxAgeMs: read again')

  await store.getMany(keys(1))
  await store.getMany(keys(2))
  t.equal(cache.size, 4, 'bounded by maxEntries')
  commands.length = 0
  await fenceFresh(cache)
  await store.getMany(keys(2))
  await fenceFresh(cache)
  await store.getMany(keys(1))
  t.equal(mgets(commands), 0, 'the two newest reads are kept')
  await store.getMany(keys(0))
  t.equal(mgets(commands), 1, 'the oldest was dropped')
})

t.test('a client with an ioredis keyPrefix: announced full names are matched', async t => {
  const s = await setup(t, {}, { keyPrefix: 'kp:' })
  if (s === undefined) return
  const { store, cache, other, prefix } = s
  cleanupPrefix(t, other, 'kp:' + prefix)
  await store.set(prefix + 'k', 'v1', 60_000)
  t.same(await store.getMany([prefix + 'k']), ['v1'])
  t.equal(await other.get('kp:' + prefix + 'k'), 'v1', 'stored under the client prefix')
  await other.set('kp:' + prefix + 'k', 'v2', 'PX', 60_000)
  await cache.sync()
  t.same(await store.getMany([prefix + 'k']), ['v2'])
})

// INFO tells the cache which server a connection is on (its run_id): without it, it cannot tell that the tracking
// connection and the store's client are on one server (after a failover they may not be).
for (const refused of ['client', 'info']) {
  t.test(`Redis refuses ${refused === 'client' ? 'CLIENT TRACKING (an ACL without CLIENT)' : 'INFO (an ACL without it)'}: one warning, every value read from Redis`, async t => {
    const admin = await connectRedis(t)
    if (admin === undefined) return
    const user = `aihubmix-test-no${refused}-${process.pid}`
    const password = 'pw-' + process.pid
    await admin.call('ACL', ['SETUSER', user, 'on', '>' + password, '~*', '&*', '+@all', '-' + refused])
    t.teardown(async () => { await admin.call('ACL', ['DELUSER', user]) })
    // No ready check: ioredis' own is an INFO, refused too (it goes on, and says so on the console).
    const client = await connectRedis(t, { username: user, password, enableReadyCheck: false }) as Redis
    const commands = recordCommands(client, (name) => name)
    const warnings: string[] = []
    const warned = deferred()
    const log = { warn: (_obj: unknown, msg: string) => { warnings.push(msg); warned.resolve() }, debug: () => {} }
    const prefix = uniquePrefix('cc')
    cleanupPrefix(t, admin, prefix)
    const store = new RedisStore({
      client,
      lockChannel: prefix + 'lock-released',
      commandTimeoutMs: 5000,
      clientCache: { prefix, maxEntries: 100, maxAgeMs: 60_000 },
      log: log as never
    })
    t.teardown(() => store.close())
    await store.set(prefix + 'k', 'v', 60_000)
    await warned.promise // the cache asked for tracking and was refused
    commands.length = 0
    for (let i = 0; i < 3; i++) t.same(await store.getMany([prefix + 'k']), ['v'])
    t.equal(mgets(commands), 3, 'every read goes to Redis')
    t.equal(store.clientCache?.live, false)
    t.equal(warnings.length, 1, 'warned once')
    t.match(warnings[0], /refused client-side caching/)
  })
}

t.test('the plugin starts with the cache tracking; Redis down at start delays ready by redisCommandTimeoutMs at most, with a warning', async t => {
  const up = await connectRedis(t)
  if (up === undefined) return
  const logs: Array<Record<string, unknown>> = []
  const prefix = uniquePrefix('cc')
  await buildApp(t, { redis: up, keyPrefix: prefix, redisClientCache: true }, { logs })
  t.same(logs.filter((l) => l.level === 40), [], 'tracking by the time the app is ready: no warning')

  const port = await closedPort()
  const down = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
  down.on('error', () => {})
  t.teardown(() => down.disconnect())
  const downLogs: Array<Record<string, unknown>> = []
  // buildApp awaits ready(): it returns although Redis never answers.
  await buildApp(t, { redis: down, keyPrefix: prefix, redisClientCache: true, redisCommandTimeoutMs: 300 }, { logs: downLogs })
  t.match(downLogs.filter((l) => l.level === 40).map((l) => l.msg), [/client-side cache is not tracking yet/])
})

t.test('options: redisClientCache needs the Redis backend and a single Redis', async t => {
  t.throws(() => createTokenStore({ encryptionKeys: KEY_A, redisClientCache: true }), {
    name: TokenStoreOptionsError.name,
    message: /redisClientCache.*Redis backend/
  })
  t.throws(() => createTokenStore({ encryptionKeys: KEY_A, redisClientCache: { maxEntries: 0 } } as never), /redisClientCache\.maxEntries/)
  t.throws(() => createTokenStore({ encryptionKeys: KEY_A, redisClientCache: { size: 5 } } as never), /redisClientCache/)
  // A Cluster client (ioredis marks it `isCluster`) is refused when the store is made.
  const clusterLike = { isCluster: true, call: async () => null, duplicate: () => clusterLike }
  t.throws(() => createTokenStore({ encryptionKeys: KEY_A, redis: clusterLike as never, redisClientCache: true }), {
    message: /redisClientCache.*not a Cluster/
  })
})

t.test('end to end, the example with REDIS_CLIENT_CACHE=on, two instances: a sign-out on one is refused on the other', async t => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('cc-stack')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ instances: 2, env: { REDIS_URL: redisUrl(), REDIS_CLIENT_CACHE: 'on' }, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  type Peer = { app: { tokenStore: { kv: RedisStore } }, url: string }
  const [a, b] = stack.peers as unknown as [Peer, Peer]
  const cookie = browser.cookieHeader(a.url) as string
  const headers = { 'x-csrf': '1', cookie }
  for (const peer of [a, b]) {
    const commands = recordCommands(peer.app.tokenStore.kv.client as Redis, (name) => name) // the client token-store made from REDIS_URL
    const cache = peer.app.tokenStore.kv.clientCache as TrackingCache
    // Every announcement of the sign-in's writes is in, so none can drop what the first read keeps.
    await cache.sync()
    t.equal((await browser.get(`${peer.url}/api/user/info`, headers)).status, 200)
    t.same(commands, ['MGET'], 'the first read goes to Redis')
    commands.length = 0
    for (let i = 0; i < 3; i++) {
      await fenceFresh(cache)
      t.equal((await browser.get(`${peer.url}/api/user/info`, headers)).status, 200)
    }
    t.same(commands, [], 'three more requests without a Redis command')
  }
  t.equal((await browser.post(`${a.url}/auth/logout`, headers)).status, 204)
  // No waiting for the sign-out's announcements: the sign-out completed after the fence, so the other instance
  // either has the announcements or no recent PING answer, and reads the session from Redis.
  t.equal((await browser.get(`${b.url}/api/user/info`, headers)).status, 401, 'the old cookie is refused on the other instance')
})

t.test('two example instances with the cache, 50 concurrent requests on an expired and refused token: exactly 1 refresh', async t => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('cc-storm')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ instances: 2, redis, mock: { rotateRefreshTokens: true, refreshReuseRevokes: true }, tokenStore: { keyPrefix: prefix, redisClientCache: true } })
  t.teardown(() => stack.close())
  const [a, b] = stack.peers as unknown as [{ url: string }, { url: string }]
  for (let round = 0; round < 3; round++) {
    const { browser } = await stack.login()
    const headers = { 'x-csrf': '1', cookie: browser.cookieHeader(a.url) as string }
    // Both instances read (and keep) the fresh set first.
    for (const peer of [a, b]) t.equal((await browser.get(`${peer.url}/api/user/info`, headers)).status, 200)
    const sid = stack.sessionIdOf(browser)
    const set = await stack.app.tokenStore.get(sid)
    if (set === null) throw new Error('no token set')
    await stack.app.tokenStore.save(sid, { ...set, expiresAt: Date.now() - 1000 })
    stack.mock.expireAccessTokens() // an instance still answering from the set before cannot use its token either
    stack.mock.resetCounts()
    const all = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      browser.get(`${i % 2 === 0 ? a.url : b.url}/api/user/info`, headers)))
    t.same(all.map((r) => r.status), Array(50).fill(200), `round ${round}: all 50 answered`)
    t.equal(stack.mock.counts().grants.refresh_token, 1, `round ${round}: one refresh across both instances`)
    for (const peer of [a, b]) t.equal((await browser.get(`${peer.url}/api/user/info`, headers)).status, 200)
    t.equal(stack.mock.counts().grants.refresh_token, 1, `round ${round}: and no other afterwards`)
  }
})

/** Closes every tracking connection of this Redis (found by name); the caches reconnect on their own. */
/** A local port nothing listens on. */
async function closedPort (): Promise<number> {
  return await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}
