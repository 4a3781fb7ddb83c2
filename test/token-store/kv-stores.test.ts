import t from 'tap'
import { MemoryStore } from '../../src/token-store/memory-store.js'
import { RedisStore } from '../../src/token-store/redis-store.js'
import { KeyLayout } from '../../src/token-store/keys.js'
import type { KVStore } from '../../src/token-store/kv-store.js'
import type { Redis } from 'ioredis'
import { cleanupPrefix, connectRedis, nextCommand, recordCommands, scanKeys, uniquePrefix } from '../helpers/redis.js'
import type { IoredisMajor } from '../helpers/redis.js'
import { until } from '../helpers/redis-server.js'
import type { T } from '../helpers/token-store.js'

/**
 * The KV contract, run against both implementations. `make()` gives a store; for Redis every call makes a store
 * on its OWN connection, so "two stores" are two instances racing through Redis.
 */
interface Harness {
  prefix: string
  make: () => Promise<KVStore>
  /** Remaining TTL of a key in ms (-2 absent). */
  pttl: (store: KVStore, key: string) => Promise<number>
  /** Every key the test created under its prefix. */
  keys: (store: KVStore) => Promise<string[]>
  /**
   * Call before `store.waitForUnlock(key)`: resolves once that waiter has looked at the lock (Redis: its PTTL is
   * answered, after it subscribed), so a release from then on can only reach it as a wake-up. With the answer.
   */
  looked: (store: KVStore, key: string) => Promise<unknown>
}

function contract (title: string, fn: (t: T, h: Harness) => Promise<void>): void {
  t.test(`${title} [memory]`, async t => {
    const prefix = uniquePrefix('kv')
    const shared = new MemoryStore()
    t.teardown(() => shared.close())
    // In one process "two instances" share the map: that is what the memory backend is.
    await fn(t, {
      prefix,
      make: async () => shared,
      pttl: async (_store, key) => shared.pttl(key),
      keys: async () => shared.keys().filter(key => key.startsWith(prefix)),
      // The memory store looks and registers the waiter within the call itself.
      looked: async (_store, key) => shared.pttl(key)
    })
  })
  // With the client-side cache on, the same contract holds (each store's writes are its own reads at once); and
  // with ioredis 6 clients (RESP3 by default) as with ioredis 5.
  for (const [cached, major] of [[false, 5], [true, 5], [false, 6], [true, 6]] satisfies Array<[boolean, IoredisMajor]>) {
    t.test(`${title} [redis${cached ? ', client cache' : ''}${major === 6 ? ', ioredis 6' : ''}]`, async t => {
      const admin = await connectRedis(t)
      if (admin === undefined) return
      const prefix = uniquePrefix('kv')
      cleanupPrefix(t, admin, prefix)
      const layout = new KeyLayout(prefix)
      const clients = new Map<KVStore, Redis>()
      await fn(t, {
        prefix,
        make: async () => {
          const client = await connectRedis(t, {}, major) as Redis
          const clientCache = cached ? { prefix, maxEntries: 1000, maxAgeMs: 60_000 } : undefined
          const store = new RedisStore({ client, lockChannel: layout.lockChannel, commandTimeoutMs: 5000, clientCache })
          t.teardown(() => store.close())
          await store.clientCache?.sync()
          clients.set(store, client)
          return store
        },
        pttl: async (_store, key) => await admin.pttl(key),
        keys: async () => await scanKeys(admin, prefix),
        looked: async (store, key) => await (await nextCommand(clients.get(store) as Redis, 'PTTL', (args) => args[0] === key)).answer
      })
    })
  }
}

