import t from 'tap'
import { Redis, type RedisOptions } from 'ioredis'
import type { TokenStoreCore } from '../../src/token-store/token-store.js'
import { buildApp, countingRefresher, sid, tokenSet, type T } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from '../helpers/redis.js'
import { until } from '../helpers/redis-server.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'

// The refresh lock's SET can be applied by Redis while its answer never comes back (a reply lost, a command
// timeout). Nobody renews or releases such a lock, so every instance used to wait out its whole lease (10 s by
// default) before refreshing the session. Now a failed lock attempt sends an owner-checked unlock right behind it,
// and an attempt that finds the lock held by its own owner (a client resending an unanswered SET after it
// reconnected) takes it as its own.

async function relayed (t: T, options: RedisOptions): Promise<{ relay: TcpRelay, client: Redis }> {
  const target = new URL(redisUrl())
  const relay = await startTcpRelay(target.hostname, Number(target.port === '' ? 6379 : target.port))
  t.teardown(() => relay.close())
  const client = new Redis({ port: relay.port, retryStrategy: () => 50, ...options })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await new Promise(resolve => client.once('ready', resolve))
  return { relay, client }
}

t.test('the answer to the lock\'s SET is lost: the lock is released behind it, other instances do not wait out the lease', async t => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('orphan')
  cleanupPrefix(t, admin, prefix)
  const { relay, client } = await relayed(t, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  const a = await buildApp(t, { redis: client, keyPrefix: prefix, redisCommandTimeoutMs: 300 })
  const b = await buildApp(t, { redis: admin, keyPrefix: prefix })
  const id = sid()
  const lockKey = `${prefix}{${id}}:lock`
  await b.tokenStore.save(id, tokenSet({ expiresInMs: -60_000 }))
  const core = a.tokenStore as unknown as TokenStoreCore
  const prefetched = await core.read(id) // as the session store's MGET does
  relay.holdReplies() // Redis executes what A sends (the flight's first command is the lock's SET), A hears nothing
  t.match(await core.getFreshFrom(id, prefetched, countingRefresher().refresh).then(() => undefined, (e: unknown) => e), { statusCode: 503 })
  await until(async () => await admin.exists(lockKey) === 0, 'the lock A never heard it took to be released', { timeoutMs: 3000 })
  await relay.cut()
  await relay.restore()
  const started = Date.now()
  const refresher = countingRefresher()
  await b.tokenStore.getFresh(id, refresher.refresh)
  const waited = Date.now() - started
  t.equal(refresher.calls.length, 1, 'B refreshes')
  t.ok(waited < 3000, `B did not wait out A's lease (${waited} ms)`)
})

t.test('an unanswered lock SET resent after a reconnect finds its own key: the flight goes on with it', async t => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('orphan')
  cleanupPrefix(t, admin, prefix)
  // ioredis' defaults: the offline queue on, commands without an answer resent once reconnected.
  const { relay, client } = await relayed(t, {})
  const a = await buildApp(t, { redis: client, keyPrefix: prefix, redisCommandTimeoutMs: 5000 })
  const id = sid()
  const lockKey = `${prefix}{${id}}:lock`
  await a.tokenStore.save(id, tokenSet({ expiresInMs: -60_000 }))
  const core = a.tokenStore as unknown as TokenStoreCore
  const prefetched = await core.read(id)
  relay.holdReplies()
  const started = Date.now()
  const next = tokenSet()
  const refresher = countingRefresher({ answer: () => next })
  const fresh = core.getFreshFrom(id, prefetched, refresher.refresh)
  await until(async () => await admin.exists(lockKey) === 1, 'the lock\'s SET to reach Redis', { timeoutMs: 3000 })
  await relay.cut() // the connection drops before the answer; ioredis reconnects and sends the SET again
  await relay.restore()
  t.same(await fresh, next, 'refreshed')
  const took = Date.now() - started
  t.equal(refresher.calls.length, 1)
  t.ok(took < 5000, `without waiting for the lease of a lock that was its own (${took} ms)`)
  t.equal(await admin.exists(lockKey), 0, 'and released')
})
