import t from 'tap'
import { DEFAULT_SESSION_TTL_MS } from '@fastify-aihubmix/token-store'
import { scanKeys } from '../helpers/redis.js'
import { connectRedis } from '../helpers/redis.js'
import type { Redis } from 'ioredis'
import { forEachBackend, kvOf, tokenSet } from '../helpers/token-store.js'
import { fp, sessionApp, sessionCookie, sessionIdOf } from '../helpers/token-store-session-app.js'

forEachBackend(t, 'login, steady-state reads, logout', async (t, backend) => {
  const app = await sessionApp(t, backend.options)
  const set = tokenSet()
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice', set } })
  t.equal(login.statusCode, 200)
  const cookie = sessionCookie(login)
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.same(me.json(), { user: 'alice', token: fp(set.accessToken) })
  t.equal(me.headers['set-cookie'], undefined, 'a steady-state request sets no cookie')

  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.equal(logout.statusCode, 204)
  const after = await app.inject({ url: '/me', headers: { cookie } })
  t.same(after.json(), { user: null, token: null }, 'the old cookie no longer authenticates')
  t.equal(await app.tokenStore.get(sessionIdOf(cookie)), null)
})

forEachBackend(t, 'a steady-state request writes nothing', async (t, backend) => {
  const app = await sessionApp(t, backend.options)
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob', set: tokenSet() } })
  const cookie = sessionCookie(login)
  const store = app.tokenStore.sessionStore
  const writes: string[] = []
  const originalSet = store.set.bind(store)
  const originalDestroy = store.destroy.bind(store)
  store.set = (id, session, cb) => { writes.push('set'); originalSet(id, session, cb) }
  store.destroy = (id, cb) => { writes.push('destroy'); originalDestroy(id, cb) }
  t.teardown(() => { store.set = originalSet; store.destroy = originalDestroy })
  for (const url of ['/me', '/fresh', '/me']) {
    const res = await app.inject({ url, headers: { cookie } })
    t.equal(res.statusCode, 200, url)
  }
  t.same(writes, [], 'no session write-back after reading tokens (the prefetched set does not mark the session modified)')
  const visit = await app.inject({ method: 'POST', url: '/visit', headers: { cookie } })
  t.equal(visit.statusCode, 200)
  t.same(writes, ['set'], 'a modified session is saved (so the counter above could see writes)')
})

forEachBackend(t, 'the stored session holds neither the prefetched blob nor any token', async (t, backend) => {
  const app = await sessionApp(t, backend.options)
  const set = tokenSet()
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'carol', set } })
  const cookie = sessionCookie(login)
  await app.inject({ url: '/me', headers: { cookie } }) // the session now carries the prefetched blob
  await app.inject({ method: 'POST', url: '/visit', headers: { cookie } }) // ... and is written back
  const raw = await kvOf(app.tokenStore).get(`${backend.prefix}{${sessionIdOf(cookie)}}:sess`) as string
  const stored = JSON.parse(raw) as Record<string, unknown>
  t.same(Object.keys(stored).sort(), ['cookie', 'user', 'visits'])
  t.notMatch(raw, set.accessToken)
  t.notMatch(raw, 'v1.')
  t.notMatch(raw, '__tokenStorePrefetch')
})

forEachBackend(t, 'regenerate destroys the pre-login session id (and anything stored under it)', async (t, backend) => {
  const app = await sessionApp(t, backend.options)
  const visit = await app.inject({ method: 'POST', url: '/visit' })
  const preLogin = sessionCookie(visit)
  const preId = sessionIdOf(preLogin)
  t.not(await kvOf(app.tokenStore).get(`${backend.prefix}{${preId}}:sess`), null, 'the pre-login session is stored')
  await app.tokenStore.save(preId, tokenSet()) // as if something had stored tokens under it
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: preLogin }, payload: { user: 'dave', set: tokenSet() } })
  const postLogin = sessionCookie(login)
  t.not(sessionIdOf(postLogin), preId, 'a new id')
  t.equal(await kvOf(app.tokenStore).get(`${backend.prefix}{${preId}}:sess`), null, 'old session destroyed')
  t.equal(await app.tokenStore.get(preId), null, 'old token set destroyed with it')
  const withOld = await app.inject({ url: '/me', headers: { cookie: preLogin } })
  t.same(withOld.json(), { user: null, token: null }, 'the pre-login id never authenticates')
  const withNew = await app.inject({ url: '/me', headers: { cookie: postLogin } })
  t.equal(withNew.json().user, 'dave')
})

forEachBackend(t, 'a save within a request is seen by later reads of the same request', async (t, backend) => {
  const app = await sessionApp(t, backend.options)
  const first = tokenSet()
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'erin', set: first } })
  const cookie = sessionCookie(login)
  const second = tokenSet()
  const res = await app.inject({ method: 'POST', url: '/rotate', headers: { cookie }, payload: { set: second } })
  t.same(res.json(), { before: fp(first.accessToken), after: fp(second.accessToken), fresh: fp(second.accessToken) })
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(me.json().token, fp(second.accessToken))
})