contract('get/set/delete with a TTL on every key', async (t, h) => {
  const kv = await h.make()
  const a = h.prefix + 'a'
  const b = h.prefix + 'b'
  t.equal(await kv.get(a), null)
  await kv.set(a, 'one', 60_000)
  await kv.set(b, 'two', 60_000)
  t.equal(await kv.get(a), 'one')
  t.same(await kv.getMany([a, b, h.prefix + 'missing']), ['one', 'two', null])
  const ttl = await h.pttl(kv, a)
  t.ok(ttl > 0 && ttl <= 60_000, 'the key has the TTL it was given')
  await kv.set(a, 'uno', 60_000)
  t.equal(await kv.get(a), 'uno', 'set overwrites')
  await kv.delete([a, b])
  t.same(await kv.getMany([a, b]), [null, null])
  await kv.delete(h.prefix + 'never-existed')
  await t.rejects(kv.set(a, 'x', 0), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' }, 'a TTL is required')
  await t.rejects(kv.set(a, 'x', 1.5), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' })
  t.equal(await kv.get(a), null, 'nothing written without a valid TTL')
})

contract('a key expires after its TTL', async (t, h) => {
  const kv = await h.make()
  const k = h.prefix + 'short'
  await kv.set(k, 'v', 30)
  await until(async () => await h.pttl(kv, k) === -2, 'the key to expire')
  t.equal(await kv.get(k), null)
  t.equal(await kv.take(k), null)
})

contract('replace only writes an existing key (SET XX)', async (t, h) => {
  const kv = await h.make()
  const k = h.prefix + 'r'
  t.equal(await kv.replace(k, 'new', 60_000), false, 'missing: not replaced')
  t.equal(await kv.get(k), null, 'and not created')
  await kv.set(k, 'old', 60_000)
  t.equal(await kv.replace(k, 'new', 60_000), true)
  t.equal(await kv.get(k), 'new')
  t.ok(await h.pttl(kv, k) > 0)
})

contract('compareAndSet writes only over the expected value', async (t, h) => {
  const kv = await h.make()
  const k = h.prefix + 'cas'
  t.equal(await kv.compareAndSet(k, 'v1', 'v2', 60_000), 'missing')
  t.equal(await kv.get(k), null, 'missing stays missing')
  await kv.set(k, 'v1', 60_000)
  t.equal(await kv.compareAndSet(k, 'other', 'v2', 60_000), 'changed')
  t.equal(await kv.get(k), 'v1', 'changed: untouched')
  t.equal(await kv.compareAndSet(k, 'v1', 'v2', 60_000), 'ok')
  t.equal(await kv.get(k), 'v2')
  t.ok(await h.pttl(kv, k) > 0, 'with a TTL')
})

contract('compareAndDelete deletes only the expected value', async (t, h) => {
  const one = await h.make()
  const two = await h.make()
  const k = h.prefix + 'cad'
  t.equal(await one.compareAndDelete(k, 'v1'), 'missing')
  await one.set(k, 'v1', 60_000)
  t.equal(await two.get(k), 'v1')
  t.equal(await two.compareAndDelete(k, 'other'), 'changed')
  t.equal(await one.get(k), 'v1', 'changed: untouched')
  t.equal(await two.compareAndDelete(k, 'v1'), 'ok')
  t.equal(await one.get(k), null, 'deleted, as the other instance sees at once')
  t.equal(await two.get(k), null)
})

contract('remainingTtl: what is left of a key\'s TTL by the store\'s clock, null when absent', async (t, h) => {
  const kv = await h.make()
  const k = h.prefix + 'ttl'
  t.equal(await kv.remainingTtl(k), null)
  await kv.set(k, 'v', 5000)
  const left = await kv.remainingTtl(k)
  t.ok(left !== null && left > 4000 && left <= 5000, `${left} ms`)
  await kv.delete(k)
  t.equal(await kv.remainingTtl(k), null)
})

contract('hashes: fields written and deleted one by one; the TTL only ever grows; an empty hash is gone', async (t, h) => {
  const one = await h.make()
  const two = await h.make()
  const k = h.prefix + 'hash'
  t.same(await one.hashGetAll(k), {}, 'absent: empty')
  t.equal(await one.hashSet(k, 'a', 'x', 60_000), 1)
  t.equal(await two.hashSet(k, 'b', 'y', 120_000), 2, 'the count of fields after the write, across instances')
  t.same(await one.hashGetAll(k), { a: 'x', b: 'y' })
  t.ok(await h.pttl(one, k) > 60_000, 'a longer TTL is taken')
  t.equal(await one.hashSet(k, 'a', 'z', 1000), 2, 'overwriting a field adds none')
  t.ok(await h.pttl(one, k) > 60_000, 'a shorter TTL does not shorten it')
  t.same(await two.hashGetAll(k), { a: 'z', b: 'y' })
  await one.hashDelete(k, ['a', 'never'])
  t.same(await two.hashGetAll(k), { b: 'y' })
  await one.hashDelete(k, [])
  await two.hashDelete(k, ['b'])
  t.same(await one.hashGetAll(k), {})
  t.same(await h.keys(one), [], 'an empty hash leaves no key')
  await t.rejects(one.hashSet(k, 'a', 'x', 0), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' }, 'a TTL is required')
})

contract('take: of many concurrent takers on two instances, exactly one gets the value', async (t, h) => {
  const one = await h.make()
  const two = await h.make()
  for (let round = 0; round < 10; round++) {
    const k = `${h.prefix}take:${round}`
    await one.set(k, `value-${round}`, 60_000)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? one : two).take(k)))
    const winners = results.filter(r => r !== null)
    t.same(winners, [`value-${round}`], `round ${round}: one winner`)
  }
  t.equal(await one.take(h.prefix + 'take:0'), null, 'taken means gone')
})

