import t from 'tap'
import { TokenStoreOptionsError } from '@fastify-aihubmix/token-store'
import { resolveOptions } from '../../src/token-store/options.js'
import { buildApp, countingRefresher, forEachBackend, KEY_A, kvOf, sid, sleep, tokenSet } from '../helpers/token-store.js'

// getFresh with `force` (after a provider 401) refreshed whatever token the provider refused. A provider that refuses
// the tokens it has just issued (a resource server behind its token service) then got one refresh per request, each
// rotating the refresh token. A set that a FORCED refresh stored less than `forcedRefreshIntervalMs` ago is now
// returned as it is (that refresh did not mend the 401): the caller can tell (its access token is the refused one)
// and answers the 401. The time is stored with the set (in the sealed value, beside the set's fields, never on the set
// returned), so every instance sees it. A set from a refresh that was due carries none: a 401 on it (the provider
// dropped its access tokens) is refreshed at once.

const HOUR = 60 * 60 * 1000

forEachBackend(t, 'a forced refresh of a set a forced refresh stored moments ago is not made; the set comes back as it is', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const id = sid()
  const signedIn = tokenSet({ expiresInMs: 2 * HOUR }) // saved by a sign-in: no refresh time
  await app.tokenStore.save(id, signedIn)
  const r = countingRefresher()
  const refreshed = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: signedIn.accessToken })
  t.not(refreshed.accessToken, signedIn.accessToken, 'a sign-in\'s token refused: refreshed')
  t.equal(r.calls.length, 1)

  for (let i = 0; i < 5; i++) {
    const again = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: refreshed.accessToken })
    t.equal(again.accessToken, refreshed.accessToken, 'the refreshed token refused too: the same set back')
  }
  t.equal((await app.tokenStore.getFresh(id, r.refresh, { force: true })).accessToken, refreshed.accessToken, 'without staleAccessToken too')
  t.equal(r.calls.length, 1, 'no second refresh')
  t.same(await app.tokenStore.get(id), refreshed, 'the stored set is the set, with no field of the store\'s own on it')
  t.equal(Object.hasOwn(await app.tokenStore.get(id) as object, 'forcedRefreshAt'), false)

  const other = tokenSet()
  t.equal((await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: other.accessToken })).accessToken, refreshed.accessToken,
    'a stale token that is not the stored one: the stored set, as before')
  t.equal(r.calls.length, 1)
})

forEachBackend(t, 'a 401 on a set a refresh that was due stored moments ago: refreshed at once (the provider dropped its tokens)', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -1000 }))
  const r = countingRefresher()
  const due = await app.tokenStore.getFresh(id, r.refresh)
  t.equal(r.calls.length, 1, 'the due refresh')
  // The provider restarts and forgets its access tokens: the set refreshed a moment ago is refused.
  const mended = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: due.accessToken })
  t.not(mended.accessToken, due.accessToken, 'refreshed at once, not held back by forcedRefreshIntervalMs')
  t.equal(r.calls.length, 2)
  // That forced refresh did not mend it either (the provider refuses fresh tokens): now it is held back.
  const held = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: mended.accessToken })
  t.equal(held.accessToken, mended.accessToken, 'the set a forced refresh gave: back as it is')
  t.equal(r.calls.length, 2, 'no third refresh')
})

t.test('after the interval, or with 0, a forced refresh is made', async t => {
  for (const interval of [0, 100]) {
    const app = await buildApp(t, { forcedRefreshIntervalMs: interval })
    const id = sid()
    await app.tokenStore.save(id, tokenSet({ expiresInMs: 2 * HOUR }))
    const r = countingRefresher()
    const first = await app.tokenStore.getFresh(id, r.refresh, { force: true })
    if (interval > 0) await sleep(interval + 20)
    const second = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: first.accessToken })
    t.not(second.accessToken, first.accessToken, `forcedRefreshIntervalMs ${interval}: refreshed again`)
    t.equal(r.calls.length, 2)
  }
})

t.test('a due set is refreshed even when a refresh stored it moments ago', async t => {
  const app = await buildApp(t, {})
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -1000 }))
  const short = countingRefresher({ answer: () => tokenSet({ expiresInMs: 5_000, obtainedAt: Date.now() - 15_000 }) }) // due at once
  const first = await app.tokenStore.getFresh(id, short.refresh)
  const second = await app.tokenStore.getFresh(id, short.refresh, { force: true, staleAccessToken: first.accessToken })
  t.not(second.accessToken, first.accessToken)
  t.equal(short.calls.length, 2)
})

t.test('a sealed set from before (no refresh time) is refreshed as before, and one with it opens on any instance', async t => {
  const app = await buildApp(t, {})
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: 2 * HOUR }))
  const r = countingRefresher()
  const first = await app.tokenStore.getFresh(id, r.refresh, { force: true })
  // A second app on the same sealed value (another instance reading the store).
  const peer = await buildApp(t, {})
  const key = (app.tokenStore as unknown as { keys: { tokens (sid: string): string } }).keys.tokens(id)
  const sealed = await kvOf(app.tokenStore).get(key)
  t.ok(sealed !== null)
  await kvOf(peer.tokenStore).set(key, sealed as string, HOUR)
  t.same(await peer.tokenStore.get(id), first)
  t.equal((await peer.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: first.accessToken })).accessToken, first.accessToken,
    'the other instance knows it was refreshed moments ago')
  t.equal(r.calls.length, 1)
})

t.test('forcedRefreshIntervalMs: validated like every option', async t => {
  t.equal(resolveOptions({ encryptionKeys: KEY_A }).forcedRefreshIntervalMs, 30_000, 'default: 30 s')
  for (const bad of [-1, 1.5, '30000']) {
    t.throws(() => resolveOptions({ encryptionKeys: KEY_A, forcedRefreshIntervalMs: bad as number }), TokenStoreOptionsError)
  }
  t.throws(() => resolveOptions({ encryptionKeys: KEY_A, forcedRefreshIntervalMs: -1 }), { message: 'Invalid token-store option "forcedRefreshIntervalMs": expected an integer >= 0, got -1' })
  t.throws(() => resolveOptions({ encryptionKeys: KEY_A, forcedRefreshInterval: 1000 } as never), { message: 'Invalid token-store option "forcedRefreshInterval": is not an option (did you mean forcedRefreshIntervalMs?)' })
})

// A token the provider accepted and then refused (staleAccepted, from aihubmix-proxy) was dropped anew: it waited the
// whole interval like a token refused at its first use. It now waits a second from its forced refresh, which also
// bounds a provider that accepts each token once and then refuses it to one refresh a second.
forEachBackend(t, 'staleAccepted: a forced set whose token worked is refreshed again once it is a second old, not before', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: 2 * HOUR }))
  const r = countingRefresher()
  const forced = await app.tokenStore.getFresh(id, r.refresh, { force: true })
  t.equal(r.calls.length, 1)
  const early = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: forced.accessToken, staleAccepted: true })
  t.equal(early.accessToken, forced.accessToken, 'less than a second after the forced refresh: the same set back')
  t.equal(r.calls.length, 1)
  await sleep(1050)
  const unaccepted = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: forced.accessToken })
  t.equal(unaccepted.accessToken, forced.accessToken, 'not said to have worked: forcedRefreshIntervalMs holds it')
  const later = await app.tokenStore.getFresh(id, r.refresh, { force: true, staleAccessToken: forced.accessToken, staleAccepted: true })
  t.not(later.accessToken, forced.accessToken, 'a second later, said to have worked: refreshed')
  t.equal(r.calls.length, 2)
})
