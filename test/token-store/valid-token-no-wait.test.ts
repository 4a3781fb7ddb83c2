import t from 'tap'
import diagnosticsChannel from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { REFRESH_LOCK_WAIT_CHANNEL, type RefreshLockWaitMessage, type TokenSet, type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, deferred, forEachBackend, sid, sleep, tokenSet } from '../helpers/token-store.js'
import type { CountingRefresher, T } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'

// A request whose access token was due for refresh but still valid for minutes waited for the refresh anyway: for
// another instance's (polling its lock for up to lockWaitMs, 12 s, while that instance's token endpoint call hung),
// or for this process's own flight (the refresher's whole deadline, 10 s, on a hung endpoint). Such a request now
// goes on with its still-valid set; the refresh goes on for its own caller, once. Expired sets still wait.

const HOUR = 3_600_000

/** Due (less than refreshSkewMs, 5 min, left of a 2-hour life) but valid for 4 more minutes. */
function dueButValid (): TokenSet {
  return tokenSet({ expiresInMs: 240_000, obtainedAt: Date.now() - 2 * HOUR })
}

/**
 * A refresh that hangs at the provider until `release()`; `started` resolves once it is there, `done` says whether
 * it has answered. On the old code the other callers waited for it: `releaseAfter` lets it answer in the end (so
 * that a caller that waits gets the new set then, after it), while a caller that does not wait resolves before.
 */
function hungRefresh (calls: string[], next: TokenSet): { refresher: CountingRefresher, started: Promise<void>, release: () => void, done: () => boolean } {
  const started = deferred()
  const answer = deferred()
  let answered = false
  const refresher = countingRefresher({
    calls,
    answer: () => next,
    before: async () => {
      started.resolve()
      await answer.promise
      answered = true
    }
  })
  return { refresher, started: started.promise, release: () => { answer.resolve() }, done: () => answered }
}

/** Resolves with `call`'s set, or releases the hung refresh after `fallbackMs` (then `call` may still resolve). */
async function whileHung<V> (call: Promise<V>, hung: { release: () => void }, fallbackMs = 3000): Promise<V> {
  const timer = setTimeout(hung.release, fallbackMs)
  try {
    return await call
  } finally {
    clearTimeout(timer)
  }
}

async function twoInstances (t: T, extra: Partial<TokenStoreOptions> = {}): Promise<{ a: FastifyInstance, b: FastifyInstance } | undefined> {
  const admin = await connectRedis(t)
  if (admin === undefined) return undefined
  const prefix = uniquePrefix('valid')
  cleanupPrefix(t, admin, prefix)
  const a = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, ...extra })
  const b = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, ...extra })
  return { a, b }
}

/** Two instances; `old` stored; A's refresh of it hangs at the provider (until `hung.release()`). */
async function aRefreshHangs (t: T, old: TokenSet, extra: Partial<TokenStoreOptions> = {}): Promise<{
  a: FastifyInstance, b: FastifyInstance, id: string, calls: string[], next: TokenSet, hung: ReturnType<typeof hungRefresh>, onA: Promise<TokenSet>
} | undefined> {
  const setup = await twoInstances(t, extra)
  if (setup === undefined) return undefined
  const { a, b } = setup
  const id = sid()
  await a.tokenStore.save(id, old)
  const calls: string[] = []
  const next = tokenSet()
  const hung = hungRefresh(calls, next)
  const onA = a.tokenStore.getFresh(id, hung.refresher.refresh)
  await hung.started
  return { a, b, id, calls, next, hung, onA }
}

t.test('another instance\'s refresh hangs: a caller whose token is valid for minutes gets its set at once, not after lockWaitMs', async t => {
  const old = dueButValid()
  const setup = await aRefreshHangs(t, old)
  if (setup === undefined) return
  const { b, id, calls, next, hung, onA } = setup
  const onB = countingRefresher({ calls })

  const got = await whileHung(b.tokenStore.getFresh(id, onB.refresh), hung)
  t.notOk(hung.done(), 'B answered while A\'s refresh was still at the provider')
  t.equal(got.accessToken, old.accessToken, 'B: the stored set, still valid')
  t.same(calls, [old.refreshToken], 'one refresh, A\'s')
  hung.release()
  t.same(await onA, next, 'A, which started the refresh, waited for it and got the new set')
  t.same(await b.tokenStore.getFresh(id, onB.refresh), next, 'then B reads the new set')
  t.equal(calls.length, 1)
})

/** One instance on `backend`; `old` stored; its own refresh of it hangs at the provider (until `hung.release()`). */
async function ownRefreshHangs (t: T, backend: { options: Partial<TokenStoreOptions> }, old: TokenSet): Promise<{
  app: FastifyInstance, id: string, calls: string[], next: TokenSet, hung: ReturnType<typeof hungRefresh>, leader: Promise<TokenSet>
}> {
  const app = await buildApp(t, backend.options)
  const id = sid()
  await app.tokenStore.save(id, old)
  const calls: string[] = []
  const next = tokenSet()
  const hung = hungRefresh(calls, next)
  const leader = app.tokenStore.getFresh(id, hung.refresher.refresh)
  await hung.started
  return { app, id, calls, next, hung, leader }
}