contract('locks: only the owner releases or extends; a lease expires', async (t, h) => {
  const a = await h.make()
  const b = await h.make()
  const k = h.prefix + 'lock'
  t.equal(await a.lock(k, 'owner-a', 60_000), true)
  t.equal(await b.lock(k, 'owner-b', 60_000), false, 'taken')
  t.equal(await a.lock(k, 'owner-a', 60_000), false, 'not re-entrant')
  t.equal(await b.unlock(k, 'owner-b'), false, 'a non-owner cannot release')
  t.equal(await b.extendLock(k, 'owner-b', 60_000), false, 'a non-owner cannot extend')
  t.equal(await b.lock(k, 'owner-b', 60_000), false, 'still held')
  t.ok(await h.pttl(a, k) > 0, 'a lock has a TTL')
  t.equal(await a.extendLock(k, 'owner-a', 120_000), true)
  t.ok(await h.pttl(a, k) > 60_000, 'extended')
  t.equal(await a.unlock(k, 'owner-a'), true)
  t.equal(await a.unlock(k, 'owner-a'), false, 'released once')
  t.equal(await b.lock(k, 'owner-b', 50), true, 'free again')
  await until(async () => await h.pttl(a, k) === -2, 'the lease to expire')
  t.equal(await a.lock(k, 'owner-a', 60_000), true, 'an expired lease frees the lock')
  t.equal(await b.unlock(k, 'owner-b'), false, 'the previous owner cannot release the new owner\'s lock')
  t.equal(await a.unlock(k, 'owner-a'), true)
})

/** Resolves to 'woken', or 'timeout' after 10 s (a generous bound: a missed wake-up shows as 'timeout'). */
function within10s (p: Promise<void>): Promise<'woken' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    p.then(() => 'woken' as const),
    new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), 10_000) })
  ]).finally(() => clearTimeout(timer))
}

contract('waitForUnlock: woken by another instance\'s unlock', async (t, h) => {
  const holder = await h.make()
  const waiter = await h.make()
  const k = h.prefix + 'wait'
  t.equal(await waiter.waitForUnlock(k, 60_000), undefined, 'not locked: returns at once')
  await holder.lock(k, 'holder', 60_000)
  const looked = h.looked(waiter, k)
  const waiting = waiter.waitForUnlock(k, 60_000)
  t.ok(Number(await looked) > 0, 'the waiter saw the lock held')
  await holder.unlock(k, 'holder')
  t.equal(await within10s(waiting), 'woken')
})

contract('waitForUnlock: woken when the lease expires without unlock (crashed holder)', async (t, h) => {
  const holder = await h.make()
  const waiter = await h.make()
  const k = h.prefix + 'crash'
  await holder.lock(k, 'holder', 300)
  t.equal(await within10s(waiter.waitForUnlock(k, 60_000)), 'woken')
  t.equal(await waiter.lock(k, 'waiter', 60_000), true, 'and the lock is free')
})

