import { once } from 'node:events'
import t from 'tap'
import { Redis } from 'ioredis'
import { RefreshRejectedError, type TokenSet } from '@fastify-aihubmix/token-store'
import { buildApp, deferred, KEY_A, sid, sleep, tokenSet, type T } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { redisServerOrSkip, startRedisServer, until } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { MemoryStore } from '../../src/token-store/memory-store.js'
import { TokenStoreCore } from '../../src/token-store/token-store.js'
import { resolveOptions } from '../../src/token-store/options.js'
import { KeyLayout } from '../../src/token-store/keys.js'

// The refresh lock's lease runs out when Redis is down, restarting or stalled for EVERY instance for longer than
// `lockLeaseMs`, while the instance that holds it is alive and already at the provider (or holding its answer until
// Redis is back). Whoever took the lock next read the old set and presented the same refresh token: a reuse, which a
// rotating provider refuses (the user was signed out) or answers by revoking the whole grant. Now a flight marks the
// stored set as "presented" before it calls the provider (the mark lives in the set, whose TTL does not run out with
// the lease), and nobody else presents that token for `refreshFenceMs` after it.

/** A provider with rotation and reuse detection: each refresh token works once. */
function rotatingProvider (): { issue (set: TokenSet): TokenSet, answer (rt: string): TokenSet } {
  const live = new Set<string>()
  return {
    issue (set) { live.add(set.refreshToken as string); return set },
    answer (rt) {
      if (!live.delete(rt)) throw new RefreshRejectedError({ cause: new Error('invalid_grant: refresh token reused') })
      const next = tokenSet()
      live.add(next.refreshToken as string)
      return next
    }
  }
}

/** A client like the one token-store makes from a URL (no offline queue, one retry), reconnecting every `retryMs`. */
async function connect (t: T, port: number, retryMs: number): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => retryMs })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  if (client.status !== 'ready') await once(client, 'ready')
  return client
}

/** What a wrapped store's method call does: `call()` runs the memory store's own method. */
type Around = (method: string | symbol, call: () => Promise<unknown> | unknown) => unknown

/**
 * Token stores (TokenStoreCore, no plugin, silent) over one memory store, each seeing it through its own wrapper: for
 * what no real store does on cue (a call failing while "down", a reply lost after the command was applied, a write
 * slipped in before another). `around` undefined: the store as it is.
 */
async function coresOver (t: T, options: Record<string, unknown>, ...arounds: Array<Around | undefined>): Promise<{ inner: MemoryStore, cores: TokenStoreCore[] }> {
  const inner = new MemoryStore()
  const silent = { level: 'silent', fatal () {}, error () {}, warn () {}, info () {}, debug () {}, trace () {}, silent () {}, child () { return silent } }
  const cores = arounds.map((around) => {
    const kv = around === undefined
      ? inner
      : new Proxy(inner, {
        get (target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown
          if (typeof value !== 'function') return value
          return (...args: unknown[]) => around(prop, () => (value as (...a: unknown[]) => unknown).apply(target, args))
        }
      })
    const core = new TokenStoreCore({ kv, options: resolveOptions({ encryptionKeys: KEY_A, ...options }), log: silent as never })
    t.teardown(() => core.close())
    return core
  })
  return { inner, cores }
}

t.test('Redis restarted (data kept) for longer than the lease while A is at the provider: B does not present the token again', async t => {
  const binary = redisServerOrSkip(t, 'a Redis restart during a refresh')
  if (binary === undefined) return
  const server = await startRedisServer(binary, await freePort())
  t.teardown(() => server.close())
  // Both reconnect a second apart, as token-store's own client may after a restart: B may come back first.
  const [ra, rb] = [await connect(t, server.port, 1000), await connect(t, server.port, 1000)]
  const common = { keyPrefix: 'fence1:', lockLeaseMs: 600, lockWaitMs: 800, redisCommandTimeoutMs: 300, refreshBackoffMs: 0 }
  const a = await buildApp(t, { redis: ra, ...common })
  const b = await buildApp(t, { redis: rb, ...common })

  const provider = rotatingProvider()
  const calls: string[] = []
  const id = sid()
  const old = provider.issue(tokenSet({ expiresInMs: -60_000 }))
  await a.tokenStore.save(id, old)

  const providerAnswers = deferred()
  const first = a.tokenStore.getFresh(id, async (rt) => { calls.push('A'); await providerAnswers.promise; return provider.answer(rt) })
  await until(async () => calls.length === 1, 'A at the provider')
  await server.stop()
  await sleep(1000) // longer than the lease
  providerAnswers.resolve() // the provider answers A while Redis is down: A keeps the set until it can store it
  const rotated = await first
  t.not(rotated.refreshToken, old.refreshToken, 'A\'s callers got the rotated set')
  await server.start()

  // B serves the session while Redis comes back.
  const outcomes = new Set<string>()
  const deadline = Date.now() + 4000
  while (Date.now() < deadline) {
    try {
      await b.tokenStore.getFresh(id, async (rt) => { calls.push('B'); return provider.answer(rt) })
      outcomes.add('ok')
    } catch (err) {
      outcomes.add((err as { code?: string }).code ?? String(err))
    }
    await sleep(20)
  }
  t.comment('B answered:', [...outcomes].join(', '))
  t.same(calls, ['A'], 'the refresh token went to the provider once')
  t.ok(outcomes.has('ok'), 'B serves the session once A has stored its set')
  t.same(await b.tokenStore.get(id), rotated, 'the set A kept through the outage is the one stored')
})

