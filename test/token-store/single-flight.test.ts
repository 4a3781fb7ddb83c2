import t from 'tap'
import type { RefreshEvent, TokenSet } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, deferred, forEachBackend, kvOf, sid, tokenSet } from '../helpers/token-store.js'

const MINUTE = 60_000

forEachBackend(t, 'a fresh set is returned as is: no refresh', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const id = sid()
  const set = tokenSet({ expiresInMs: 60 * MINUTE })
  await app.tokenStore.save(id, set)
  const r = countingRefresher()
  t.same(await app.tokenStore.getFresh(id, r.refresh), set)
  t.same(r.calls, [], 'refresher not called')
})

forEachBackend(t, 'no set: UnauthenticatedError, no refresh', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const r = countingRefresher()
  await t.rejects(app.tokenStore.getFresh(sid(), r.refresh), { code: 'FST_AIHUBMIX_UNAUTHENTICATED', statusCode: 401 })
  t.same(r.calls, [])
})

forEachBackend(t, 'inside the skew window: refreshed once, the rotated set saved before resolving', async (t, backend) => {
  const events: RefreshEvent[] = []
  const app = await buildApp(t, { ...backend.options, hooks: { onRefresh: e => { events.push(e) } } })
  const id = sid()
  // A 2-hour token with 2 minutes left: inside the default skew (5 minutes), which is shorter than half its life.
  const old = tokenSet({ expiresInMs: 2 * MINUTE, obtainedAt: Date.now() - 118 * MINUTE })
  await app.tokenStore.save(id, old)
  const next = tokenSet()
  const r = countingRefresher({ answer: () => next })
  const kv = kvOf(app.tokenStore)
  // Read the store in the same tick the caller gets its set: the new set must already be there.
  const storedAtResolution = await app.tokenStore.getFresh(id, r.refresh).then(async set => ({ set, sealed: kv.get(`${backend.prefix}{${id}}:tok`) }))
  t.same(storedAtResolution.set, next)
  t.same(r.calls, [old.refreshToken], 'called once, with the stored refresh token')
  t.same(await app.tokenStore.get(id), next, 'saved')
  t.not(await storedAtResolution.sealed, null)
  t.same(await app.tokenStore.getFresh(id, r.refresh), next, 'now fresh')
  t.equal(r.calls.length, 1, 'no second refresh')
  t.equal(events.length, 1, 'onRefresh once')
  t.match(events[0], { sid: id, set: next })
})

forEachBackend(t, '50 concurrent callers on an expired set: one refresh, all get the new set', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const next = tokenSet()
  // The refresh cannot end before all 50 have called getFresh.
  const allCalled = deferred()
  const r = countingRefresher({ answer: () => next, before: () => allCalled.promise })
  const calls = Array.from({ length: 50 }, () => app.tokenStore.getFresh(id, r.refresh))
  allCalled.resolve()
  const results = await Promise.all(calls)
  t.equal(r.calls.length, 1, 'the refresher ran once')
  t.equal(new Set(results.map(s => s.accessToken)).size, 1, 'everyone got the same access token')
  t.equal(results[0]?.accessToken, next.accessToken)
  t.same(await app.tokenStore.get(id), next)
})

forEachBackend(t, 'a slow refresh is shared by every caller that arrives while it runs', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const started = deferred()
  const finish = deferred()
  const next = tokenSet()
  const r = countingRefresher({
    answer: () => next,
    before: async () => {
      started.resolve()
      await finish.promise
    }
  })
  // Callers in this process join the running flight; they do not each queue on the store's lock (which would also
  // give one refresh, slower, with a lock attempt and a read each).
  const kv = kvOf(app.tokenStore)
  const lock = kv.lock.bind(kv)
  let lockAttempts = 0
  kv.lock = async (...args) => { lockAttempts++; return await lock(...args) }
  const first = Array.from({ length: 10 }, () => app.tokenStore.getFresh(id, r.refresh))
  await started.promise
  // The refresh is running, and runs until `finish`: the late callers arrive inside it.
  const late = Array.from({ length: 10 }, () => app.tokenStore.getFresh(id, r.refresh))
  let answered = 0
  for (const call of [...first, ...late]) call.then(() => { answered++ }, () => { answered++ })
  t.not((await app.tokenStore.get(id))?.accessToken, next.accessToken, 'nothing saved yet')
  t.equal(answered, 0, 'and nobody answered')
  finish.resolve()
  const results = await Promise.all([...first, ...late])
  t.equal(r.calls.length, 1, 'one refresh for early and late callers')
  t.equal(lockAttempts, 1, 'one lock attempt: the other 19 joined the flight')
  t.ok(results.every(s => s.accessToken === next.accessToken), 'all 20 got the new token')
})

