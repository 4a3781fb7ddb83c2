import t from 'tap'
import type { Redis } from 'ioredis'
import { RefreshRejectedError, ReauthRequiredError } from '@fastify-aihubmix/token-store'
import type { TokenSet, TokenStore } from '@fastify-aihubmix/token-store'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { until } from '../helpers/redis-server.js'
import { startStack, type StackOptions } from '../helpers/stack.js'
import { buildApp, deferred, forEachBackend, sid as newSid, tokenSet, type T } from '../helpers/token-store.js'

// A refusal (invalid_grant) is about the refresh token the refresher was given, nothing else. When the set stored
// by then is another one (an instance whose lease ran out while it was at the provider stored the rotated set, and
// the refresh token this flight sent had just been rotated away), that set is the session's: it is used, never
// deleted, and neither onRevoked nor endUserSessionsOnRevoked runs. Only the set the refresh started from is deleted
// (compare-and-delete).
//
// Two of these tests take a lease away from a live flight and let the other instance present the same refresh token:
// they turn the presented mark off (refreshFenceMs: 0), as it is once the mark is over or for an app that turned it
// off. With the mark (the default), the other instance does not present the token at all: the last test.

const HOUR = 60 * 60 * 1000

const refusal = (): Error => new RefreshRejectedError({ cause: new Error('invalid_grant') })

async function signIn (store: TokenStore, userId: string, set: TokenSet): Promise<string> {
  const sid = newSid()
  await store.addUserSession(userId, sid, { ttlMs: HOUR })
  await store.save(sid, set)
  await new Promise<void>((resolve, reject) => store.sessionStore.set(sid, { cookie: {}, aihubmixAuth: { at: Date.now(), seen: Date.now() } }, (err) => { if (err) reject(err); else resolve() }))
  return sid
}

t.test('the lock lost mid-refresh: the instance whose stale refresh token is refused uses the set the other stored', async t => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('refused')
  cleanupPrefix(t, admin, prefix)
  const revoked: string[] = []
  const options = { keyPrefix: prefix, refreshFenceMs: 0, endUserSessionsOnRevoked: true, hooks: { onRevoked: ({ sid }: { sid: string }) => { revoked.push(sid) } } }
  const a = await buildApp(t, { redis: await connectRedis(t) as Redis, ...options })
  const b = await buildApp(t, { redis: await connectRedis(t) as Redis, ...options })
  const old = tokenSet({ expiresInMs: -60_000 })
  const id = await signIn(a.tokenStore, '12345', old)
  const other = await signIn(a.tokenStore, '12345', tokenSet())

  const aAtProvider = deferred()
  const aAnswer = deferred<TokenSet>()
  const onA = a.tokenStore.getFresh(id, async () => { aAtProvider.resolve(); return await aAnswer.promise })
  await aAtProvider.promise
  await admin.del(`${prefix}{${id}}:lock`) // A's lease ran out while it waited for the provider

  const bCalls: string[] = []
  const bAtProvider = deferred()
  const bAnswer = deferred()
  const onB = b.tokenStore.getFresh(id, async (rt) => {
    bCalls.push(rt)
    bAtProvider.resolve()
    await bAnswer.promise
    throw refusal() // A's token call rotated `rt` away
  })
  await bAtProvider.promise
  t.same(bCalls, [old.refreshToken], 'B took the free lock and refreshes with the token A is rotating')

  const rotated = tokenSet()
  aAnswer.resolve(rotated)
  t.same(await onA, rotated, 'A stores the rotated set (its compare-and-set finds the set it started from)')
  bAnswer.resolve()
  t.same(await onB, rotated, 'B answers with the set A stored, not ReauthRequiredError')
  t.same(await b.tokenStore.get(id), rotated, 'the rotated set is still stored')
  t.same(revoked, [], 'no onRevoked')
  t.same((await a.tokenStore.listUserSessions('12345')).length, 2, 'the user\'s sessions are not ended')
  t.ok(await a.tokenStore.get(other), 'the other session keeps its set')
})

forEachBackend(t, 'a set stored while a refusal was on its way is used, and the user\'s sessions live on', async (t, backend) => {
  const revoked: string[] = []
  const app = await buildApp(t, { ...backend.options, endUserSessionsOnRevoked: true, hooks: { onRevoked: ({ sid }) => { revoked.push(sid) } } })
  const store = app.tokenStore
  const id = await signIn(store, '12345', tokenSet({ expiresInMs: -60_000 }))
  await signIn(store, '12345', tokenSet())
  const newer = tokenSet()
  const fresh = await store.getFresh(id, async () => {
    await store.save(id, newer) // e.g. another instance's rotated set, or a new sign-in on this session
    throw refusal()
  })
  t.same(fresh, newer)
  t.same(await store.get(id), newer, 'not deleted')
  t.same(revoked, [])
  t.equal((await store.listUserSessions('12345')).length, 2)
})