t.test('Redis stalled for everyone (DEBUG SLEEP) past the lease while A refreshes ten sessions: no token presented twice', async t => {
  const binary = redisServerOrSkip(t, 'a Redis stall during refreshes')
  if (binary === undefined) return
  const server = await startRedisServer(binary, await freePort(), ['--appendonly', 'no', '--enable-debug-command', 'yes'])
  t.teardown(() => server.close())
  const [ra, rb, admin] = [await connect(t, server.port, 100), await connect(t, server.port, 100), await connect(t, server.port, 100)]
  // The defaults scaled down: a 600 ms lease, the default 2 s command timeout.
  const common = { keyPrefix: 'fence2:', lockLeaseMs: 600, lockWaitMs: 3000, redisCommandTimeoutMs: 2000 }
  const a = await buildApp(t, { redis: ra, ...common })
  const b = await buildApp(t, { redis: rb, ...common })

  const provider = rotatingProvider()
  const presented: string[] = []
  const providerAnswers = deferred()
  const ids: string[] = []
  const onA: Array<Promise<string>> = []
  for (let i = 0; i < 10; i++) {
    const id = sid()
    ids.push(id)
    await a.tokenStore.save(id, provider.issue(tokenSet({ expiresInMs: -60_000 })))
    onA.push(a.tokenStore.getFresh(id, async (rt) => { presented.push(rt); await providerAnswers.promise; return provider.answer(rt) })
      .then(() => 'ok', (err: { code?: string }) => err.code ?? 'error'))
  }
  await until(async () => presented.length === ids.length, 'A at the provider for every session')
  // B's requests come before the stall: they wait for A's locks, and their lock commands queue inside Redis.
  const onB = ids.map((id) => b.tokenStore.getFresh(id, async (rt) => { presented.push(rt); return provider.answer(rt) })
    .then(() => 'ok', (err: { code?: string }) => err.code ?? 'error'))
  await sleep(100)
  await admin.call('DEBUG', 'SLEEP', '0.9')
  await sleep(300)
  providerAnswers.resolve()
  const answersA = await Promise.all(onA)
  const answersB = await Promise.all(onB)
  t.comment('A:', [...new Set(answersA)].join(', '), ' B:', [...new Set(answersB)].join(', '))
  t.equal(new Set(presented).size, presented.length, `no refresh token presented twice (${presented.length} presentations)`)
  t.same(answersA, ids.map(() => 'ok'), 'A\'s callers got the rotated sets')
  for (const id of ids) t.not(await b.tokenStore.get(id), null, 'the session is still signed in')
})

t.test('a refresh that failed takes its mark off: the other instance refreshes at once, not after refreshFenceMs', async t => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('fence3')
  cleanupPrefix(t, redis, prefix)
  const common = { keyPrefix: prefix, refreshBackoffMs: 0 }
  const a = await buildApp(t, { redis, ...common })
  const b = await buildApp(t, { redis, ...common })
  const id = sid()
  const old = tokenSet({ expiresInMs: -60_000 })
  await a.tokenStore.save(id, old)
  await t.rejects(a.tokenStore.getFresh(id, async () => { throw new Error('the provider is down') }), { message: 'the provider is down' })
  const presented: string[] = []
  const fresh = await b.tokenStore.getFresh(id, async (rt) => { presented.push(rt); return tokenSet() })
  t.same(presented, [old.refreshToken], 'B presented the token the failed refresh did not use up')
  t.same(await a.tokenStore.get(id), fresh)
})