forEachBackend(t, 'force + staleAccessToken: refresh once per stale token', async (t, backend) => {
  // Without the interval that keeps a set a refresh has just stored from being forced again
  // (forced-refresh-interval.test.ts): Y below is refused moments after it was stored.
  const app = await buildApp(t, { ...backend.options, forcedRefreshIntervalMs: 0 })
  const id = sid()
  const x = tokenSet({ expiresInMs: 60 * MINUTE }) // fresh, but the provider answered 401 with it
  await app.tokenStore.save(id, x)
  const y = tokenSet()
  const allCalled = deferred()
  const r = countingRefresher({ answer: () => y, before: () => allCalled.promise })
  const calls = Array.from({ length: 10 }, () =>
    app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: x.accessToken }))
  allCalled.resolve()
  const results = await Promise.all(calls)
  t.equal(r.calls.length, 1, 'ten forced callers, one refresh')
  t.ok(results.every(s => s.accessToken === y.accessToken))

  // A request that got its 401 with X only now: another one already refreshed, X differs from the stored Y.
  t.same(await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: x.accessToken }), y)
  t.equal(r.calls.length, 1, 'no refresh: the stored token is already another one')

  // Y itself got a 401: refresh again.
  const z = tokenSet()
  const r2 = countingRefresher({ answer: () => z })
  t.same(await app.tokenStore.getFresh(id, r2.refresh, { force: true, staleAccessToken: y.accessToken }), z)
  t.same(r2.calls, [y.refreshToken])

  // force without staleAccessToken: the stored token is taken as the stale one.
  const w = tokenSet()
  const r3 = countingRefresher({ answer: () => w })
  t.same(await app.tokenStore.getFresh(id, r3.refresh, { force: true }), w)
  t.equal(r3.calls.length, 1)
})

forEachBackend(t, 'a refresh that returns no refresh token keeps the old one', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options, forcedRefreshIntervalMs: 0 }) // forced again at once, below
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const { refreshToken: _none, ...accessOnly } = tokenSet()
  const r = countingRefresher({ answer: () => accessOnly as TokenSet })
  const got = await app.tokenStore.getFresh(id, r.refresh)
  t.equal(got.accessToken, accessOnly.accessToken)
  t.equal(got.refreshToken, old.refreshToken, 'the old refresh token is kept')
  t.equal((await app.tokenStore.get(id))?.refreshToken, old.refreshToken, 'and stored')
  // The next refresh uses it.
  await app.tokenStore.getFresh(id, r.refresh, { force: true })
  t.same(r.calls, [old.refreshToken, old.refreshToken])
})

forEachBackend(t, 'a set without refresh token: usable until it expires, then Unauthenticated', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const r = countingRefresher()
  const inSkew = sid()
  const { refreshToken: _a, ...soon } = tokenSet({ expiresInMs: 2 * MINUTE, obtainedAt: Date.now() - 118 * MINUTE })
  await app.tokenStore.save(inSkew, soon)
  t.same(await app.tokenStore.getFresh(inSkew, r.refresh), soon, 'inside the skew window, still valid: returned')
  await t.rejects(app.tokenStore.getFresh(inSkew, r.refresh, { force: true }), { code: 'FST_AIHUBMIX_UNAUTHENTICATED' }, 'forced: cannot refresh')
  t.same(r.calls, [], 'the refresher is never called without a refresh token')
})

forEachBackend(t, 'refreshes of different sessions do not wait for each other', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const a = sid()
  const b = sid()
  await app.tokenStore.save(a, tokenSet({ expiresInMs: -MINUTE }))
  await app.tokenStore.save(b, tokenSet({ expiresInMs: -MINUTE }))
  const gate = deferred()
  const slowA = countingRefresher({ before: () => gate.promise })
  const fastB = countingRefresher()
  const pendingA = app.tokenStore.getFresh(a, slowA.refresh)
  await app.tokenStore.getFresh(b, fastB.refresh) // would hang if b waited for a's lock
  t.equal(fastB.calls.length, 1)
  gate.resolve()
  await pendingA
  t.equal(slowA.calls.length, 1)
})
