import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { KVStore } from '../../src/token-store/kv-store.js'
import { TestBrowser } from '../helpers/browser.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { kvOf } from '../helpers/token-store.js'
import { startComposedApp } from '../helpers/readme-composition.js'

// A route of the app's own in the @fastify/session scope, called by a visitor who is not signed in: @fastify/session
// gives such a request a new session id that no store has ever seen. Its token set is known to be absent, so the
// request must not wait on the store for it: while Redis is down the visitor gets 401 (sign in), not 503, and with
// the store up it costs no store read. A signed-in visitor still reads the store (and gets 503 while it is down).

function ownRoutes (scope: FastifyInstance): void {
  scope.get('/my/balance', async (request) => {
    const info = await request.aihubmix.userinfo()
    return { balance: info.balance_formatted }
  })
  scope.get('/my/tokens', async (request) => ({ stored: (await request.tokens.get()) !== null }))
  // Sign-in done by hand: a new session id (regenerate), a set saved for it, then read back in the same request.
  scope.post('/my/regenerate', async (request) => {
    const before = await request.tokens.get()
    await request.session.regenerate(['aihubmixAuth'])
    const afterRegenerate = await request.tokens.get()
    if (before !== null) await request.tokens.save(before)
    return { before: before !== null, afterRegenerate: afterRegenerate !== null, afterSave: (await request.tokens.get()) !== null }
  })
}

/** Counts the KV reads of the app's token store (the MGET of a session and its set, and plain GETs). */
function countReads (kv: KVStore): () => number {
  let reads = 0
  let inside = false // a read made by another read of the store (getMany through getManyNow) is the same read
  const target = kv as unknown as Record<string, (...args: unknown[]) => unknown>
  for (const name of ['get', 'getMany', 'getManyNow']) {
    const original = target[name]
    if (typeof original !== 'function') continue
    target[name] = function (this: unknown, ...args: unknown[]) {
      if (inside) return original.apply(this, args)
      reads++
      inside = true
      try {
        return original.apply(this, args)
      } finally {
        inside = false
      }
    }
  }
  return () => reads
}

t.test('Redis down: a visitor who is not signed in gets 401 from the app\'s own route, a signed-in one 503', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const keyPrefix = uniquePrefix('anon-outage')
  cleanupPrefix(t, admin, keyPrefix)
  // The app's own connection, which the test cuts (no offline queue: commands fail at once, as the example's do).
  const redis = await connectRedis(t, { enableOfflineQueue: false }) as NonNullable<typeof admin>
  const composed = await startComposedApp(t, { tokenStore: { redis, keyPrefix }, sessionScope: ownRoutes })
  const signedIn = new TestBrowser()
  t.equal((await composed.signIn(signedIn)).headers.location, '/')
  t.equal((await signedIn.get(`${composed.url}/my/balance`)).status, 200, 'Redis up: the signed-in visitor\'s balance')

  redis.disconnect()
  const anonymous = new TestBrowser()
  const balance = await anonymous.get(`${composed.url}/my/balance`)
  t.equal(balance.status, 401, 'not signed in: 401, not the store\'s 503')
  t.equal(JSON.parse(balance.body).code, 'FST_AIHUBMIX_UNAUTHENTICATED')
  t.same(JSON.parse((await anonymous.get(`${composed.url}/my/tokens`)).body), { stored: false }, 'request.tokens.get(): null')
  t.equal(anonymous.cookieHeader(composed.url), undefined, 'and no session cookie set')

  // A cookie naming a session the store cannot be asked about is not "not signed in": it stays a 503.
  const mine = await signedIn.get(`${composed.url}/my/balance`)
  t.equal(mine.status, 503, 'signed in: the store is needed, 503')
  t.equal(JSON.parse(mine.body).code, 'FST_AIHUBMIX_STORE_UNAVAILABLE')
})

t.test('store up: an anonymous request reads nothing from the store; signed-in and regenerated sessions read as before', async (t) => {
  const composed = await startComposedApp(t, { sessionScope: ownRoutes })
  const reads = countReads(kvOf(composed.app.tokenStore))

  const anonymous = new TestBrowser()
  t.equal((await anonymous.get(`${composed.url}/my/balance`)).status, 401)
  t.same(JSON.parse((await anonymous.get(`${composed.url}/my/tokens`)).body), { stored: false })
  t.equal(reads(), 0, 'no store read for a session id made in the request')

  // A stale cookie (its session gone from the store): @fastify/session reads it once and makes a new id.
  const stale = new TestBrowser()
  await composed.signIn(stale)
  const sid = decodeURIComponent(stale.cookieHeader(composed.url)?.match(/sid=([^;.]+)/)?.[1] ?? '')
  t.ok(sid.length > 20, 'the signed-in session id')
  await composed.app.tokenStore.endSession(sid)
  const before = reads()
  t.equal((await stale.get(`${composed.url}/my/balance`)).status, 401, 'the ended session: signed out')
  t.equal(reads() - before, 1, 'one read: @fastify/session\'s look-up of the cookie\'s session, none for the new id')

  const browser = new TestBrowser()
  await composed.signIn(browser)
  t.equal((await browser.get(`${composed.url}/my/balance`)).status, 200, 'signed in: the balance')
  t.same(JSON.parse((await browser.post(`${composed.url}/my/regenerate`)).body),
    { before: true, afterRegenerate: false, afterSave: true },
    'a regenerated id has no set until one is saved for it; then it is read back')
  t.equal((await browser.get(`${composed.url}/my/balance`)).status, 200, 'the regenerated session keeps working')
})

t.test('with @fastify/session on a store of its own, loaded sessions still find their token sets', async (t) => {
  const composed = await startComposedApp(t, { tokenStoreSessions: false, sessionScope: ownRoutes })
  const browser = new TestBrowser()
  t.equal((await composed.signIn(browser)).headers.location, '/')
  t.equal((await browser.get(`${composed.url}/my/balance`)).status, 200, 'the balance, read through the session\'s id')
  t.equal((await new TestBrowser().get(`${composed.url}/my/balance`)).status, 401)
})
