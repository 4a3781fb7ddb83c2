import t from 'tap'
import type { Redis } from 'ioredis'
import { RefreshBackoffError, RefreshRejectedError } from '@fastify-aihubmix/token-store'
import type { RefreshEvent, RefreshFailedEvent, RevokedEvent, TokenSet, TokenStore } from '@fastify-aihubmix/token-store'
import { connectRedis, cleanupPrefix, uniquePrefix } from '../helpers/redis.js'
import { buildApp, countingRefresher, deferred, forEachBackend, kvOf, sid, sleep, tokenSet } from '../helpers/token-store.js'

// A refresher answers its callers by a deadline of its own (aihubmix-proxy's timeoutMs), but the provider call may go
// on: the provider may have rotated the refresh token already, and its answer is then the only copy of the new one.
// Such a refresher rejects with an error carrying `lateRefresh`, the promise of the call's own outcome. The callers
// get the error on time; the refresh itself is not thrown away: no other refresh of the session starts while it
// runs (in this process, nor on another instance: the lock stays held), and a set it brings is stored as any
// refresh result. Before, the flight ended with the callers' error, freed the lock, and the next refresh presented
// the refresh token the provider had just rotated (with reuse detection: the grant revoked, the user signed out).

const MINUTE = 60_000

interface LateRefresher {
  refresh: (refreshToken: string) => Promise<TokenSet>
  calls: string[]
  /** What the callers get (carries `lateRefresh`). */
  error: Error
  late: ReturnType<typeof deferred<TokenSet>>
}

/** A refresher whose callers' deadline passes at once, its provider call settling when the test says. */
function lateRefresher (): LateRefresher {
  const late = deferred<TokenSet>()
  const error = Object.assign(new Error('the provider did not answer in time'), { statusCode: 504 })
  Object.defineProperty(error, 'lateRefresh', { value: late.promise })
  const calls: string[] = []
  return {
    calls,
    error,
    late,
    refresh: async (refreshToken) => {
      calls.push(refreshToken)
      throw error
    }
  }
}

function lockKey (store: TokenStore, id: string): string {
  return (store as unknown as { keys: { lock (sid: string): string } }).keys.lock(id)
}

/** Whether another owner could take the session's refresh lock now (taken and given back at once). */
async function lockIsFree (store: TokenStore, id: string): Promise<boolean> {
  const kv = kvOf(store)
  if (!await kv.lock(lockKey(store, id), 'test-owner', 1000)) return false
  await kv.unlock(lockKey(store, id), 'test-owner')
  return true
}

async function until (check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const end = Date.now() + 5000
  while (!await check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

forEachBackend(t, 'a refresh that outlives its callers: they get its error on time, nothing refreshes meanwhile, and its late set is stored', async (t, backend) => {
  const logs: Array<Record<string, unknown>> = []
  const refreshed: RefreshEvent[] = []
  const failed: RefreshFailedEvent[] = []
  const app = await buildApp(t, {
    ...backend.options,
    refreshBackoffMs: 50,
    hooks: { onRefresh: e => { refreshed.push(e) }, onRefreshFailed: e => { failed.push(e) } }
  }, { logs })
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const slow = lateRefresher()

  const joined = await Promise.all([1, 2, 3].map(() => app.tokenStore.getFresh(id, slow.refresh).then(() => 'resolved', (e: unknown) => e)))
  for (const result of joined) t.equal(result, slow.error, 'every caller gets the refresher\'s error, on time')
  t.same(slow.calls, [old.refreshToken], 'one refresher call')

  // While the provider call goes on: no second refresh, however long refreshBackoffMs is over.
  await sleep(100)
  const other = countingRefresher()
  for (let i = 0; i < 5; i++) {
    const err = await app.tokenStore.getFresh(id, other.refresh).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof RefreshBackoffError, 'RefreshBackoffError (503) while it runs')
    t.equal((err as Error).cause, slow.error, 'its cause: what the callers got')
  }
  const forced = await app.tokenStore.getFresh(id, other.refresh, { force: true }).then(() => undefined, (e: unknown) => e)
  t.ok(forced instanceof RefreshBackoffError, 'a forced refresh waits too')
  t.same(other.calls, [], 'no refresher call while the first one runs')
  t.notOk(await lockIsFree(app.tokenStore, id), 'the refresh lock is still held: no other instance refreshes either')
  t.same(failed, [], 'not a failure (yet): onRefreshFailed not called')
  t.same(await app.tokenStore.get(id), old, 'the set is kept meanwhile')

  const next = tokenSet()
  slow.late.resolve({ ...next, refreshToken: undefined })
  await until(async () => (await app.tokenStore.get(id))?.accessToken === next.accessToken, 'the late set to be stored')
  const stored = await app.tokenStore.get(id)
  t.equal(stored?.refreshToken, old.refreshToken, 'merged as any refresh result (no refresh token came back: the old one is kept)')
  await until(() => lockIsFree(app.tokenStore, id), 'the lock to be let go')
  t.equal(refreshed.length, 1, 'onRefresh once')
  t.equal((await app.tokenStore.getFresh(id, other.refresh)).accessToken, next.accessToken, 'then served as usual')
  t.same(other.calls, [], 'without another refresh')
  const lines = logs.filter(l => typeof l.msg === 'string' && l.msg.includes('whose answer came after'))
  t.equal(lines.length, 1, 'one info line')
  t.match(lines[0], { level: 30, session: String })
  t.notMatch(JSON.stringify(logs), new RegExp(`${old.accessToken}|${old.refreshToken as string}|${next.accessToken}|${id}`), 'no token nor session id in the logs')
})

forEachBackend(t, 'a set whose access token is still valid is served while the refresh runs', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const id = sid()
  const due = tokenSet({ expiresInMs: MINUTE, obtainedAt: Date.now() - 119 * MINUTE }) // a 2-hour token inside its 5-minute window, still valid
  await app.tokenStore.save(id, due)
  const slow = lateRefresher()
  t.same(await app.tokenStore.getFresh(id, slow.refresh), due, 'the refresh failed its caller: the valid set instead')
  t.same(await app.tokenStore.getFresh(id, slow.refresh), due, 'and while it runs')
  t.equal(slow.calls.length, 1)
  slow.late.reject(new Error('never answered'))
})

