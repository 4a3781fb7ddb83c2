import t from 'tap'
import { buildApp, countingRefresher, forEachBackend, kvOf, sid, sleep, tokenSet } from '../helpers/token-store.js'

// A token set outlived its session: it was kept for refreshTokenTtlMs (30 days) after its last save, whether or not
// the session it belonged to had ended long before (an idle or absolute timeout, a cookie dropped by the browser),
// a refresh token the provider still honours sealed in the store for weeks. A set's `notAfter` (the end of its
// session) now caps its TTL, at save and at every refresh, so the store lets it go when the session can no longer
// use it.

const HOUR = 60 * 60 * 1000

forEachBackend(t, 'notAfter caps the TTL at save and after each refresh, whatever the refresher returns', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const kv = kvOf(app.tokenStore)
  const key = (id: string): string => (app.tokenStore as unknown as { keys: { tokens (sid: string): string } }).keys.tokens(id)
  const id = sid()
  const notAfter = Date.now() + 2 * HOUR
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -1000, notAfter }))
  const saved = await kv.remainingTtl(key(id))
  t.ok(saved !== null && saved <= 2 * HOUR && saved > 2 * HOUR - 60_000, `the TTL is the time left to notAfter (${String(saved)} ms)`)

  // The refresher's own set says nothing of the session, or something else: the session's end is kept.
  const r = countingRefresher({ answer: () => tokenSet({ notAfter: Date.now() + 100 * HOUR }) })
  const fresh = await app.tokenStore.getFresh(id, r.refresh)
  t.equal(r.calls.length, 1)
  t.equal(fresh.notAfter, notAfter, 'the refreshed set keeps the session\'s end')
  t.equal((await app.tokenStore.get(id))?.notAfter, notAfter, 'stored so')
  const refreshed = await kv.remainingTtl(key(id))
  t.ok(refreshed !== null && refreshed <= 2 * HOUR, `the refresh did not stretch the TTL past notAfter (${String(refreshed)} ms)`)

  // Without notAfter: refreshTokenTtlMs, as before.
  const other = sid()
  await app.tokenStore.save(other, tokenSet())
  const plain = await kv.remainingTtl(key(other))
  t.ok(plain !== null && plain > 2 * HOUR, 'a set without notAfter keeps the refresh token\'s TTL')
})

forEachBackend(t, 'a set whose session has ended is not kept: gone at notAfter, and a save after it stores nothing', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ notAfter: Date.now() + 300 }))
  t.not(await app.tokenStore.get(id), null, 'there until its session ends')
  await sleep(450)
  t.equal(await app.tokenStore.get(id), null, 'gone once it has')

  const late = sid()
  await app.tokenStore.save(late, tokenSet({ notAfter: Date.now() - 1 }))
  t.equal(await app.tokenStore.get(late), null, 'a set saved after its session\'s end is not stored')
})

forEachBackend(t, 'a session that ends while its refresh runs: the callers must sign in again, nothing is stored', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -1000, notAfter: Date.now() + 200 }))
  const r = countingRefresher({ before: () => sleep(350) })
  await t.rejects(app.tokenStore.getFresh(id, r.refresh), { code: 'FST_AIHUBMIX_UNAUTHENTICATED' })
  t.equal(r.calls.length, 1)
  t.equal(await app.tokenStore.get(id), null, 'the refreshed set did not bring the ended session back')
})