contract('waitForUnlock: returns after timeoutMs while the lock is held', async (t, h) => {
  const holder = await h.make()
  const waiter = await h.make()
  const k = h.prefix + 'held'
  await holder.lock(k, 'holder', 60_000)
  t.equal(await within10s(waiter.waitForUnlock(k, 100)), 'woken')
  t.equal(await waiter.lock(k, 'waiter', 60_000), false, 'still held')
})

contract('every key the stores write has a TTL', async (t, h) => {
  const kv = await h.make()
  await kv.set(h.prefix + 's', 'v', 60_000)
  await kv.set(h.prefix + 'x', 'v', 60_000)
  await kv.replace(h.prefix + 'x', 'w', 60_000)
  await kv.compareAndSet(h.prefix + 'x', 'w', 'z', 60_000)
  await kv.lock(h.prefix + 'l', 'o', 60_000)
  await kv.extendLock(h.prefix + 'l', 'o', 60_000)
  const keys = await h.keys(kv)
  for (const key of keys) t.ok(await h.pttl(kv, key) > 0, `${key.slice(h.prefix.length)} has a TTL`)
  t.same(keys.map(key => key.slice(h.prefix.length)).sort(), ['l', 's', 'x'], 'the keys written')
})

t.test('RedisStore.close() closes its subscriber, never the client it was given', async t => {
  // A connection name of its own (the subscriber, a duplicate, inherits it): other test files run
  // in parallel and have subscribers of their own.
  const connectionName = `kvclose${process.pid}${Date.now()}`
  const client = await connectRedis(t, { connectionName })
  if (client === undefined) return
  const prefix = uniquePrefix('kv')
  cleanupPrefix(t, client, prefix)
  const store = new RedisStore({ client, lockChannel: prefix + 'lock-released', commandTimeoutMs: 5000 })
  await store.lock(prefix + 'l', 'o', 50)
  await store.waitForUnlock(prefix + 'l', 1000) // creates the subscriber
  const subscribers = async (): Promise<number> => (await client.client('LIST') as string).split('\n')
    .filter(line => line.includes(`name=${connectionName} `) && (line.includes('cmd=subscribe') || line.includes('sub=1'))).length
  const before = await subscribers()
  await store.close()
  await until(async () => await subscribers() < before, 'the subscriber connection to be gone')
  t.pass('the subscriber connection is gone')
  t.equal(await client.ping(), 'PONG', 'the given client still works')
})

t.test('a client with an ioredis keyPrefix: keys are prefixed, lock releases still wake waiters', async t => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const clientPrefix = uniquePrefix('kp')
  cleanupPrefix(t, admin, clientPrefix)
  const layout = new KeyLayout('app:')
  const make = async (): Promise<[RedisStore, Redis]> => {
    const client = await connectRedis(t, { keyPrefix: clientPrefix }) as Redis
    const store = new RedisStore({ client, lockChannel: clientPrefix + layout.lockChannel, commandTimeoutMs: 5000 })
    t.teardown(() => store.close())
    return [store, client]
  }
  const [holder] = await make()
  const [waiter, waiterClient] = await make()
  const k = layout.lock('sid')
  await holder.lock(k, 'holder', 60_000)
  t.same(await scanKeys(admin, clientPrefix), [clientPrefix + k], 'the client prefixed the key')
  const looked = nextCommand(waiterClient, 'PTTL')
  const waiting = waiter.waitForUnlock(k, 60_000)
  t.ok(Number(await (await looked).answer) > 0, 'the waiter saw the lock held')
  await holder.unlock(k, 'holder')
  t.equal(await within10s(waiting), 'woken')
})

