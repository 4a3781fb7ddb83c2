import t from 'tap'
import { RefreshBackoffError } from '@fastify-aihubmix/token-store'
import type { RefreshFailedEvent, TokenSet } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, forEachBackend, sid, sleep, tokenSet } from '../helpers/token-store.js'

// Issue 14, point 3: after a transient refresh failure the session does not call the refresher again on its very
// next request; it backs off (refreshBackoffMs, or the provider's Retry-After, bounded), the set is kept.

const MINUTE = 60_000

function failingRefresher (error: Error): { refresh: (rt: string) => Promise<TokenSet>, calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    refresh: async (rt: string) => {
      calls.push(rt)
      throw error
    }
  }
}

async function backoffError (promise: Promise<unknown>): Promise<Error & { retryAfterMs?: number }> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  if (!(err instanceof RefreshBackoffError)) throw new Error(`expected RefreshBackoffError, got ${String(err)}`)
  return err as Error & { retryAfterMs?: number }
}

forEachBackend(t, 'after a transient failure: no refresher call until the backoff is over, 503 meanwhile, set kept', async (t, backend) => {
  const failed: RefreshFailedEvent[] = []
  // 1.5 s: the twenty-one calls below must fit in it even on a loaded machine (300 ms did not, under load 12).
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 1500, hooks: { onRefreshFailed: e => { failed.push(e) } } })
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const outage = Object.assign(new Error('provider answered 503'), { statusCode: 503 })
  const down = failingRefresher(outage)

  await t.rejects(app.tokenStore.getFresh(id, down.refresh), outage, 'the failure itself reaches the caller')
  let last: Error & { retryAfterMs?: number } = outage
  for (let i = 0; i < 20; i++) {
    last = await backoffError(app.tokenStore.getFresh(id, down.refresh))
    t.match(last, { code: 'FST_AIHUBMIX_REFRESH_BACKOFF', statusCode: 503 })
    t.equal(last.cause, outage, 'the failure is the cause')
    t.ok(last.retryAfterMs !== undefined && last.retryAfterMs > 0 && last.retryAfterMs <= 1500, `ends within refreshBackoffMs (${last.retryAfterMs})`)
  }
  await backoffError(app.tokenStore.getFresh(id, down.refresh, { force: true }))
  t.equal(down.calls.length, 1, 'twenty-one more calls, forced ones included: the refresher was called once')
  t.equal(failed.length, 1, 'onRefreshFailed once')
  t.same(await app.tokenStore.get(id), old, 'the set is kept')

  await sleep((last.retryAfterMs ?? 0) + 20)
  const up = countingRefresher()
  const fresh = await app.tokenStore.getFresh(id, up.refresh)
  t.same(up.calls, [old.refreshToken], 'after the backoff: one refresh, with the kept refresh token')
  t.same(await app.tokenStore.get(id), fresh)
})

forEachBackend(t, 'the refresher\'s retryAfterMs (the provider\'s Retry-After) sets the backoff, bounded by refreshBackoffMaxMs', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 10, refreshBackoffMaxMs: 5000 })
  const honoured = sid()
  await app.tokenStore.save(honoured, tokenSet({ expiresInMs: -MINUTE }))
  const busy = failingRefresher(Object.assign(new Error('429'), { retryAfterMs: 3000 }))
  await t.rejects(app.tokenStore.getFresh(honoured, busy.refresh))
  const err = await backoffError(app.tokenStore.getFresh(honoured, busy.refresh))
  t.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 1000 && err.retryAfterMs <= 3000, `Retry-After of 3 s, not refreshBackoffMs (${err.retryAfterMs})`)

  const bounded = sid()
  await app.tokenStore.save(bounded, tokenSet({ expiresInMs: -MINUTE }))
  const greedy = failingRefresher(Object.assign(new Error('503'), { retryAfterMs: 86_400_000 }))
  await t.rejects(app.tokenStore.getFresh(bounded, greedy.refresh))
  const capped = await backoffError(app.tokenStore.getFresh(bounded, greedy.refresh))
  t.ok(capped.retryAfterMs !== undefined && capped.retryAfterMs <= 5000, `a day asked, refreshBackoffMaxMs given (${capped.retryAfterMs})`)
  t.equal(busy.calls.length + greedy.calls.length, 2)
})

forEachBackend(t, 'while backing off, a token that has not expired is still served; the backoff is per session', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 60_000 })
  const id = sid()
  // A 30-second token with 10 s left: inside its window, still valid.
  const due = tokenSet({ expiresInMs: 10_000, obtainedAt: Date.now() - 20_000 })
  await app.tokenStore.save(id, due)
  const down = failingRefresher(new Error('provider down'))
  t.same(await app.tokenStore.getFresh(id, down.refresh), due, 'the refresh failed: the valid token is used')
  for (let i = 0; i < 10; i++) t.same(await app.tokenStore.getFresh(id, down.refresh), due)
  t.equal(down.calls.length, 1, 'and the provider is not asked again meanwhile')
  await backoffError(app.tokenStore.getFresh(id, down.refresh, { force: true }))
  t.equal(down.calls.length, 1, 'a forced refresh (the provider refused the token) waits for the backoff too')

  const other = sid()
  await app.tokenStore.save(other, tokenSet({ expiresInMs: -MINUTE }))
  const up = countingRefresher()
  await app.tokenStore.getFresh(other, up.refresh)
  t.equal(up.calls.length, 1, 'another session refreshes at once')
})
