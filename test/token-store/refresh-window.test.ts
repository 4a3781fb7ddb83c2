import t from 'tap'
import { refreshWindowMs } from '@fastify-aihubmix/token-store'
import type { TokenSet } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, forEachBackend, sid, tokenSet } from '../helpers/token-store.js'
import { startStack } from '../helpers/stack.js'

// Issue 14, point 1: a set is refreshed when less than min(refreshSkewMs, half its life) remains. A 30-second
// token inside the default 5-minute skew would otherwise be refreshed on every request.

const SECOND = 1000
const MINUTE = 60 * SECOND
const CSRF = { 'x-csrf': '1' }

/** A set of `lifeMs` that has `leftMs` of it left now (obtained `lifeMs - leftMs` ago). */
function aged (lifeMs: number, leftMs: number): TokenSet {
  return tokenSet({ expiresInMs: leftMs, obtainedAt: Date.now() - (lifeMs - leftMs) })
}

t.test('the window is the skew, or half the life when that is shorter', async t => {
  t.equal(refreshWindowMs({ obtainedAt: 0, expiresAt: 30 * SECOND }, 5 * MINUTE), 15 * SECOND, '30-second token: 15 s')
  t.equal(refreshWindowMs({ obtainedAt: 0, expiresAt: 120 * MINUTE }, 5 * MINUTE), 5 * MINUTE, '2-hour token: the skew')
  t.equal(refreshWindowMs({ obtainedAt: 0, expiresAt: 8 * MINUTE }, 5 * MINUTE), 4 * MINUTE, '8-minute token: 4 minutes')
  t.equal(refreshWindowMs({ obtainedAt: 10, expiresAt: 10 }, 5 * MINUTE), 5 * MINUTE, 'a life that cannot be told: the skew')
  t.equal(refreshWindowMs({ obtainedAt: 20, expiresAt: 10 }, 5 * MINUTE), 5 * MINUTE)
})

forEachBackend(t, 'a 30-second token is refreshed past half its life, not before, and once', async (t, backend) => {
  const app = await buildApp(t, backend.options) // default refreshSkewMs: 5 minutes
  const id = sid()
  const young = aged(30 * SECOND, 18 * SECOND)
  await app.tokenStore.save(id, young)
  const r = countingRefresher({ answer: () => tokenSet({ expiresInMs: 30 * SECOND }) })
  for (let i = 0; i < 20; i++) t.same(await app.tokenStore.getFresh(id, r.refresh), young)
  t.same(r.calls, [], '18 s of 30 left: twenty requests, no refresh')

  const old = aged(30 * SECOND, 12 * SECOND)
  await app.tokenStore.save(id, old)
  const fresh = await app.tokenStore.getFresh(id, r.refresh)
  t.same(r.calls, [old.refreshToken], '12 s of 30 left: refreshed')
  for (let i = 0; i < 20; i++) t.same(await app.tokenStore.getFresh(id, r.refresh), fresh)
  t.equal(r.calls.length, 1, 'and the new 30-second token is not refreshed again')
})

forEachBackend(t, 'a 2-hour token is refreshed when less than the skew (5 minutes) remains, as before', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const id = sid()
  const r = countingRefresher()
  const early = aged(120 * MINUTE, 6 * MINUTE)
  await app.tokenStore.save(id, early)
  t.same(await app.tokenStore.getFresh(id, r.refresh), early)
  t.same(r.calls, [], '6 minutes left: no refresh')
  const late = aged(120 * MINUTE, 4 * MINUTE)
  await app.tokenStore.save(id, late)
  await app.tokenStore.getFresh(id, r.refresh)
  t.same(r.calls, [late.refreshToken], '4 minutes left: refreshed')
})

t.test('through the proxy, with the provider\'s own 30-second tokens: no refresh on every request', async t => {
  const stack = await startStack({ mock: { accessTokenTtlSeconds: 30 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.resetCounts()
  for (let i = 0; i < 50; i++) t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 0, 'fifty requests on a new 30-second token: no refresh')

  // 16 seconds later (the set moved back in time): past half its life.
  const id = stack.sessionIdOf(browser)
  const set = await stack.app.tokenStore.get(id)
  if (set === null) throw new Error('no token set')
  await stack.app.tokenStore.save(id, { ...set, obtainedAt: set.obtainedAt - 16 * SECOND, expiresAt: set.expiresAt - 16 * SECOND })
  for (let i = 0; i < 50; i++) t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'one refresh for the next fifty')
  const after = await stack.app.tokenStore.get(id)
  t.equal(after !== null && after.expiresAt - after.obtainedAt, 30 * SECOND, 'the new set is a 30-second one')
})

// A refresher that passes the provider's expires_in on as it is (the README's own) made a set due at once when the
// provider answered 0 or less: every request refreshed again, and rotated the refresh token each time.
forEachBackend(t, 'a refreshed set with no life left counts as living 5 s: twenty requests, one refresh', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  for (const expiresIn of [0, -30, 0.001]) {
    const id = sid()
    await app.tokenStore.save(id, tokenSet({ expiresInMs: -SECOND }))
    const r = countingRefresher({ answer: () => ({ ...tokenSet(), expiresAt: Date.now() + expiresIn * SECOND, obtainedAt: Date.now() }) })
    let last: TokenSet | undefined
    for (let i = 0; i < 20; i++) last = await app.tokenStore.getFresh(id, r.refresh)
    t.equal(r.calls.length, 1, `expires_in ${expiresIn}: one refresh for twenty requests`)
    t.ok((last?.expiresAt ?? 0) - Date.now() > 4 * SECOND, `expires_in ${expiresIn}: counted as living about 5 s`)
  }
})