t.test('a kept set still being stored after a failed logout: this process does not present its old refresh token again', async t => {
  const { StoreUnavailableError } = await import('@fastify-aihubmix/token-store')
  // The store under the token store, failing every call while `down` (Redis away from this process).
  let down = false
  const { cores: [store] } = await coresOver(t, { lockLeaseMs: 300, lockWaitMs: 400, refreshBackoffMs: 0 }, (method, call) =>
    (down && method !== 'close' && method !== 'getManyNow') ? Promise.reject(new StoreUnavailableError({ cause: new Error('down') })) : call())
  if (store === undefined) throw new Error('no store')

  const provider = rotatingProvider()
  const presented: string[] = []
  const id = sid()
  const old = provider.issue(tokenSet({ expiresInMs: -60_000 }))
  await store.save(id, old)
  const providerAnswers = deferred()
  const first = store.getFresh(id, async (rt) => { presented.push(rt); await providerAnswers.promise; return provider.answer(rt) })
  await until(async () => presented.length === 1, 'at the provider')
  down = true
  providerAnswers.resolve()
  t.not((await first).refreshToken, old.refreshToken, 'the rotated set, kept until the store is back')
  // The user signs out meanwhile: the set stops being served here, and the delete itself fails.
  await t.rejects(store.delete(id), { code: 'FST_AIHUBMIX_STORE_UNAVAILABLE' })
  await sleep(600) // longer than the lease
  down = false
  await store.getFresh(id, async (rt) => { presented.push(rt); return provider.answer(rt) }).catch(() => {})
  t.same(presented, [old.refreshToken], 'the old refresh token went to the provider once')
})

t.test('another set stored between the read under the lock and the mark: the flight answers with it, presents nothing', async t => {
  // Once armed, a set is stored (as another instance whose lease ran out, or a new sign-in, would) just before the
  // flight's mark reaches the store.
  let storeFirst: (() => Promise<void>) | undefined
  const { cores: [store] } = await coresOver(t, { refreshBackoffMs: 0 }, async (method, call) => {
    const before = method === 'compareAndSet' ? storeFirst : undefined
    if (before !== undefined) {
      storeFirst = undefined
      await before()
    }
    return await call()
  })
  if (store === undefined) throw new Error('no store')

  t.test('a usable one is the answer', async t => {
    const id = sid()
    await store.save(id, tokenSet({ expiresInMs: -60_000 }))
    const newer = tokenSet()
    storeFirst = async () => { await store.save(id, newer) }
    const presented: string[] = []
    t.same(await store.getFresh(id, async (rt) => { presented.push(rt); return tokenSet() }), newer, 'the set stored meanwhile')
    t.same(presented, [], 'no refresh token presented')
    t.same(await store.get(id), newer, 'and it stays stored, unmarked')
    t.equal((await store.read(id))?.presented, undefined)
  })

  t.test('one that is due as well: 503 refresh_busy, nothing presented', async t => {
    const id = sid()
    await store.save(id, tokenSet({ expiresInMs: -60_000 }))
    const newer = tokenSet({ expiresInMs: -30_000 })
    storeFirst = async () => { await store.save(id, newer) }
    const presented: string[] = []
    await t.rejects(store.getFresh(id, async (rt) => { presented.push(rt); return tokenSet() }), { code: 'FST_AIHUBMIX_REFRESH_BUSY' })
    t.same(presented, [])
    t.same(await store.get(id), newer)
  })

  t.test('the session deleted meanwhile: unauthenticated', async t => {
    const id = sid()
    await store.save(id, tokenSet({ expiresInMs: -60_000 }))
    storeFirst = async () => { await store.delete(id) }
    await t.rejects(store.getFresh(id, async () => tokenSet()), { code: 'FST_AIHUBMIX_UNAUTHENTICATED' })
  })
})

