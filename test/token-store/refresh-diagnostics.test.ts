import t from 'tap'
import { performance } from 'node:perf_hooks'
import { RefreshRejectedError, type TokenSet } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, deferred, forEachBackend, sid, tokenSet } from '../helpers/token-store.js'
import { reachableStrings, recordDiagnostics, type Recorded } from '../helpers/diagnostics.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { until } from '../helpers/redis-server.js'

// Issue 19: a refresh flight is a span of the TracingChannel `aihubmix:refresh` (start, end, then error when it
// failed, asyncStart, asyncEnd) whose context says what the refresher answered (`outcome`), and the wait for the
// session's lock is one `aihubmix:refresh-lock-wait` message. No token is ever on them.

const MINUTE = 60_000
const FAILED_FLIGHT = ['aihubmix:refresh:start', 'aihubmix:refresh:end', 'aihubmix:refresh:error', 'aihubmix:refresh:asyncStart', 'aihubmix:refresh:asyncEnd']

function ofStore (recorded: Recorded[], store: unknown): Recorded[] {
  return recorded.filter((r) => r.message.store === store && r.channel.startsWith('aihubmix:refresh'))
}

function tokensOf (...sets: TokenSet[]): string[] {
  return sets.flatMap((s) => [s.accessToken, s.refreshToken as string])
}

forEachBackend(t, 'a refresh that the provider answers: one span with outcome ok, one lock wait, no token', async (t, backend) => {
  const recorded = recordDiagnostics(t)
  const app = await buildApp(t, backend.options)
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const fresh = tokenSet()
  const { refresh, calls } = countingRefresher({ answer: () => fresh })
  const results = await Promise.all(Array.from({ length: 5 }, () => app.tokenStore.getFresh(id, refresh)))
  t.equal(calls.length, 1)
  t.ok(results.every((set) => set.accessToken === fresh.accessToken))

  const mine = ofStore(recorded, app.tokenStore)
  t.same(mine.map((r) => r.channel), [
    'aihubmix:refresh:start',
    'aihubmix:refresh:end',
    'aihubmix:refresh-lock-wait',
    'aihubmix:refresh:asyncStart',
    'aihubmix:refresh:asyncEnd'
  ], 'one flight for five callers, its lock wait inside it')
  const end = mine.find((r) => r.channel === 'aihubmix:refresh:asyncEnd') as Recorded
  t.same(end.snapshot, { store: app.tokenStore, force: false, outcome: 'ok', result: undefined }, 'the context at asyncEnd')
  const start = mine.find((r) => r.channel === 'aihubmix:refresh:start') as Recorded
  t.same(start.snapshot, { store: app.tokenStore, force: false }, 'nothing but the store and why at start')
  const waits = mine.filter((r) => r.channel === 'aihubmix:refresh-lock-wait')
  t.equal(waits.length, 1)
  t.same(Object.keys(waits[0]?.message ?? {}).sort(), ['outcome', 'store', 'waitMs'])
  t.equal(waits[0]?.message.outcome, 'acquired')
  t.ok(typeof waits[0]?.message.waitMs === 'number' && (waits[0].message.waitMs as number) >= 0)
  const strings = mine.flatMap((r) => reachableStrings(r.message))
  t.notOk(tokensOf(old, fresh).some((token) => strings.some((s) => s.includes(token))), 'no token reachable')
  t.notOk(strings.some((s) => s.includes(id)), 'no session id reachable')
})