forEachBackend(t, 'a late answer that fails: the session backs off as after any failure, then refreshes', async (t, backend) => {
  const failed: RefreshFailedEvent[] = []
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 300, hooks: { onRefreshFailed: e => { failed.push(e) } } })
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const slow = lateRefresher()
  await t.rejects(app.tokenStore.getFresh(id, slow.refresh), slow.error)
  const cut = new Error('the answer never came')
  slow.late.reject(cut)
  await until(() => failed.length === 1, 'onRefreshFailed')
  t.equal(failed[0]?.error, cut, 'onRefreshFailed with the late failure')
  const err = await app.tokenStore.getFresh(id, countingRefresher().refresh).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof RefreshBackoffError, 'then the backoff')
  t.equal((err as Error).cause, cut)
  await sleep(350)
  const up = countingRefresher()
  await app.tokenStore.getFresh(id, up.refresh)
  t.same(up.calls, [old.refreshToken], 'after the backoff: one refresh with the kept refresh token')
})

forEachBackend(t, 'a late refusal: the set is deleted as after any refusal', async (t, backend) => {
  const revoked: RevokedEvent[] = []
  const app = await buildApp(t, { ...backend.options, hooks: { onRevoked: e => { revoked.push(e) } } })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const slow = lateRefresher()
  await t.rejects(app.tokenStore.getFresh(id, slow.refresh), slow.error)
  slow.late.reject(new RefreshRejectedError())
  await until(() => revoked.length === 1, 'onRevoked')
  t.equal(await app.tokenStore.get(id), null, 'the set is gone')
  await t.rejects(app.tokenStore.getFresh(id, countingRefresher().refresh), { code: 'FST_AIHUBMIX_UNAUTHENTICATED' })
})

forEachBackend(t, 'a logout while the refresh runs wins: its late set is not stored', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const slow = lateRefresher()
  await t.rejects(app.tokenStore.getFresh(id, slow.refresh), slow.error)
  await app.tokenStore.delete(id)
  slow.late.resolve(tokenSet())
  await until(() => lockIsFree(app.tokenStore, id), 'the lock to be let go')
  t.equal(await app.tokenStore.get(id), null, 'not brought back')
})

t.test('close does not wait for a late answer', async (t) => {
  const app = await buildApp(t, {})
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const slow = lateRefresher() // never settles
  await t.rejects(app.tokenStore.getFresh(id, slow.refresh), slow.error)
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 1000, 'closed at once')
})

t.test('another instance does not refresh while the late refresh runs, and gets its set when it is stored', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('late')
  cleanupPrefix(t, admin, prefix)
  const a = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix })
  const b = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, lockWaitMs: 3000 })
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await a.tokenStore.save(id, old)
  const slow = lateRefresher()
  await t.rejects(a.tokenStore.getFresh(id, slow.refresh), slow.error, 'A\'s callers get the error')
  const onB = countingRefresher()
  const fromB = b.tokenStore.getFresh(id, onB.refresh)
  await sleep(200)
  const next = tokenSet()
  slow.late.resolve(next)
  t.equal((await fromB).accessToken, next.accessToken, 'B waited for the lock and got the set A stored')
  t.same(onB.calls, [], 'B never called its refresher (it would have presented the rotated refresh token)')
})