// The mark was stamped once, when the flight started, while a refresh may outlive `refreshFenceMs`: a slow provider,
// or a refresh answered late (aihubmix-proxy reads its answer for `refreshGraceMs`, 60 s by default, after its 10 s
// deadline). A Redis outage longer than the lease, SHORTER than the fence, near its end let another instance take
// the lock, find the mark over, and present the refresh token again while A was still at the provider with it.
// Now the flight stamps its mark anew every third of the fence while it goes on. Scaled down: fence 3 s, lease 0.5 s,
// the provider answers A after 6 s, Redis restarted (data kept) from 3.2 s to 4.4 s; B reconnects first.
for (const kind of ['slow', 'answered late'] as const) {
  t.test(`a refresh (${kind}) that outlives refreshFenceMs keeps its mark: an outage shorter than the fence near its end lets nobody present the token again`, async t => {
    const binary = redisServerOrSkip(t, 'a Redis restart late in a slow refresh')
    if (binary === undefined) return
    const server = await startRedisServer(binary, await freePort())
    t.teardown(() => server.close())
    const [ra, rb] = [await connect(t, server.port, 1000), await connect(t, server.port, 100)]
    const common = { keyPrefix: 'fence4:', lockLeaseMs: 500, lockWaitMs: 3000, redisCommandTimeoutMs: 300, refreshFenceMs: 3000, refreshBackoffMs: 0 }
    const a = await buildApp(t, { redis: ra, ...common })
    const b = await buildApp(t, { redis: rb, ...common })
    const provider = rotatingProvider()
    const presented: string[] = []
    const id = sid()
    const old = provider.issue(tokenSet({ expiresInMs: -60_000 }))
    await a.tokenStore.save(id, old)

    const providerAnswers = deferred()
    let answered: TokenSet | undefined
    const atProvider = async (rt: string): Promise<TokenSet> => {
      presented.push('A')
      await providerAnswers.promise
      answered = provider.answer(rt)
      return answered
    }
    const onA = a.tokenStore.getFresh(id, kind === 'slow'
      ? atProvider
      : async (rt) => {
        // The callers' deadline passes at once; the call goes on (as aihubmix-proxy's refresher does after timeoutMs).
        const error = new Error('upstream timeout')
        Object.defineProperty(error, 'lateRefresh', { value: atProvider(rt) })
        throw error
      }).then(() => 'ok', (err: { code?: string }) => err.code ?? String(err))
    setTimeout(() => { providerAnswers.resolve() }, 6000)
    await sleep(3200) // past the fence of the first stamp; A is still at the provider, its lock renewed
    await server.stop()
    await sleep(1200) // longer than the lease, shorter than the fence
    await server.start()
    // B's user keeps coming (the access token has expired): B refreshes whenever it takes the lock.
    const answersB = new Set<string>()
    const deadline = Date.now() + 3000
    while (Date.now() < deadline) {
      answersB.add(await b.tokenStore.getFresh(id, async (rt) => { presented.push('B'); return provider.answer(rt) })
        .then(() => 'ok', (err: { code?: string }) => err.code ?? String(err)))
      await sleep(20)
    }
    t.comment('A answered:', await onA, ' B answered:', [...answersB].join(', '))
    t.same(presented, ['A'], 'the refresh token went to the provider once')
    t.not(answered, undefined, 'the provider rotated it for A')
    t.same(await b.tokenStore.get(id), answered, 'A\'s rotated set is the one stored')
    t.ok(answersB.has('ok'), 'B serves the session once A has stored its set')
  })
}

// A stamp whose reply is lost (the client's command timeout during a stall) may have been applied when Redis wakes:
// the next stamp, against the mark before it, found another value and stopped stamping for good, so the mark ran out
// while the refresh went on. Now a stamp that finds this process's own mark on the same refresh token stamps on.
// (The lost reply is made by a wrapper around the memory store: nothing else can lose a reply on cue.)
t.test('a stamp applied but unanswered: the flight stamps on, and B finds a live mark', async t => {
  const { StoreUnavailableError } = await import('@fastify-aihubmix/token-store')
  let loseNextReply = false
  const common = { lockLeaseMs: 3000, lockWaitMs: 100, refreshBackoffMs: 0, refreshFenceMs: 600 }
  const { inner, cores: [a, b] } = await coresOver(t, common, async (method, call) => {
    const result = await call()
    if (method === 'compareAndSet' && loseNextReply) {
      loseNextReply = false
      throw new StoreUnavailableError({ cause: new Error('Command timed out') })
    }
    return result
  }, undefined)
  if (a === undefined || b === undefined) throw new Error('no store')

  const provider = rotatingProvider()
  const id = sid()
  const old = provider.issue(tokenSet({ expiresInMs: -60_000 }))
  await a.save(id, old)
  const presented: string[] = []
  const answers = deferred()
  const onA = a.getFresh(id, async (rt) => { presented.push('A'); await answers.promise; return provider.answer(rt) })
  await sleep(50)
  loseNextReply = true // the first stamp (at 200 ms) is applied, its reply lost
  await sleep(1300) // stamps at 400, 600, ..., 1200 ms: the mark would be 1.1 s old had they stopped
  // A later stall: A's lease runs out and B takes the lock (the lock key expires).
  await inner.delete(a.keys.lock(id))
  const onB = await b.getFresh(id, async (rt) => { presented.push('B'); return provider.answer(rt) })
    .then(() => 'ok', (err: { code?: string }) => err.code ?? String(err))
  answers.resolve()
  const rotated = await onA
  t.equal(onB, 'FST_AIHUBMIX_REFRESH_BUSY', 'B finds the mark alive and does not present the token')
  t.same(presented, ['A'], 'the refresh token went to the provider once')
  t.same(await b.get(id), rotated, 'A stores its rotated set over its own mark')
})