forEachBackend(t, 'this process\'s refresh hangs: a second caller whose token is valid for minutes gets its set at once', async (t, backend) => {
  const old = dueButValid()
  const { app, id, calls, next, hung, leader } = await ownRefreshHangs(t, backend, old)

  const got = await whileHung(app.tokenStore.getFresh(id, hung.refresher.refresh), hung)
  t.notOk(hung.done(), 'answered while the refresh was still at the provider')
  t.equal(got.accessToken, old.accessToken, 'the stored set, still valid')
  hung.release()
  t.same(await leader, next, 'the caller that started the refresh waited for it')
  t.same(calls, [old.refreshToken], 'one refresh')
})

// The caller that started the refresh waited for it whatever its token's life: on a token endpoint that hung for the
// refresher's whole deadline (10 s) with a token that ended within it, the request answered 504 upstream_timeout
// with a token it could have used. It now waits until a second before its token ends, then goes on with it.
forEachBackend(t, 'this process\'s refresh hangs: the caller that started it waits only until shortly before its token ends, then gets its set', async (t, backend) => {
  const old = tokenSet({ expiresInMs: 2000, obtainedAt: Date.now() - 2 * HOUR })
  const { app, id, calls, next, hung, leader } = await ownRefreshHangs(t, backend, old)
  const got = await whileHung(leader, hung, 5000)
  t.notOk(hung.done(), 'answered while its refresh was still at the provider')
  t.equal(got.accessToken, old.accessToken, 'its own set, still valid')
  t.ok(old.expiresAt - Date.now() > 0, 'answered before that set\'s access token ended')
  // Once the set has less than a second to live, the next caller waits for the refresh.
  await sleep(Math.max(0, old.expiresAt - Date.now() - 500))
  const later = app.tokenStore.getFresh(id, hung.refresher.refresh)
  hung.release()
  t.same(await later, next, 'the refresh ran on: the next caller gets its set')
  t.same(calls, [old.refreshToken], 'one refresh')
})

forEachBackend(t, 'an expired set still waits for this process\'s refresh and gets the new set', async (t, backend) => {
  const old = tokenSet({ expiresInMs: -60_000 })
  const { app, id, calls, next, hung, leader } = await ownRefreshHangs(t, backend, old)
  const joiners = Promise.all(Array.from({ length: 5 }, () => app.tokenStore.getFresh(id, hung.refresher.refresh)))
  await sleep(50)
  hung.release()
  t.same(await joiners, Array.from({ length: 5 }, () => next), 'every joiner got the new set')
  t.same(await leader, next)
  t.same(calls, [old.refreshToken], 'one refresh however many asked')
})

// Valid for less than lockWaitMs: it waited the whole lockWaitMs for the hung refresh, meanwhile expired, and answered
// 503 refresh_busy. It now waits until a second before its token ends, then goes on with it.
t.test('another instance\'s refresh hangs: a caller whose token ends before lockWaitMs waits until shortly before, then gets its set', async t => {
  const old = tokenSet({ expiresInMs: 2500, obtainedAt: Date.now() - 2 * HOUR })
  const setup = await aRefreshHangs(t, old)
  if (setup === undefined) return
  const { b, id, calls, next, hung, onA } = setup
  const onB = countingRefresher({ calls })

  // The fallback releases A's refresh after 6 s, past the token's end (a caller still waiting then gets the new set).
  const got = await whileHung(b.tokenStore.getFresh(id, onB.refresh), hung, 6000)
  const answeredAt = Date.now()
  t.notOk(hung.done(), 'B answered while A\'s refresh was still at the provider')
  t.equal(got.accessToken, old.accessToken, 'B: the stored set')
  t.ok(answeredAt < old.expiresAt, 'answered before that set\'s access token ended')
  t.equal((await onA).accessToken, old.accessToken, 'A, which started the refresh, went on with its set as well')
  // Once the set has less than a second to live, A's next caller waits for A's refresh.
  await sleep(Math.max(0, old.expiresAt - Date.now() - 500))
  const onALater = setup.a.tokenStore.getFresh(id, onB.refresh)
  hung.release()
  t.same(await onALater, next, 'A\'s refresh ran on: A\'s next caller gets its set')
  t.same(calls, [old.refreshToken], 'one refresh, A\'s')
})