forEachBackend(t, 'a refresh through request.tokens is saved and seen by the next request', async (t, backend) => {
  const app = await sessionApp(t, backend.options)
  const expired = tokenSet({ expiresInMs: -60_000 })
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'fay', set: expired } })
  const cookie = sessionCookie(login)
  const res = await app.inject({ url: '/fresh', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.same(app.refreshCalls, [expired.refreshToken])
  t.not(res.json().token, fp(expired.accessToken))
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(me.json().token, res.json().token)
  await app.inject({ url: '/fresh', headers: { cookie } })
  t.equal(app.refreshCalls.length, 1, 'no second refresh')
})

forEachBackend(t, 'session TTL: the cookie\'s maxAge, else sessionTtlMs', async (t, backend) => {
  const pttl = async (app: Awaited<ReturnType<typeof sessionApp>>, key: string): Promise<number> =>
    backend.redis !== undefined ? await backend.redis.pttl(key) : kvOf(app.tokenStore).pttl?.(key) ?? -2
  const withMaxAge = await sessionApp(t, backend.options, { cookieMaxAge: 3_600_000 })
  const a = sessionCookie(await withMaxAge.inject({ method: 'POST', url: '/visit' }))
  const ttlA = await pttl(withMaxAge, `${backend.prefix}{${sessionIdOf(a)}}:sess`)
  t.ok(ttlA > 3_500_000 && ttlA <= 3_600_000, 'until the cookie expires')

  const sessionOnly = await sessionApp(t, { ...backend.options, sessionTtlMs: 120_000 })
  const b = sessionCookie(await sessionOnly.inject({ method: 'POST', url: '/visit' }))
  const ttlB = await pttl(sessionOnly, `${backend.prefix}{${sessionIdOf(b)}}:sess`)
  t.ok(ttlB > 100_000 && ttlB <= 120_000, 'sessionTtlMs for a browser-session cookie')
  t.equal(DEFAULT_SESSION_TTL_MS, 86_400_000)
})

t.test('a session created on one instance is read by another sharing Redis', async t => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const { uniquePrefix, cleanupPrefix } = await import('../helpers/redis.js')
  const prefix = uniquePrefix('sess')
  cleanupPrefix(t, admin, prefix)
  const one = await sessionApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix })
  const two = await sessionApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix })
  const set = tokenSet()
  const cookie = sessionCookie(await one.inject({ method: 'POST', url: '/login', payload: { user: 'gus', set } }))
  t.same((await two.inject({ url: '/me', headers: { cookie } })).json(), { user: 'gus', token: fp(set.accessToken) })
  t.equal((await two.inject({ method: 'POST', url: '/logout', headers: { cookie } })).statusCode, 204)
  t.same((await one.inject({ url: '/me', headers: { cookie } })).json(), { user: null, token: null }, 'destroyed for both')
  const id = sessionIdOf(cookie)
  t.same((await scanKeys(admin, prefix)).filter(k => k.includes(id)), [], 'no key of the session is left')
})

t.test('session store contract without @fastify/session', async t => {
  const { createTokenStore } = await import('@fastify-aihubmix/token-store')
  const store = createTokenStore({ encryptionKeys: 'hex:' + '5a'.repeat(32) })
  t.teardown(() => store.close())
  const s = store.sessionStore
  const call = <V>(fn: (cb: (err?: Error | null, v?: V) => void) => void): Promise<V | undefined> =>
    new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))))
  t.equal(await call(cb => s.get('nope', cb)), null, 'unknown id: null')
  await call(cb => s.set('id1', { cookie: { expires: new Date(Date.now() + 60_000) }, a: 1 }, cb))
  t.match(await call(cb => s.get('id1', cb)), { a: 1 })
  await call(cb => s.set('id2', { cookie: { expires: new Date(Date.now() - 1000) }, a: 1 }, cb))
  t.equal(await call(cb => s.get('id2', cb)), null, 'an already expired session is not stored')
  await call(cb => s.set('id3', { cookie: {}, a: 1 }, cb))
  t.match(await call(cb => s.get('id3', cb)), { a: 1 }, 'no expiry: sessionTtlMs')
  await kvOf(store).set('aihubmix:{bad}:sess', 'not json', 60_000)
  t.equal(await call(cb => s.get('bad', cb)), null, 'unparsable: no session')
  await kvOf(store).set('aihubmix:{arr}:sess', '[1]', 60_000)
  t.equal(await call(cb => s.get('arr', cb)), null, 'not an object: no session')
  const circular: Record<string, unknown> = {}
  circular.self = circular
  await t.rejects(call(cb => s.set('id4', circular, cb)), TypeError)
  await call(cb => s.destroy('id1', cb))
  t.equal(await call(cb => s.get('id1', cb)), null)

  // A new session holding nothing (what regenerate() saves, or saveUninitialized: true) is not written; a session
  // read from the store and emptied is (else the data it held would stay).
  await call(cb => s.set('empty', { cookie: { expires: new Date(Date.now() + 60_000) } }, cb))
  await call(cb => s.set('undefs', { cookie: {}, aihubmixAuth: undefined }, cb))
  t.same(await kvOf(store).getMany(['aihubmix:{empty}:sess', 'aihubmix:{undefs}:sess']), [null, null], 'no record for an empty new session')
  await call(cb => s.set('held', { cookie: {}, a: 1 }, cb))
  const held = await call<Record<string, unknown>>(cb => s.get('held', cb))
  if (held === undefined) throw new Error('no session')
  delete held.a
  await call(cb => s.set('held', held, cb))
  t.same(await kvOf(store).get('aihubmix:{held}:sess'), '{"cookie":{}}', 'a stored session emptied is written empty')
})