// A "practically infinite" refreshFenceMs (Number.MAX_SAFE_INTEGER): its third, as a timer's delay, is past what Node
// takes (2^31 - 1 ms), and Node fires such a timer after 1 ms: the mark was stamped on every tick of a refresh, one
// write of the token set per round trip. Now the delay is capped.
t.test('a huge refreshFenceMs: a refresh stamps its mark no more than a usual one, and no timer overflows', async t => {
  let writes = 0
  const overflows: string[] = []
  const onWarning = (warning: Error): void => { if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const { cores: [store] } = await coresOver(t, { refreshFenceMs: Number.MAX_SAFE_INTEGER, lockLeaseMs: 2 ** 40 }, (method, call) => {
    if (method === 'compareAndSet') writes++
    return call()
  })
  if (store === undefined) throw new Error('no store')
  const id = sid()
  await store.save(id, tokenSet({ expiresInMs: -60_000 }))
  await store.getFresh(id, async () => { await sleep(300); return tokenSet() })
  await sleep(50)
  t.equal(writes, 2, 'the mark and the save: two compare-and-sets')
  t.same(overflows, [], 'no timer overflowed')
})

/**
 * A private redis-server that persists only what SAVE writes (no append-only file): stopped and started, it comes back
 * with that snapshot, having lost every write since, as a Redis restarted after a crash with `appendfsync everysec`,
 * or a failover to a replica that was behind, does.
 */
async function snapshotRedis (t: T, what: string): Promise<Awaited<ReturnType<typeof startRedisServer>> | undefined> {
  const binary = redisServerOrSkip(t, what)
  if (binary === undefined) return undefined
  const server = await startRedisServer(binary, await freePort(), ['--appendonly', 'no'])
  t.teardown(() => server.close())
  return server
}

/** The presented mark in a session's stored set, as the store holds it (undefined: none). */
async function presentedMark (client: Redis, prefix: string, id: string): Promise<{ at: number, by: string } | undefined> {
  const sealed = await client.get(new KeyLayout(prefix).tokens(id))
  if (sealed === null) return undefined
  const value = JSON.parse(resolveOptions({ encryptionKeys: KEY_A }).keyRing.unseal(sealed, `tok:${id}`)) as { refreshPresented?: { at: number, by: string } }
  return value.refreshPresented
}

/**
 * Two instances (A, B) on a snapshot-only Redis, their clients reconnecting every `retryA` / `retryB` ms; a session
 * whose set is due, saved and SAVEd (what the store comes back with: the set unmarked); and A's refresh at a rotating
 * provider until `providerAnswers` resolves. `presentations` records who presented a refresh token.
 */
async function rollbackPair (t: T, what: string, prefix: string, { retryA, retryB, lockLeaseMs }: { retryA: number, retryB: number, lockLeaseMs: number }) {
  const server = await snapshotRedis(t, what)
  if (server === undefined) return undefined
  const [ra, rb] = [await connect(t, server.port, retryA), await connect(t, server.port, retryB)]
  const common = { keyPrefix: prefix, lockLeaseMs, lockWaitMs: 300, redisCommandTimeoutMs: 300, refreshBackoffMs: 0 }
  const a = await buildApp(t, { redis: ra, ...common })
  const b = await buildApp(t, { redis: rb, ...common })
  const provider = rotatingProvider()
  const presentations: string[] = []
  const id = sid()
  const old = provider.issue(tokenSet({ expiresInMs: -60_000 }))
  await a.tokenStore.save(id, old)
  await ra.call('SAVE')
  const providerAnswers = deferred()
  const first = a.tokenStore.getFresh(id, async (rt) => { presentations.push('A'); await providerAnswers.promise; return provider.answer(rt) })
  await until(async () => presentations.length === 1, 'A at the provider')
  /** B asked for the session: 'ok', or the error's code. */
  const askB = async (): Promise<string> => await b.tokenStore.getFresh(id, async (rt) => { presentations.push('B'); return provider.answer(rt) })
    .then(() => 'ok', (err: unknown) => (err as { code?: string }).code ?? String(err))
  return { server, ra, rb, a, b, id, old, presentations, providerAnswers, first, askB }
}

t.test('Redis back without its last writes (the mark, the lock) while A is at the provider: A marks the set again, stores its answer, B presents nothing', async t => {
  const pair = await rollbackPair(t, 'a Redis that loses its last writes during a refresh', 'fence-rollback1:', { retryA: 100, retryB: 100, lockLeaseMs: 600 })
  if (pair === undefined) return
  const { server, ra, rb, b, id, old, presentations, providerAnswers, first, askB } = pair
  const markOnA = await presentedMark(ra, 'fence-rollback1:', id)
  t.type(markOnA?.by, 'string', 'A marked the set before it went to the provider')
  await server.stop()
  await server.start()
  await until(async () => ra.status === 'ready' && rb.status === 'ready', 'both clients back')
  await sleep(200) // A's stamp on the store's return
  t.equal((await presentedMark(ra, 'fence-rollback1:', id))?.by, markOnA?.by, 'the set the store came back with (unmarked) is marked again, by A')

  // B is asked for the session while A is still at the provider: the set is expired, and B's lock is free again.
  const outcomes = new Set<string>()
  for (let i = 0; i < 10; i++) {
    outcomes.add(await askB())
    await sleep(20)
  }
  t.comment('B answered while A was at the provider:', [...outcomes].join(', '))
  t.same(presentations, ['A'], 'B did not present the refresh token A presented')

  providerAnswers.resolve()
  const rotated = await first
  t.not(rotated.refreshToken, old.refreshToken, 'A\'s callers got the rotated set, not the set the store came back with')
  t.same(await b.tokenStore.get(id), rotated, 'the rotated set is the one stored')
  t.equal(await askB(), 'ok', 'B serves it')
  t.same(await b.tokenStore.get(id), rotated, 'without another refresh')
  t.same(presentations, ['A'], 'the refresh token went to the provider once')
})

t.test('a set kept while Redis was down, which comes back without its last writes: the kept set is stored over the set it replaced', async t => {
  const server = await snapshotRedis(t, 'a Redis that loses its last writes while a refreshed set is kept')
  if (server === undefined) return
  const ra = await connect(t, server.port, 100)
  const a = await buildApp(t, { redis: ra, keyPrefix: 'fence-rollback2:', lockLeaseMs: 600, redisCommandTimeoutMs: 300, refreshBackoffMs: 0 })

  const provider = rotatingProvider()
  const id = sid()
  const old = provider.issue(tokenSet({ expiresInMs: -60_000 }))
  await a.tokenStore.save(id, old)
  await ra.call('SAVE')

  const providerAnswers = deferred()
  let presented = 0
  const first = a.tokenStore.getFresh(id, async (rt) => { presented++; await providerAnswers.promise; return provider.answer(rt) })
  await until(async () => presented === 1, 'A at the provider')
  await server.stop()
  providerAnswers.resolve() // answered while Redis is down: A keeps the rotated set and retries
  const rotated = await first
  t.not(rotated.refreshToken, old.refreshToken, 'the callers got the rotated set')
  await server.start()
  await until(async () => (await a.tokenStore.get(id).catch(() => null))?.refreshToken === rotated.refreshToken, 'the kept set stored', { timeoutMs: 5000 })
  t.same(await a.tokenStore.get(id), rotated, 'stored over the set the store came back with, not dropped for it')
  t.equal(presented, 1, 'one refresh')
})

// A provider that does not rotate refresh tokens: every newer set of the session carries the same refresh token. The
// rules above for a store that lost its last writes (a stamp marks the set again, a save stores over it) must take
// only the very value read under the lock for "the set as it was", never another set with the same token.
/** A provider that does not rotate: a new access token, no refresh_token in the answer (the old one stays). */
function nonRotating (): TokenSet {
  const { refreshToken: _none, ...set } = tokenSet()
  return set as TokenSet
}

t.test('a provider that does not rotate, a store back without its last writes, and B refreshing first: A\'s stamp leaves B\'s set as it is', async t => {
  // A's store commands are held while "A's client is still reconnecting" (B's came back first).
  let aDown: Promise<void> | undefined
  const { inner, cores: [a, b] } = await coresOver(t, { refreshFenceMs: 300, lockLeaseMs: 600, lockWaitMs: 300, refreshBackoffMs: 0 },
    async (_method, call) => { if (aDown !== undefined) await aDown; return await call() },
    undefined)
  if (a === undefined || b === undefined) throw new Error('no store')
  const core = a
  const id = sid()
  const old = tokenSet({ expiresInMs: -60_000, refreshToken: 'RT-SECRET-same' })
  await core.save(id, old)
  const snapshot = await inner.get(core.keys.tokens(id)) as string // what the store will come back with

  const atProvider = deferred()
  const answer = deferred()
  const first = core.getFresh(id, async () => { atProvider.resolve(); await answer.promise; return nonRotating() })
  await atProvider.promise

  // The store comes back without its last writes (A's mark, A's lock); B's client is back first.
  const down = deferred()
  aDown = down.promise
  await inner.set(core.keys.tokens(id), snapshot, 3_600_000)
  await inner.delete(core.keys.lock(id))
  const fromB = await b.getFresh(id, async () => nonRotating())
  t.not(fromB.accessToken, old.accessToken, 'B refreshed (the provider does not rotate: the token works again)')
  t.equal((await b.get(id))?.accessToken, fromB.accessToken, 'B\'s fresh set is stored')

  // A's client is back: its stamp runs.
  aDown = undefined
  down.resolve()
  await sleep(250)

  const stored = await b.get(id)
  t.equal(stored?.accessToken, fromB.accessToken, 'B\'s fresh set (newer, same refresh token) is still the stored one')
  const next = await b.getFresh(id, async () => nonRotating()).then((s) => s.accessToken, (err: unknown) => (err as { code?: string }).code)
  t.equal(next, fromB.accessToken, 'B\'s next request is served B\'s fresh set (not refresh_busy while A is at the provider)')

  // A's refresh fails (the provider answers 503): its #unfence.
  answer.reject(new Error('provider 503'))
  await first.catch(() => {})
  t.equal((await b.get(id))?.accessToken, fromB.accessToken, 'after A\'s failed refresh: still B\'s set, not the expired one A read')
})

t.test('a set the app saves while a refresh is at the provider, with the same refresh token, stays (a stamp does not put the set before it back)', async t => {
  const { cores: [store] } = await coresOver(t, { refreshFenceMs: 300, refreshBackoffMs: 0 }, undefined)
  if (store === undefined) throw new Error('no store')
  const id = sid()
  const old = tokenSet({ expiresInMs: -60_000, refreshToken: 'RT-SECRET-same' })
  await store.save(id, old)

  const atProvider = deferred()
  const answer = deferred()
  const first = store.getFresh(id, async () => { atProvider.resolve(); await answer.promise; return nonRotating() })
  await atProvider.promise

  // The app stores a set of its own for the session (its own grant flow; the provider keeps the refresh token).
  const mine = tokenSet({ refreshToken: 'RT-SECRET-same', scope: ['profile', 'balance', 'extra'] })
  await store.save(id, mine)
  await sleep(250) // two stamp ticks of A's mark
  t.equal((await store.get(id))?.accessToken, mine.accessToken, 'the app\'s save is what the store holds')

  answer.reject(new Error('provider 503'))
  await first.catch(() => {})
  t.equal((await store.get(id))?.accessToken, mine.accessToken, 'after the refresh failed: still the app\'s set, not the expired one before it')
})

// The same store, and B asked for the session the moment ITS client is back, before A's is: B takes the lock the
// store lost (a request of B's caught on the wire at the crash is even sent again by ioredis at once) and finds the set
// as it was before A's mark. A marks it again when A's client is back. A flight started just after the store came back
// waits (RECONNECT_SETTLE_MS, at most a third of its lease) and reads again under the lock before presenting anything.
t.test('Redis back without its last writes, and B asked for the session as soon as its own client is back, before A\'s: B presents nothing', async t => {
  // A's client comes back up to 600 ms after Redis, B's within 20 ms.
  const pair = await rollbackPair(t, 'a Redis that loses its last writes, with another instance back first', 'fence-rollback3:', { retryA: 600, retryB: 20, lockLeaseMs: 6000 })
  if (pair === undefined) return
  const { server, ra, rb, b, id, old, presentations, providerAnswers, first, askB } = pair
  await server.stop()
  // Not events.once: it would reject on the connection errors the client emits while Redis is down.
  const bBack = new Promise((resolve) => { rb.once('ready', resolve) })
  await server.start()
  await bBack
  t.comment(`A's client when B's is back: ${ra.status}`)
  t.equal(await askB(), 'FST_AIHUBMIX_REFRESH_BUSY', 'B found A\'s mark again: its callers get 503 while A is at the provider')
  t.same(presentations, ['A'], 'B did not present the refresh token A is presenting')

  providerAnswers.resolve()
  const rotated = await first
  t.not(rotated.refreshToken, old.refreshToken, 'A stored its rotated set')
  t.equal(await askB(), 'ok', 'B serves it')
  t.same(await b.tokenStore.get(id), rotated, 'the rotated set, without another refresh')
  t.same(presentations, ['A'], 'one refresh in all')
})

// As above, with B's instance shutting down while its flight waits (a rolling restart right after the Redis restart):
// close() cut the wait short, and the flight went on to present the token at once.
t.test('B closing while its flight waits after the store came back: B presents nothing', async t => {
  const pair = await rollbackPair(t, 'a Redis that loses its last writes, with another instance closing', 'fence-rollback4:', { retryA: 600, retryB: 20, lockLeaseMs: 6000 })
  if (pair === undefined) return
  const { server, rb, b, presentations, providerAnswers, first, askB } = pair
  await server.stop()
  const bBack = new Promise((resolve) => { rb.once('ready', resolve) })
  await server.start()
  await bBack
  const fromB = askB()
  await sleep(50)
  await b.close()
  t.equal(await fromB, 'FST_AIHUBMIX_REFRESH_BUSY', 'B\'s callers get 503')
  t.same(presentations, ['A'], 'B did not present the refresh token A is presenting')
  providerAnswers.resolve()
  t.equal(await first.then(() => 'ok', (err: unknown) => (err as { code?: string }).code ?? String(err)), 'ok', 'A stored its rotated set (no reuse)')
})

// The wait after the store came back is for other instances' presented marks: with `refreshFenceMs` 0 nobody writes
// one, so a flight right after a reconnection presents the refresh token at once. Measured by order, against a timer of
// half the settle time (RECONNECT_SETTLE_MS, 1 s, at most a third of `lockLeaseMs`) started when the store came back.
for (const [refreshFenceMs, waits] of [[0, false], [300, true]] as const) {
  t.test(`refreshFenceMs ${refreshFenceMs}: a refresh right after the store came back ${waits ? 'waits the settle time first' : 'does not wait'}`, async t => {
    const inner = new MemoryStore()
    let available: ((reconnected: boolean) => void) | undefined
    // The memory store, with the notice a Redis store gives when its client is back.
    const kv = new Proxy(inner, {
      get (target, prop, receiver) {
        if (prop === 'onAvailable') return (listener: (reconnected: boolean) => void) => { available = listener }
        const value = Reflect.get(target, prop, receiver) as unknown
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
    const silent = { level: 'silent', fatal () {}, error () {}, warn () {}, info () {}, debug () {}, trace () {}, silent () {}, child () { return silent } }
    const settleMs = 1000 // min(RECONNECT_SETTLE_MS, lockLeaseMs / 3)
    const core = new TokenStoreCore({ kv, options: resolveOptions({ encryptionKeys: KEY_A, refreshFenceMs, lockLeaseMs: 3 * settleMs, refreshBackoffMs: 0 }), log: silent as never })
    t.teardown(() => core.close())
    const id = sid()
    await core.save(id, tokenSet({ expiresInMs: -60_000 }))
    t.type(available, 'function', 'the store listens for the store coming back')
    const order: string[] = []
    const halfway = sleep(settleMs / 2).then(() => { order.push('half the settle time') })
    available?.(true)
    const fresh = tokenSet()
    const refreshed = core.getFresh(id, async () => fresh).then((set) => { order.push('refreshed'); return set })
    t.same(await refreshed, fresh)
    await halfway
    t.same(order, waits ? ['half the settle time', 'refreshed'] : ['refreshed', 'half the settle time'], waits ? 'refreshed after the wait' : 'refreshed before half the wait was over')
  })
}