// Callers that need the new set (here forced, after a 401) joined the one-attempt flight of a caller whose token was
// valid; when it ended busy, each started a flight of its own: three waiting for the lock in one process. One now.
t.test('forced callers behind a valid caller\'s one-attempt flight wait in one flight of this process, not one each', async t => {
  const old = dueButValid()
  const setup = await aRefreshHangs(t, old)
  if (setup === undefined) return
  const { b, id, calls, next, hung, onA } = setup
  const waits: RefreshLockWaitMessage[] = []
  const listener = (message: unknown): void => {
    if ((message as RefreshLockWaitMessage).store === b.tokenStore) waits.push(message as RefreshLockWaitMessage)
  }
  diagnosticsChannel.subscribe(REFRESH_LOCK_WAIT_CHANNEL, listener)
  t.teardown(() => diagnosticsChannel.unsubscribe(REFRESH_LOCK_WAIT_CHANNEL, listener))

  const onB = countingRefresher({ calls })
  const valid = b.tokenStore.getFresh(id, onB.refresh)
  const forced = [1, 2, 3].map(() => b.tokenStore.getFresh(id, onB.refresh, { force: true, staleAccessToken: old.accessToken }))
  t.equal((await valid).accessToken, old.accessToken, 'the valid caller: its set at once')
  await sleep(300)
  hung.release()
  t.same((await Promise.all(forced)).map((set) => set.accessToken), [next, next, next].map((set) => set.accessToken), 'the forced callers: A\'s new set')
  t.same(await onA, next)
  t.same(calls, [old.refreshToken], 'one refresh')
  t.same(waits.map((w) => w.outcome), ['busy', 'acquired'], 'B: the one-attempt flight, then ONE flight for the three forced callers')
})

// A forced caller that joined the follow-up flight late (started by an earlier forced caller, with what was left of
// ITS lockWaitMs) answered 503 refresh_busy when that flight gave up, though its own lockWaitMs had seconds left and
// A's refresh answered within them. Each caller now waits its own lockWaitMs.
t.test('a caller that joins a flight late waits its own lockWaitMs, not what an earlier joiner had left', async t => {
  const old = tokenSet({ expiresInMs: 3500, obtainedAt: Date.now() - 2 * HOUR })
  const setup = await aRefreshHangs(t, old, { lockWaitMs: 4000 })
  if (setup === undefined) return
  const { b, id, calls, next, hung, onA } = setup
  const onB = countingRefresher({ calls })
  const forced = { force: true, staleAccessToken: old.accessToken }
  const valid = b.tokenStore.getFresh(id, onB.refresh)
  const early = b.tokenStore.getFresh(id, onB.refresh, forced).catch((err: unknown) => err)
  await sleep(2200)
  const late = b.tokenStore.getFresh(id, onB.refresh, forced)
  // A's refresh answers 5 s after B's first callers came: after the early joiner's 4 s, within the late one's.
  setTimeout(hung.release, 2800)
  t.equal((await valid).accessToken, old.accessToken, 'the valid caller: its set')
  t.same(await late, next, 'the late caller: A\'s new set, within its own lockWaitMs')
  t.comment(`the early caller: ${(await early as { code?: string }).code ?? 'the new set'}`)
  t.equal((await onA).accessToken, old.accessToken, 'A, which started the refresh, went on with its set until shortly before it ended')
  t.same(calls, [old.refreshToken], 'one refresh')
})

// A token with less than the margin to live is as good as expired for the in-process flight: it waits for the new set.
forEachBackend(t, 'a second caller whose token has less than a second to live waits for this process\'s refresh', async (t, backend) => {
  const old = tokenSet({ expiresInMs: 900, obtainedAt: Date.now() - 2 * HOUR })
  const { app, id, calls, next, hung, leader } = await ownRefreshHangs(t, backend, old)
  const second = app.tokenStore.getFresh(id, hung.refresher.refresh)
  setTimeout(hung.release, 300)
  t.same(await second, next, 'the new set, not the one about to end')
  t.same(await leader, next)
  t.same(calls, [old.refreshToken], 'one refresh')
})

for (const [what, set] of [
  ['an expired set', () => tokenSet({ expiresInMs: -60_000 })],
  ['a set valid for less than lockWaitMs', () => tokenSet({ expiresInMs: 5000, obtainedAt: Date.now() - 2 * HOUR })]
] as const) {
  t.test(`another instance's refresh: ${what} waits for it and gets the new set`, async t => {
    const old = set()
    const setup = await aRefreshHangs(t, old)
    if (setup === undefined) return
    const { b, id, calls, next, hung, onA } = setup
    const onB = countingRefresher({ calls })
    let bAnswered = false
    const fromB = b.tokenStore.getFresh(id, onB.refresh).finally(() => { bAnswered = true })
    await sleep(300)
    t.notOk(bAnswered, 'B waits while A is at the provider')
    hung.release()
    t.same(await fromB, next, 'B got A\'s new set')
    t.same(await onA, next)
    t.same(calls, [old.refreshToken], 'one refresh across both instances')
  })
}
