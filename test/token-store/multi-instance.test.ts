import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import type { TokenSet, TokenStoreOptions } from '@fastify-aihubmix/token-store'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { buildApp, countingRefresher, deferred, sid, sleep, tokenSet } from '../helpers/token-store.js'
import type { T } from '../helpers/token-store.js'

const MINUTE = 60_000

/** Two Fastify apps ("instances"), each with its own Redis connection, sharing one Redis and one key prefix. */
async function twoInstances (t: T, extra: Partial<TokenStoreOptions> = {}): Promise<{ a: FastifyInstance, b: FastifyInstance, admin: Redis, prefix: string } | undefined> {
  const admin = await connectRedis(t)
  if (admin === undefined) return undefined
  const prefix = uniquePrefix('multi')
  cleanupPrefix(t, admin, prefix)
  const a = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, ...extra })
  const b = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, ...extra })
  return { a, b, admin, prefix }
}

t.test('50 concurrent calls split over two instances: exactly one refresh in total', async t => {
  const setup = await twoInstances(t)
  if (setup === undefined) return
  const { a, b } = setup
  for (let round = 0; round < 3; round++) {
    const id = sid()
    await a.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
    const calls: string[] = [] // one counter, two refreshers
    const next = tokenSet()
    const onA = countingRefresher({ calls, answer: () => next, before: () => sleep(200) })
    const onB = countingRefresher({ calls, answer: () => next, before: () => sleep(200) })
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      i % 2 === 0 ? a.tokenStore.getFresh(id, onA.refresh) : b.tokenStore.getFresh(id, onB.refresh)))
    t.equal(calls.length, 1, `round ${round}: one refresh across both instances`)
    t.ok(results.every(s => s.accessToken === next.accessToken), `round ${round}: all 50 got the new token`)
    t.same(await b.tokenStore.get(id), next)
  }
})

t.test('forced refresh after a 401 on both instances: one refresh', async t => {
  const setup = await twoInstances(t)
  if (setup === undefined) return
  const { a, b } = setup
  const id = sid()
  const x = tokenSet({ expiresInMs: 60 * MINUTE })
  await a.tokenStore.save(id, x)
  const calls: string[] = []
  const y = tokenSet()
  const onA = countingRefresher({ calls, answer: () => y, before: () => sleep(100) })
  const onB = countingRefresher({ calls, answer: () => y, before: () => sleep(100) })
  const opts = { force: true, staleAccessToken: x.accessToken }
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    i % 2 === 0 ? a.tokenStore.getFresh(id, onA.refresh, opts) : b.tokenStore.getFresh(id, onB.refresh, opts)))
  t.equal(calls.length, 1)
  t.ok(results.every(s => s.accessToken === y.accessToken))
})

t.test('the lease is renewed while a refresh outlasts it: the other instance does not refresh too', async t => {
  const setup = await twoInstances(t, { lockLeaseMs: 1000 })
  if (setup === undefined) return
  const { a, b } = setup
  const id = sid()
  await a.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const calls: string[] = []
  const started = deferred()
  const next = tokenSet()
  const slow = countingRefresher({ calls, answer: () => next, before: async () => { started.resolve(); await sleep(3500) } })
  const other = countingRefresher({ calls })
  const first = a.tokenStore.getFresh(id, slow.refresh)
  await started.promise
  const second = await b.tokenStore.getFresh(id, other.refresh)
  t.equal(calls.length, 1, 'B waited for A although the refresh took 3+ leases')
  t.equal(second.accessToken, next.accessToken)
  t.equal((await first).accessToken, next.accessToken)
})

t.test('waiting longer than lockWaitMs for another instance: RefreshBusyError (503), set kept', async t => {
  const setup = await twoInstances(t, { lockWaitMs: 300 })
  if (setup === undefined) return
  const { b, admin, prefix } = setup
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await b.tokenStore.save(id, old)
  await admin.set(`${prefix}{${id}}:lock`, 'another-instance', 'PX', 60_000) // a refresh that never ends
  const r = countingRefresher()
  await t.rejects(b.tokenStore.getFresh(id, r.refresh), { code: 'FST_AIHUBMIX_REFRESH_BUSY', statusCode: 503 })
  t.same(r.calls, [], 'did not refresh behind the lock holder\'s back')
  t.same(await b.tokenStore.get(id), old)
  t.equal(await admin.get(`${prefix}{${id}}:lock`), 'another-instance', 'someone else\'s lock is never released')
})

t.test('a crashed lock holder: the lease expires and the waiter refreshes', async t => {
  const setup = await twoInstances(t)
  if (setup === undefined) return
  const { b, admin, prefix } = setup
  const id = sid()
  await b.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  await admin.set(`${prefix}{${id}}:lock`, 'crashed-instance', 'PX', 400)
  const next = tokenSet()
  const r = countingRefresher({ answer: () => next })
  t.same(await b.tokenStore.getFresh(id, r.refresh), next)
  t.equal(r.calls.length, 1)
  t.equal(await admin.exists(`${prefix}{${id}}:lock`), 0, 'released after the refresh')
})

t.test('a transient failure on one instance: the waiting instance backs off too (503), then one of them tries again', async t => {
  const setup = await twoInstances(t, { refreshBackoffMs: 300 })
  if (setup === undefined) return
  const { a, b } = setup
  const id = sid()
  await a.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const started = deferred()
  const outage = new Error('provider 503')
  const failing = countingRefresher({ before: async () => { started.resolve(); await sleep(200); throw outage } })
  const next = tokenSet()
  const working = countingRefresher({ answer: () => next })
  const onA = a.tokenStore.getFresh(id, failing.refresh)
  await started.promise
  const onB = b.tokenStore.getFresh(id, working.refresh)
  await t.rejects(onA, outage)
  const waited = await onB.then(() => undefined, (err: unknown) => err) as (Error & { retryAfterMs?: number }) | undefined
  t.match(waited, { code: 'FST_AIHUBMIX_REFRESH_BACKOFF', statusCode: 503 }, 'B found A\'s backoff under the lock')
  t.same(working.calls, [], 'and did not call the provider')
  await t.rejects(b.tokenStore.getFresh(id, working.refresh), { code: 'FST_AIHUBMIX_REFRESH_BACKOFF' }, 'nor on its next request')
  t.same(working.calls, [])
  await sleep((waited?.retryAfterMs ?? 0) + 20)
  t.same(await b.tokenStore.getFresh(id, working.refresh), next, 'after the backoff: refreshed')
  t.equal(failing.calls.length, 1)
  t.equal(working.calls.length, 1)
})

t.test('one-time records: of concurrent takers on two instances, exactly one gets it', async t => {
  const setup = await twoInstances(t)
  if (setup === undefined) return
  const { a, b } = setup
  for (let round = 0; round < 5; round++) {
    const key = `state-${round}-${sid()}`
    await a.tokenStore.putRecord(key, { verifier: 'v', round }, 60_000)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).tokenStore.takeRecord(key)))
    t.same(results.filter(r => r !== null), [{ verifier: 'v', round }], `round ${round}`)
  }
})

t.test('memory backends of two apps share nothing', async t => {
  const a = await buildApp(t, {})
  const b = await buildApp(t, {})
  const id = sid()
  await a.tokenStore.save(id, tokenSet())
  t.equal(await b.tokenStore.get(id), null)
  const set: TokenSet | null = await a.tokenStore.get(id)
  t.ok(set)
})