forEachBackend(t, 'refused and failed refreshes: outcome rejected or failed, the error the callers got', async (t, backend) => {
  const recorded = recordDiagnostics(t)
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 0 })
  const refused = sid()
  const failing = sid()
  await app.tokenStore.save(refused, tokenSet({ expiresInMs: -MINUTE }))
  await app.tokenStore.save(failing, tokenSet({ expiresInMs: -MINUTE }))
  const rejection = new RefreshRejectedError({ cause: new Error('invalid_grant') })
  const outage = new Error('the provider answered 503')
  await t.rejects(app.tokenStore.getFresh(refused, async () => { throw rejection }), { code: 'FST_AIHUBMIX_REAUTH_REQUIRED' })
  await t.rejects(app.tokenStore.getFresh(failing, async () => { throw outage }), outage)
  // A refresher that answers something that is not a token set is a transient failure too.
  await t.rejects(app.tokenStore.getFresh(failing, async () => ({ accessToken: 42 }) as unknown as TokenSet), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' })

  const flights = ofStore(recorded, app.tokenStore).filter((r) => r.channel.startsWith('aihubmix:refresh:'))
  t.same(flights.map((r) => r.channel), [...FAILED_FLIGHT, ...FAILED_FLIGHT, ...FAILED_FLIGHT])
  const ends = flights.filter((r) => r.channel === 'aihubmix:refresh:asyncEnd').map((r) => r.snapshot)
  t.same(ends.map((c) => c.outcome), ['rejected', 'failed', 'failed'])
  t.match(ends[0]?.error, { code: 'FST_AIHUBMIX_REAUTH_REQUIRED' }, 'the error the callers got')
  t.equal(ends[1]?.error, outage)
  t.equal(ends[2]?.result, undefined)
})

forEachBackend(t, 'a forced refresh (after a 401) says so', async (t, backend) => {
  const recorded = recordDiagnostics(t)
  const app = await buildApp(t, backend.options)
  const id = sid()
  const current = tokenSet()
  await app.tokenStore.save(id, current)
  await app.tokenStore.getFresh(id, countingRefresher().refresh, { force: true, staleAccessToken: current.accessToken })
  const end = ofStore(recorded, app.tokenStore).find((r) => r.channel === 'aihubmix:refresh:asyncEnd')
  t.same(end?.snapshot, { store: app.tokenStore, force: true, outcome: 'ok', result: undefined })
})

t.test('a flight that waited for another instance\'s refresh: the wait is measured, and no outcome (no refresher call)', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('ts')
  cleanupPrefix(t, redis, prefix)
  const recorded = recordDiagnostics(t)
  const a = await buildApp(t, { redis, keyPrefix: prefix })
  const b = await buildApp(t, { redis, keyPrefix: prefix })
  const id = sid()
  await a.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const gate = deferred()
  const entered = deferred()
  const slow = countingRefresher({ before: async () => { entered.resolve(); await gate.promise } })
  const second = countingRefresher()
  const first = a.tokenStore.getFresh(id, slow.refresh)
  await entered.promise // a holds the lock and is in its refresher
  const waiting = b.tokenStore.getFresh(id, second.refresh)
  await until(async () => recorded.some((r) => r.channel === 'aihubmix:refresh:start' && r.message.store === b.tokenStore), 'b\'s flight')
  const bStartedBy = performance.now()
  t.notOk(recorded.some((r) => r.channel === 'aihubmix:refresh-lock-wait' && r.message.store === b.tokenStore), 'b waits for the lock')
  await new Promise((resolve) => setImmediate(resolve))
  const released = performance.now()
  gate.resolve()
  const [setA, setB] = await Promise.all([first, waiting])
  t.equal(setB.accessToken, setA.accessToken, 'b got the set a stored')
  t.equal(second.calls.length, 0, 'b never called its refresher')

  const waitB = recorded.find((r) => r.channel === 'aihubmix:refresh-lock-wait' && r.message.store === b.tokenStore)
  t.equal(waitB?.message.outcome, 'acquired')
  t.ok((waitB?.message.waitMs as number) >= released - bStartedBy, 'b\'s wait lasted at least until a was let go')
  const endB = recorded.find((r) => r.channel === 'aihubmix:refresh:asyncEnd' && r.message.store === b.tokenStore)
  t.same(endB?.snapshot, { store: b.tokenStore, force: false, result: undefined }, 'no outcome: b\'s refresher was not called')
  const endA = recorded.find((r) => r.channel === 'aihubmix:refresh:asyncEnd' && r.message.store === a.tokenStore)
  t.equal(endA?.snapshot.outcome, 'ok')
})