/**
 * An app with token-store and @fastify/session (`session`: its options beyond secret and store) whose POST /login does
 * what token-store's README shows: regenerate(), something of the app's own in the session (`field`), then
 * request.tokens.save(set); GET /me says whether the request has a token set. `sids`: the ids the logins made.
 */
async function loginApp (t: { teardown: (fn: () => unknown) => void }, session: Record<string, unknown>, field: boolean, trustProxy = false): Promise<{ app: import('fastify').FastifyInstance, sids: string[] }> {
  const { default: Fastify } = await import('fastify')
  const { default: fastifyCookie } = await import('@fastify/cookie')
  const { default: fastifySession } = await import('@fastify/session')
  const { default: tokenStore } = await import('@fastify-aihubmix/token-store')
  const app = Fastify({ trustProxy })
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: 'k'.repeat(40) })
  await app.register(fastifySession, { secret: 's'.repeat(40), store: app.tokenStore.sessionStore, ...session })
  const sids: string[] = []
  app.post('/login', async (request) => {
    await request.session.regenerate()
    sids.push(request.session.sessionId)
    if (field) (request.session as unknown as { set: (key: string, value: unknown) => void }).set('userId', 'u1')
    await request.tokens.save(tokenSet())
    return { ok: true }
  })
  app.get('/me', async (request) => ({ signedIn: await request.tokens.get() !== null }))
  return { app, sids }
}

// token-store's README, "After a login": `await request.session.regenerate(); await request.tokens.save(set)`. The
// session holds nothing but its cookie, its token set lives beside it: the session store's empty-session rule must
// still write its record, or the next request finds none and the sign-in silently does not happen.
t.test('a session whose only content is its token set is written (regenerate, then tokens.save)', async t => {
  const { app } = await loginApp(t, { cookie: { secure: false } }, false)
  const login = await app.inject({ method: 'POST', url: '/login' })
  const cookie = login.cookies.find((c) => c.name === 'sessionId')
  t.ok(cookie, 'the login sent a session cookie')
  const me = await app.inject({ url: '/me', cookies: { sessionId: cookie?.value ?? '' } })
  t.same(me.json(), { signedIn: true }, 'the next request is signed in')
  const anonymous = await app.inject({ url: '/me' })
  t.same(anonymous.json(), { signedIn: false })

  // With the README's options (saveUninitialized: false), @fastify/session saves a session, and sends its cookie,
  // only once it holds something: the README's login puts something of the app's own in it.
  const { app: readme } = await loginApp(t, { saveUninitialized: false, rolling: false, cookie: { secure: false } }, true)
  const signedIn = (await readme.inject({ method: 'POST', url: '/login' })).cookies.find((c) => c.name === 'sessionId')
  t.ok(signedIn, 'the README\'s login sends a session cookie')
  t.same((await readme.inject({ url: '/me', cookies: { sessionId: signedIn?.value ?? '' } })).json(), { signedIn: true })
})

// The token-store README's login behind its own options (cookie.secure: true, @fastify/session's default too) but
// served over plain http: @fastify/session saved nothing and sent no cookie, the login answered 200, and the token set
// stayed stored for its refresh token's life under a session that never was. Now the save says why, and stores nothing.
t.test('tokens saved for a Secure-cookie session over plain http: an error naming the fix, nothing stored', async t => {
  const options = { saveUninitialized: false, cookie: { secure: true } }
  const { app, sids } = await loginApp(t, options, true)
  const login = await app.inject({ method: 'POST', url: '/login' })
  t.equal(login.statusCode, 500)
  t.equal(login.json().code, 'FST_AIHUBMIX_INSECURE_SESSION_COOKIE')
  t.match(login.json().message, /Fix: serve the app over https .* cookie\.secure: 'auto' for local http$/)
  t.equal(await app.tokenStore.get(sids[0] ?? ''), null, 'no token set stored')
  // Over https (a TLS proxy in front, trusted), the same login signs in.
  const { app: secureApp } = await loginApp(t, options, true, true)
  const https = await secureApp.inject({ method: 'POST', url: '/login', headers: { 'x-forwarded-proto': 'https' } })
  t.equal(https.statusCode, 200)
  t.ok(https.cookies.find((c) => c.name === 'sessionId'), 'a session cookie')
})