t.test('a client without offline queue (and lazyConnect): the subscriber waits to be ready, no fallback', async t => {
  const client = await connectRedis(t, { enableOfflineQueue: false, lazyConnect: true })
  if (client === undefined) return
  const prefix = uniquePrefix('kv')
  cleanupPrefix(t, client, prefix)
  const warnings: string[] = []
  const log = {
    level: 'debug',
    warn: (_obj: unknown, msg?: string) => { warnings.push(String(msg)) },
    fatal: () => {},
    error: () => {},
    info: () => {},
    debug: () => {},
    trace: () => {},
    silent: () => {},
    child: () => log
  }
  const store = new RedisStore({ client, lockChannel: prefix + 'lock-released', commandTimeoutMs: 5000, log })
  t.teardown(() => store.close())
  const holder = await connectRedis(t) as Redis
  const k = prefix + 'l'
  await holder.set(k, 'holder', 'PX', 60_000)
  const looked = nextCommand(client, 'PTTL')
  const waiting = store.waitForUnlock(k, 60_000)
  t.ok(Number(await (await looked).answer) > 0, 'subscribed once ready, then saw the lock held')
  const other = new RedisStore({ client: holder, lockChannel: prefix + 'lock-released', commandTimeoutMs: 5000 })
  await other.unlock(k, 'holder')
  t.equal(await within10s(waiting), 'woken', 'woken by the release message')
  t.same(warnings, [], 'subscribed on the first try')
})

contract('getMany: concurrent calls each get their own values, in order', async (t, h) => {
  const kv = await h.make()
  for (let i = 0; i < 6; i++) await kv.set(`${h.prefix}k${i}`, `v${i}`, 60_000)
  const asks = [[0, 1], [2], [3, 4, 5], [9], [1, 0], [5, 9, 2]].map((ids) => ids.map((i) => `${h.prefix}k${i}`))
  const answers = await Promise.all(asks.map((keys) => kv.getMany(keys)))
  t.same(answers, [['v0', 'v1'], ['v2'], ['v3', 'v4', 'v5'], [null], ['v1', 'v0'], ['v5', null, 'v2']])
})

t.test('RedisStore coalesces the getMany calls of one tick into one MGET; a failure reaches every caller', async t => {
  const client = await connectRedis(t)
  if (client === undefined) return
  const commands = recordCommands(client, (name, args) => [name, ...args])
  const prefix = uniquePrefix('kv')
  cleanupPrefix(t, client, prefix)
  const store = new RedisStore({ client, lockChannel: prefix + 'lock-released', commandTimeoutMs: 5000 })
  t.teardown(() => store.close())
  await store.set(prefix + 'a', 'A', 60_000)
  await store.set(prefix + 'b', 'B', 60_000)
  commands.length = 0

  const together = await Promise.all([
    store.getMany([prefix + 'a', prefix + 'b']),
    store.getMany([prefix + 'b']),
    store.getMany([prefix + 'x', prefix + 'a'])
  ])
  t.same(together, [['A', 'B'], ['B'], [null, 'A']], 'each caller gets its own slice')
  t.same(commands, [['MGET', prefix + 'a', prefix + 'b', prefix + 'b', prefix + 'x', prefix + 'a']], 'one MGET for the three')

  commands.length = 0
  t.same(await store.getMany([prefix + 'a']), ['A'])
  t.same(await store.getMany([prefix + 'b']), ['B'])
  t.same(commands.map((c) => c[0]), ['MGET', 'MGET'], 'calls of different ticks are not held back for each other')

  commands.length = 0
  const many = Array.from({ length: 300 }, () => store.getMany([prefix + 'a', prefix + 'b']))
  t.equal((await Promise.all(many)).filter((v) => v[0] === 'A' && v[1] === 'B').length, 300)
  t.same(commands.map((c) => c.length - 1), [512, 88], 'at most 512 keys per MGET')

  // A client that cannot send (disconnected, no offline queue) fails the whole batch: every caller hears of it.
  const broken = await connectRedis(t, { enableOfflineQueue: false })
  if (broken === undefined) return
  broken.disconnect()
  const failing = new RedisStore({ client: broken, lockChannel: prefix + 'lock-released', commandTimeoutMs: 5000 })
  const results = await Promise.allSettled([failing.getMany([prefix + 'a']), failing.getMany([prefix + 'b', prefix + 'a'])])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'])
  for (const r of results) {
    t.equal((r as PromiseRejectedResult).reason.code, 'FST_AIHUBMIX_STORE_UNAVAILABLE')
  }
})