forEachBackend(t, 'a set stored meanwhile with the very refresh token refused is revoked all the same', async (t, backend) => {
  const revoked: string[] = []
  const app = await buildApp(t, { ...backend.options, hooks: { onRevoked: ({ sid }) => { revoked.push(sid) } } })
  const store = app.tokenStore
  const old = tokenSet({ expiresInMs: -60_000 })
  const id = await signIn(store, '12345', old)
  await t.rejects(store.getFresh(id, async () => {
    await store.save(id, { ...old }) // the same set written again (sealed anew: another stored value)
    throw refusal()
  }), ReauthRequiredError)
  t.equal(await store.get(id), null, 'deleted')
  t.same(revoked, [id])
})

/**
 * Two example instances sharing Redis; a signed-in browser whose access token has expired asks A, whose refresh
 * waits 800 ms at the token endpoint, then B, which waits for A's lock; then A's lease runs out (its lock deleted,
 * the release announced). Resolves with both answers, once A's and B's requests are over.
 */
async function leaseRunsOutUnderA (t: T, label: string, stackOptions: Pick<StackOptions, 'tokenStore' | 'mock'>) {
  const redis = await connectRedis(t)
  if (redis === undefined) return undefined
  const prefix = uniquePrefix(label)
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ instances: 2, redis, tokenStore: { keyPrefix: prefix, ...stackOptions.tokenStore }, ...(stackOptions.mock === undefined ? {} : { mock: stackOptions.mock }) })
  t.teardown(() => stack.close())
  const [a, b] = stack.peers.map((p) => p.url) as [string, string]
  const { browser } = await stack.login()
  const headers = { 'x-csrf': '1', cookie: browser.cookieHeader(a) as string }
  const sid = stack.sessionIdOf(browser)
  const set = await stack.app.tokenStore.get(sid)
  if (set === null) throw new Error('signed in without a token set')
  await stack.app.tokenStore.save(sid, { ...set, expiresAt: Date.now() - 1000 })
  stack.mock.resetCounts()
  stack.mock.setLatency('token', 800)
  const onA = browser.get(`${a}/api/user/info`, headers)
  await until(async () => stack.mock.counts().token === 1, 'A at the token endpoint')
  const onB = browser.get(`${b}/api/user/info`, headers)
  await new Promise((resolve) => setTimeout(resolve, 150)) // B waits for A's lock
  const lockKey = `${prefix}{${sid}}:lock`
  await redis.del(lockKey) // A's lease ran out while A stalled
  await redis.publish(`${prefix}lock-released`, lockKey)
  const [ra, rb] = await Promise.all([onA, onB])
  stack.mock.setLatency('token', 0)
  return { stack, sid, ra, rb, again: async (url: string) => (await browser.get(`${url}/api/user/info`, headers)).status, a, b }
}

t.test('end to end: two instances, the lease runs out while A is at the token endpoint; the browser stays signed in', async t => {
  // refreshReuseRevokes off: the mock refuses the rotated-away token without revoking the whole grant.
  const run = await leaseRunsOutUnderA(t, 'refused-e2e', { tokenStore: { refreshFenceMs: 0 }, mock: { refreshReuseRevokes: false } })
  if (run === undefined) return
  const { stack, sid, ra, rb, again, a } = run
  t.equal(stack.mock.counts().token, 2, 'both instances called the token endpoint')
  t.same([ra.status, rb.status], [200, 200], 'both requests answered')
  t.ok(await stack.app.tokenStore.get(sid), 'the rotated set A stored is still there')
  t.equal(await again(a), 200, 'still signed in')
})

t.test('end to end, with the presented mark (the default): B does not present the token A is rotating, and nobody is signed out', async (t) => {
  // The mock's default: a rotated-away refresh token presented again revokes the whole grant.
  const run = await leaseRunsOutUnderA(t, 'fenced-e2e', {})
  if (run === undefined) return
  const { stack, ra, rb, again, a, b } = run
  t.equal(stack.mock.counts().token, 1, 'only A called the token endpoint')
  t.equal(stack.mock.counts().refreshTokenReuses, 0, 'no refresh token presented twice')
  t.equal(ra.status, 200, 'A answered with the rotated set')
  t.equal(rb.status, 503, 'B, whose access token had expired, was told to retry rather than present the token again')
  t.equal(await again(b), 200, 'B\'s next request: the set A stored')
  t.equal(await again(a), 200, 'still signed in')
  t.equal(stack.mock.counts().token, 1, 'and no refresh since')
})
