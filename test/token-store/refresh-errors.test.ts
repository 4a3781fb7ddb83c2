import t from 'tap'
import { RefreshRejectedError, ReauthRequiredError } from '@fastify-aihubmix/token-store'
import type { RefreshEvent, RefreshFailedEvent, RevokedEvent, TokenSet } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, deferred, forEachBackend, sid, sleep, tokenSet } from '../helpers/token-store.js'

const MINUTE = 60_000

forEachBackend(t, 'refresh rejected: ReauthRequired, set deleted, onRevoked, no further refresh', async (t, backend) => {
  const revoked: RevokedEvent[] = []
  const logs: Array<Record<string, unknown>> = []
  const app = await buildApp(t, { ...backend.options, hooks: { onRevoked: async e => { revoked.push(e) } } }, { logs })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const providerError = new Error('invalid_grant')
  const rejection = new RefreshRejectedError({ cause: providerError })
  const calls: string[] = []
  const refresh = async (rt: string): Promise<TokenSet> => {
    calls.push(rt)
    await sleep(10)
    throw rejection
  }
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => app.tokenStore.getFresh(id, refresh)))
  t.equal(calls.length, 1, 'one refresh for ten callers')
  for (const result of results) {
    t.equal(result.status, 'rejected')
    const err = (result as PromiseRejectedResult).reason as Error
    t.ok(err instanceof ReauthRequiredError)
    t.match(err, { code: 'FST_AIHUBMIX_REAUTH_REQUIRED', statusCode: 401 })
    t.equal(err.cause, rejection, 'the refresher\'s error is the cause')
  }
  t.equal(await app.tokenStore.get(id), null, 'the set is deleted')
  t.equal(revoked.length, 1, 'onRevoked once')
  t.equal(revoked[0]?.sid, id)
  t.equal(revoked[0]?.error, rejection)
  const said = logs.filter((l) => String(l.msg).startsWith('token-store: the provider refused the session\'s refresh token for good'))
  t.equal(said.length, 1, 'one info line says the session ended')
  t.match(said[0], { level: 30, session: String, error: { message: 'invalid_grant' } })
  t.notMatch(JSON.stringify(logs), id, 'without the session id')

  await t.rejects(app.tokenStore.getFresh(id, refresh), { code: 'FST_AIHUBMIX_UNAUTHENTICATED' })
  t.equal(calls.length, 1, 'the next call does not call the refresher')
})

forEachBackend(t, 'transient error: the same error rethrown, set kept, onRefreshFailed, next call refreshes (backoff off)', async (t, backend) => {
  const failed: RefreshFailedEvent[] = []
  const refreshed: RefreshEvent[] = []
  const app = await buildApp(t, {
    ...backend.options,
    // The session's backoff after a failure has tests of its own (refresh-backoff.test.ts).
    refreshBackoffMs: 0,
    hooks: { onRefreshFailed: e => { failed.push(e) }, onRefresh: e => { refreshed.push(e) } }
  })
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const outage = Object.assign(new Error('provider answered 503'), { statusCode: 503 })
  const calls: string[] = []
  const failing = async (rt: string): Promise<TokenSet> => {
    calls.push(rt)
    await sleep(10)
    throw outage
  }
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => app.tokenStore.getFresh(id, failing)))
  t.equal(calls.length, 1)
  t.ok(results.every(r => r.status === 'rejected' && r.reason === outage), 'the original error, unchanged')
  t.same(await app.tokenStore.get(id), old, 'the set is kept')
  t.equal(failed.length, 1)
  t.equal(failed[0]?.error, outage)
  t.equal(refreshed.length, 0)

  const next = tokenSet()
  const r = countingRefresher({ answer: () => next })
  t.same(await app.tokenStore.getFresh(id, r.refresh), next, 'the next call refreshes normally')
  t.same(r.calls, [old.refreshToken])
  t.equal(refreshed.length, 1)
})

forEachBackend(t, 'a refresher result that is not a token set is a transient failure', async (t, backend) => {
  const failed: RefreshFailedEvent[] = []
  const app = await buildApp(t, { ...backend.options, hooks: { onRefreshFailed: e => { failed.push(e) } } })
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  await t.rejects(app.tokenStore.getFresh(id, async () => ({ accessToken: 'x' }) as TokenSet), {
    code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT',
    message: /refresher result/
  })
  t.same(await app.tokenStore.get(id), old)
  t.equal(failed.length, 1)
})

forEachBackend(t, 'hooks that throw are logged and never break the request', async (t, backend) => {
  const logs: Array<Record<string, unknown>> = []
  const app = await buildApp(t, {
    ...backend.options,
    hooks: {
      onRefresh: () => { throw new Error('hook bug (sync)') },
      onRevoked: async () => { throw new Error('hook bug (async)') }
    }
  }, { logs })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const next = tokenSet()
  t.same(await app.tokenStore.getFresh(id, async () => next), next, 'onRefresh threw: the caller still gets the set')
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  await t.rejects(app.tokenStore.getFresh(id, async () => { throw new RefreshRejectedError() }), { code: 'FST_AIHUBMIX_REAUTH_REQUIRED' })
  const errors = logs.filter(l => l.level === 50)
  t.equal(errors.length, 2)
  t.match(errors[0], { hook: 'onRefresh', err: { message: 'hook bug (sync)' } })
  t.match(errors[1], { hook: 'onRevoked', err: { message: 'hook bug (async)' } })
  t.notMatch(JSON.stringify(logs), next.accessToken)
  t.notMatch(JSON.stringify(logs), id)
})

forEachBackend(t, 'logout during a slow refresh: the refresh does not resurrect the set', async (t, backend) => {
  const refreshed: RefreshEvent[] = []
  const app = await buildApp(t, { ...backend.options, hooks: { onRefresh: e => { refreshed.push(e) } } })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const inRefresh = deferred()
  const release = deferred()
  const r = countingRefresher({
    before: async () => {
      inRefresh.resolve()
      await release.promise
    }
  })
  const pending = app.tokenStore.getFresh(id, r.refresh)
  await inRefresh.promise
  await app.tokenStore.delete(id) // POST /auth/logout
  release.resolve()
  await t.rejects(pending, { code: 'FST_AIHUBMIX_UNAUTHENTICATED' })
  t.equal(await app.tokenStore.get(id), null, 'still logged out')
  t.equal(refreshed.length, 0, 'no onRefresh for a dropped set')
  t.equal(r.calls.length, 1)
})

forEachBackend(t, 'session destroyed during a slow refresh: same', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const inRefresh = deferred()
  const release = deferred()
  const r = countingRefresher({ before: async () => { inRefresh.resolve(); await release.promise } })
  const pending = app.tokenStore.getFresh(id, r.refresh)
  await inRefresh.promise
  await new Promise<void>((resolve, reject) => app.tokenStore.sessionStore.destroy(id, err => (err ? reject(err) : resolve())))
  release.resolve()
  await t.rejects(pending, { code: 'FST_AIHUBMIX_UNAUTHENTICATED' })
  t.equal(await app.tokenStore.get(id), null)
})

forEachBackend(t, 'a refresher that throws synchronously is handled like any transient error', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 0 })
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await app.tokenStore.save(id, old)
  const boom = new TypeError('not async')
  await t.rejects(app.tokenStore.getFresh(id, (() => { throw boom }) as unknown as () => Promise<TokenSet>), boom)
  t.same(await app.tokenStore.get(id), old)
  // and the lock was released: a new refresh goes through at once
  const r = countingRefresher()
  await app.tokenStore.getFresh(id, r.refresh)
  t.equal(r.calls.length, 1)
})
