import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import fastifyCookie, { Signer } from '@fastify/cookie'
import fastifySession from '@fastify/session'
import type { TokenSet, TokenStoreOptions } from '@fastify-aihubmix/token-store'
import { TokenStoreOptionsError } from '@fastify-aihubmix/token-store'
import type { KeyLayout } from '../../src/token-store/keys.js'
import type { KVStore } from '../../src/token-store/kv-store.js'
import { buildApp, countingRefresher, forEachBackend, KEY_A, tokenSet } from '../helpers/token-store.js'
import type { T } from '../helpers/token-store.js'
import { fp, SESSION_SECRET, sessionApp, sessionCookie, sessionIdOf } from '../helpers/token-store-session-app.js'
import { cleanupPrefix, connectRedis, recordCommands, uniquePrefix } from '../helpers/redis.js'

// token-store's `sessionCookie` option: routes registered OUTSIDE @fastify/session's scope read the session from
// the signed cookie themselves (the proxy's hot path in the example app). They must accept exactly the sessions
// @fastify/session would, and nothing else.

const SECRET = 'cookie-sessions-test-secret-of-32-chars+'
const OLD_SECRET = 'the-previous-session-secret-of-32-chars!'

interface CookieApp {
  app: FastifyInstance
  kv: KVStore
  refreshCalls: string[]
}

/**
 * Root: @fastify/cookie, token-store with `sessionCookie`, and `/api/*` routes using request.tokens WITHOUT
 * @fastify/session. A child scope: @fastify/session on the token store's session store, with /login, /logout and
 * /visit (as the example app splits them).
 */
async function cookieApp (
  t: T,
  options: Partial<TokenStoreOptions>,
  { sessionSecret = SECRET, cookieMaxAge }: { sessionSecret?: string | string[], cookieMaxAge?: number } = {}
): Promise<CookieApp> {
  const refresher = countingRefresher()
  const app = await buildApp(t, { sessionCookie: { name: 'sessionId', secret: SECRET }, ...options }, {
    setup: async (instance) => {
      await instance.register(fastifyCookie)
      instance.get('/api/me', async (request) => {
        const set = await request.tokens.get()
        return { token: fp(set?.accessToken), hasSession: (request as { session?: unknown }).session !== undefined }
      })
      instance.get('/api/fresh', async (request) => {
        const set = await request.tokens.getFresh(refresher.refresh)
        return { token: fp(set.accessToken) }
      })
      // getFreshSync: whether the set came without a promise, and the set.
      instance.get('/api/fresh-sync', async (request) => {
        const fresh = request.tokens.getFreshSync(refresher.refresh)
        const sync = !(fresh instanceof Promise)
        const set = await fresh
        return { token: fp(set.accessToken), sync }
      })
      instance.post('/api/end', async (request, reply) => {
        await request.tokens.endSession()
        return reply.code(204).send()
      })
      await instance.register(async (scope) => {
        await scope.register(fastifySession, {
          secret: sessionSecret,
          store: scope.tokenStore.sessionStore,
          saveUninitialized: false,
          rolling: false,
          cookie: { secure: false, httpOnly: true, sameSite: 'lax', path: '/', ...(cookieMaxAge !== undefined ? { maxAge: cookieMaxAge } : {}) }
        })
        scope.post<{ Body: { user: string, set: TokenSet } }>('/login', async (request) => {
          await request.session.regenerate()
          request.session.set('user' as never, request.body.user as never)
          await request.tokens.save(request.body.set)
          return { ok: true }
        })
        scope.post('/visit', async (request) => {
          const visits = (request.session.get('visits' as never) as number | undefined) ?? 0
          request.session.set('visits' as never, (visits + 1) as never)
          return { visits: visits + 1 }
        })
        scope.post('/logout', async (request, reply) => {
          await request.tokens.clear()
          await request.session.destroy()
          return reply.code(204).send()
        })
      })
    }
  })
  const kv = (app.tokenStore as unknown as { kv: KVStore }).kv
  return { app, kv, refreshCalls: refresher.calls }
}

/** @fastify/cookie, token-store with `options`, and one route outside any @fastify/session: `GET /api/me` -> { set }. */
async function bareApp (t: T, options: Partial<TokenStoreOptions>, logs?: Array<Record<string, unknown>>): Promise<FastifyInstance> {
  return await buildApp(t, options, {
    logs,
    setup: async (instance) => {
      await instance.register(fastifyCookie)
      instance.get('/api/me', async (request) => ({ set: (await request.tokens.get()) !== null }))
    }
  })
}

function keysOf (app: FastifyInstance): KeyLayout {
  return (app.tokenStore as unknown as { keys: KeyLayout }).keys
}

async function login (app: FastifyInstance, set: TokenSet = tokenSet(), user = 'alice'): Promise<string> {
  return sessionCookie(await app.inject({ method: 'POST', url: '/login', payload: { user, set } }))
}

async function me (app: FastifyInstance, cookie?: string): Promise<{ token: string | null, hasSession: boolean }> {
  const res = await app.inject({ url: '/api/me', ...(cookie === undefined ? {} : { headers: { cookie } }) })
  t.equal(res.statusCode, 200)
  return res.json()
}

forEachBackend(t, 'a session signed in under @fastify/session is read from the cookie outside its scope', async (t, backend) => {
  const { app, refreshCalls } = await cookieApp(t, backend.options)
  const set = tokenSet()
  const cookie = await login(app, set)
  t.same(await me(app, cookie), { token: fp(set.accessToken), hasSession: false }, 'no @fastify/session on the route, the tokens all the same')
  const fresh = await app.inject({ url: '/api/fresh', headers: { cookie } })
  t.same(fresh.json(), { token: fp(set.accessToken) })
  t.same(refreshCalls, [], 'a fresh set is not refreshed')
  t.notOk(fresh.headers['set-cookie'], 'nothing is written back: no cookie is set')
})

forEachBackend(t, 'no cookie, a forged or a foreign cookie: no session, and getFresh answers 401', async (t, backend) => {
  const { app } = await cookieApp(t, backend.options)
  const set = tokenSet()
  const cookie = await login(app, set)
  const value = decodeURIComponent(cookie.slice('sessionId='.length))
  const sid = sessionIdOf(cookie)
  const foreign = new Signer('an-entirely-different-secret-of-32-chars').sign(sid)
  const otherSid = sid.slice(0, -1) + (sid.endsWith('A') ? 'B' : 'A')
  const forged: Array<[string, string | undefined]> = [
    ['no cookie', undefined],
    ['an empty cookie', 'sessionId='],
    ['the bare session id, unsigned', `sessionId=${sid}`],
    ['a signature cut short', `sessionId=${encodeURIComponent(value.slice(0, -1))}`],
    ['a signature with a changed character', `sessionId=${encodeURIComponent(value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A'))}`],
    ['another id with this id\'s signature', `sessionId=${encodeURIComponent(otherSid + value.slice(sid.length))}`],
    ['the right id signed with another secret', `sessionId=${encodeURIComponent(foreign)}`],
    ['a trailing dot', `sessionId=${encodeURIComponent(sid + '.')}`],
    ['a very long value', `sessionId=${'a'.repeat(5000)}.${'b'.repeat(43)}`],
    ['the cookie under another name', `sid=${encodeURIComponent(value)}`]
  ]
  for (const [what, header] of forged) {
    t.same(await me(app, header), { token: null, hasSession: false }, what)
    const res = await app.inject({ url: '/api/fresh', ...(header === undefined ? {} : { headers: { cookie: header } }) })
    t.equal(res.statusCode, 401, `${what}: 401`)
  }
  t.same(await me(app, cookie), { token: fp(set.accessToken), hasSession: false }, 'the real cookie still works')
})

t.test('signatures: @fastify/cookie\'s format; every secret of a rotation verifies', async (t) => {
  // Sessions signed with the old secret (before a rotation) are still read when the new list holds it.
  const { app } = await cookieApp(t, { sessionCookie: { name: 'sessionId', secret: [SECRET, OLD_SECRET] } }, { sessionSecret: OLD_SECRET })
  const set = tokenSet()
  const cookie = await login(app, set)
  const value = decodeURIComponent(cookie.slice('sessionId='.length))
  t.equal(value, new Signer(OLD_SECRET).sign(sessionIdOf(cookie)), 'the cookie is what @fastify/cookie signs')
  t.same(await me(app, cookie), { token: fp(set.accessToken), hasSession: false }, 'verified with the second secret')

  const { app: strict } = await cookieApp(t, { sessionCookie: { name: 'sessionId', secret: SECRET } }, { sessionSecret: OLD_SECRET })
  const other = await login(strict, tokenSet())
  t.same(await me(strict, other), { token: null, hasSession: false }, 'a secret not in the list does not verify')
})

forEachBackend(t, 'a session id without a session record is no session, even with a token set and a valid signature', async (t, backend) => {
  const { app, kv } = await cookieApp(t, backend.options)
  const sid = 'planted-session-id-0123456789abcdef'
  await app.tokenStore.save(sid, tokenSet())
  const cookie = `sessionId=${encodeURIComponent(new Signer(SECRET).sign(sid))}`
  t.same(await me(app, cookie), { token: null, hasSession: false })
  t.not(await kv.get(keysOf(app).tokens(sid)), null, 'nothing was created or deleted by the attempt')
})

forEachBackend(t, 'logout and a new login end the old cookie; endSession deletes the record and the token set', async (t, backend) => {
  const { app, kv } = await cookieApp(t, backend.options)
  const first = await login(app)
  const second = sessionCookie(await app.inject({ method: 'POST', url: '/login', headers: { cookie: first }, payload: { user: 'alice', set: tokenSet() } }))
  t.not(second, first, 'the login regenerated the id')
  t.same(await me(app, first), { token: null, hasSession: false }, 'the pre-login id finds nothing')
  t.not((await me(app, second)).token, null)

  const logout = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: second } })
  t.equal(logout.statusCode, 204)
  t.same(await me(app, second), { token: null, hasSession: false }, 'a logged-out cookie finds nothing')

  const third = await login(app)
  const sid = sessionIdOf(third)
  t.equal((await app.inject({ method: 'POST', url: '/api/end', headers: { cookie: third } })).statusCode, 204)
  t.equal(await kv.get(keysOf(app).session(sid)), null, 'the session record is gone')
  t.equal(await kv.get(keysOf(app).tokens(sid)), null, 'the token set is gone')
  t.same(await me(app, third), { token: null, hasSession: false })
  t.equal((await app.inject({ method: 'POST', url: '/api/end' })).statusCode, 204, 'without a session endSession does nothing')
})

forEachBackend(t, 'a session whose cookie has expired is ended, as @fastify/session would', async (t, backend) => {
  const { app, kv } = await cookieApp(t, backend.options, { cookieMaxAge: 60_000 })
  const cookie = await login(app)
  const sid = sessionIdOf(cookie)
  const key = keysOf(app).session(sid)
  const stored = JSON.parse(await kv.get(key) as string) as { cookie: { expires: string } }
  t.ok(Date.parse(stored.cookie.expires) > Date.now(), 'stored with its expiry')
  // The store's TTL would remove it at that time anyway; a record that outlived it must still not count.
  stored.cookie.expires = new Date(Date.now() - 1000).toISOString()
  await kv.set(key, JSON.stringify(stored), 60_000)
  t.same(await me(app, cookie), { token: null, hasSession: false })
  t.equal(await kv.get(key), null, 'the expired session was deleted')
  t.equal(await kv.get(keysOf(app).tokens(sid)), null, 'with its token set')
})

forEachBackend(t, 'a session saved again keeps living until its new expiry, as @fastify/session decides', async (t, backend) => {
  const { app, kv } = await cookieApp(t, backend.options, { cookieMaxAge: 60_000 })
  const cookie = await login(app)
  // A save of a restored session moves `expires` on and keeps the previous one as `originalExpires`;
  // @fastify/session restores by `expires` alone.
  const saved = sessionCookie(await app.inject({ method: 'POST', url: '/visit', headers: { cookie } }))
  t.equal(saved, cookie, 'the same session, saved again')
  const key = keysOf(app).session(sessionIdOf(cookie))
  const stored = JSON.parse(await kv.get(key) as string) as { cookie: { expires: string, originalExpires?: string } }
  t.ok(stored.cookie.originalExpires, 'the stored cookie has an originalExpires')
  stored.cookie.originalExpires = new Date(Date.now() - 1000).toISOString()
  await kv.set(key, JSON.stringify(stored), 60_000)
  t.not((await me(app, cookie)).token, null, 'an originalExpires in the past does not end it')
  const again = await app.inject({ method: 'POST', url: '/visit', headers: { cookie } })
  t.same(again.json(), { visits: 2 }, 'nor does @fastify/session: it restores the same session')
  t.equal(sessionCookie(again), cookie, 'under the same id')
})

forEachBackend(t, 'session checks: end a session, or update its data (compare-and-set)', async (t, backend) => {
  const { app, kv } = await cookieApp(t, backend.options)
  const seen: unknown[] = []
  app.tokenStore.addSessionCheck((session) => {
    seen.push(session.user)
    if (session.user === 'mallory') return 'end'
    if (session.user === 'bob' && session.visits === undefined) return { touch: { ...session, visits: 1 } }
    return undefined
  })
  t.throws(() => app.tokenStore.addSessionCheck('no' as never), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' })

  const alice = await login(app, tokenSet(), 'alice')
  t.not((await me(app, alice)).token, null, 'a check that returns nothing lets the session through')

  const mallory = await login(app, tokenSet(), 'mallory')
  const mallorySid = sessionIdOf(mallory)
  t.same(await me(app, mallory), { token: null, hasSession: false }, '"end": signed out')
  t.equal(await kv.get(keysOf(app).session(mallorySid)), null, 'its record is gone')
  t.equal(await kv.get(keysOf(app).tokens(mallorySid)), null, 'its token set is gone')

  const bob = await login(app, tokenSet(), 'bob')
  const bobKey = keysOf(app).session(sessionIdOf(bob))
  t.not((await me(app, bob)).token, null, '"touch": the session goes on')
  const touched = JSON.parse(await kv.get(bobKey) as string) as { user: string, visits?: number, cookie?: unknown }
  t.equal(touched.visits, 1, 'the new data was written')
  t.equal(touched.user, 'bob', 'the rest of the session was kept')
  t.ok(touched.cookie, 'the cookie data too, which @fastify/session restores from')
  t.same(seen, ['alice', 'mallory', 'bob'])
})

t.test('a session record that is not a JSON object is no session (logged without its content)', async (t) => {
  const logs: Array<Record<string, unknown>> = []
  const app = await bareApp(t, { sessionCookie: { name: 'sessionId', secret: SECRET } }, logs)
  const kv = (app.tokenStore as unknown as { kv: KVStore }).kv
  const signer = new Signer(SECRET)
  const records: Array<[string, string]> = [['s-not-json', '{"user": "unterminated'], ['s-array', '[1,2]'], ['s-string', '"text"']]
  for (const [sid, value] of records) {
    await kv.set(keysOf(app).session(sid), value, 60_000)
    await app.tokenStore.save(sid, tokenSet())
    const res = await app.inject({ url: '/api/me', headers: { cookie: `sessionId=${encodeURIComponent(signer.sign(sid))}` } })
    t.same(res.json(), { set: false }, `${sid}: no session`)
  }
  const warnings = logs.filter((l) => l.msg === 'token-store: ignored a stored session that is not a JSON object')
  t.equal(warnings.length, 3)
  t.notMatch(JSON.stringify(logs), /unterminated/, 'the stored value is not logged')
})

t.test('without `sessionCookie`, routes outside @fastify/session have no session', async (t) => {
  const app = await bareApp(t, {})
  await app.tokenStore.save('s1', tokenSet())
  const res = await app.inject({ url: '/api/me', headers: { cookie: `sessionId=${encodeURIComponent(new Signer(SECRET).sign('s1'))}` } })
  t.same(res.json(), { set: false })
})

t.test('on Redis: one MGET per request, and a forged cookie reaches no store at all', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('cookie')
  cleanupPrefix(t, admin, prefix)
  const client = await connectRedis(t) as Redis
  const commands = recordCommands(client, (name) => name)
  const { app } = await cookieApp(t, { redis: client, keyPrefix: prefix })
  const set = tokenSet()
  const cookie = await login(app, set)
  for (const url of ['/api/me', '/api/fresh', '/api/me']) {
    commands.length = 0
    const res = await app.inject({ url, headers: { cookie } })
    t.equal(res.json().token, fp(set.accessToken))
    t.same(commands, ['MGET'], `${url}: one round trip, nothing written`)
  }
  commands.length = 0
  const sid = sessionIdOf(cookie)
  await me(app, `sessionId=${encodeURIComponent(sid + '.AAAA')}`)
  await me(app, `sessionId=${encodeURIComponent(new Signer(OLD_SECRET).sign(sid))}`)
  t.same(commands, [], 'bad signatures are refused before any store command')
})

t.test('sessionCookie options are checked at registration, without echoing a secret', async (t) => {
  const bad: Array<[unknown, string]> = [
    [{ name: 'sessionId', secret: 'short-secret' }, 'sessionCookie.secret'],
    [{ name: 'sessionId', secret: [] }, 'sessionCookie.secret'],
    [{ name: 'sessionId', secret: [SECRET, 'short-secret'] }, 'sessionCookie.secret'],
    [{ name: '', secret: SECRET }, 'sessionCookie.name'],
    [{ name: 'bad name;', secret: SECRET }, 'sessionCookie.name'],
    [{ secret: SECRET }, 'sessionCookie'],
    [{ name: 'sid', secret: SECRET, signed: true }, 'sessionCookie']
  ]
  const { resolveOptions } = await import('../../src/token-store/options.js')
  for (const [sessionCookie, path] of bad) {
    try {
      resolveOptions({ encryptionKeys: KEY_A, sessionCookie })
      t.fail(`accepted ${JSON.stringify(sessionCookie)}`)
    } catch (err) {
      t.ok(err instanceof TokenStoreOptionsError, 'a TokenStoreOptionsError')
      t.match((err as Error).message, path, `names ${path}`)
      t.notMatch((err as Error).message, /short-secret/, 'does not echo the secret')
    }
  }
  const resolved = resolveOptions({ encryptionKeys: KEY_A, sessionCookie: { name: 'sid', secret: SECRET } })
  t.same(resolved.sessionCookie, { name: 'sid', secrets: [SECRET] })
})

t.test('the first cookie that does not verify is logged once, without its value', async (t) => {
  const logs: Array<Record<string, unknown>> = []
  const app = await bareApp(t, { sessionCookie: { name: 'sessionId', secret: SECRET } }, logs)
  const signedElsewhere = new Signer(OLD_SECRET).sign('sid-signed-with-the-wrong-secret')
  for (const value of [signedElsewhere, 'forged-id.c2lnbmF0dXJl', signedElsewhere]) {
    const res = await app.inject({ url: '/api/me', headers: { cookie: `sessionId=${encodeURIComponent(value)}` } })
    t.same(res.json(), { set: false })
  }
  const warnings = logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('token-store: a session cookie did not verify'))
  t.equal(warnings.length, 1, 'one line, however many follow')
  t.match(warnings[0]?.msg, /sessionCookie\.secret/, 'it names the setting to check')
  const all = JSON.stringify(logs)
  t.notMatch(all, /sid-signed-with-the-wrong-secret/, 'no cookie value in the log')
  t.notMatch(all, /forged-id/, 'no cookie value in the log')
})

t.test('both compositions share sessions: an app can move from one to the other without signing anyone out', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('compose')
  cleanupPrefix(t, admin, prefix)
  const redisA = await connectRedis(t) as Redis
  const redisB = await connectRedis(t) as Redis
  // A: @fastify/session in front of every route (no sessionCookie). B: /api/* outside it, read from the cookie.
  const a = await sessionApp(t, { redis: redisA, keyPrefix: prefix })
  const { app: b } = await cookieApp(t, { redis: redisB, keyPrefix: prefix, sessionCookie: { name: 'sessionId', secret: SESSION_SECRET } }, { sessionSecret: SESSION_SECRET })

  const setA = tokenSet()
  const cookieA = sessionCookie(await a.inject({ method: 'POST', url: '/login', payload: { user: 'alice', set: setA } }))
  t.same(await me(b, cookieA), { token: fp(setA.accessToken), hasSession: false }, 'signed in under A, read by B from the cookie')

  const setB = tokenSet()
  const cookieB = await login(b, setB, 'bob')
  const seen = await a.inject({ url: '/me', headers: { cookie: cookieB } })
  t.same(seen.json(), { user: 'bob', token: fp(setB.accessToken) }, 'signed in under B, restored by @fastify/session in A')

  await a.inject({ method: 'POST', url: '/logout', headers: { cookie: cookieA } })
  t.same(await me(b, cookieA), { token: null, hasSession: false }, 'a logout under A ends the session for B')
})

t.test('sessionCookie without @fastify/cookie registered first fails at start with a clear error', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { tokenStore } = await import('@fastify-aihubmix/token-store')
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await t.rejects(async () => {
    await app.register(tokenStore, { encryptionKeys: KEY_A, sessionCookie: { name: 'sessionId', secret: SECRET } })
    await app.ready()
  }, { code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', message: /sessionCookie.*@fastify\/cookie/ })
})

t.test('sessionCookie with @fastify/cookie only in a child scope (beside @fastify/session): the error says where to register it', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { tokenStore } = await import('@fastify-aihubmix/token-store')
  const where = 'Invalid token-store option "sessionCookie": needs @fastify/cookie where token-store is (it parses the cookie): ' +
    'register @fastify/cookie before token-store, in token-store\'s scope or a parent of it (one registered only in a child ' +
    'scope, such as beside @fastify/session, is not seen there)'
  const child = Fastify({ logger: false })
  t.teardown(() => child.close())
  await t.rejects(async () => {
    await child.register(tokenStore, { encryptionKeys: KEY_A, sessionCookie: { name: 'sessionId', secret: SECRET } })
    await child.register(async (scope) => {
      await scope.register(fastifyCookie)
      await scope.register(fastifySession, { secret: SECRET, cookieName: 'sessionId', store: scope.tokenStore.sessionStore })
    })
    await child.ready()
  }, { code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', message: where }, 'registered in a child scope: it was "needs @fastify/cookie registered in the same app"')
  const none = Fastify({ logger: false })
  t.teardown(() => none.close())
  await t.rejects(async () => {
    await none.register(tokenStore, { encryptionKeys: KEY_A, sessionCookie: { name: 'sessionId', secret: SECRET } })
    await none.ready()
  }, { message: where }, 'not registered at all: the same fix')
  const after = Fastify({ logger: false })
  t.teardown(() => after.close())
  await after.register(tokenStore, { encryptionKeys: KEY_A, sessionCookie: { name: 'sessionId', secret: SECRET } })
  await after.register(fastifyCookie)
  await t.resolves(async () => { await after.ready() }, 'registered after token-store, in its scope: accepted (the check is made at ready)')
})

forEachBackend(t, 'getFreshSync: the set without a promise only when nothing is to be waited for, and every check made', async (t, backend) => {
  const { app, kv, refreshCalls } = await cookieApp(t, backend.options)
  const set = tokenSet()
  const cookie = await login(app, set)
  const cached = backend.options.redisClientCache === true
  const fresh = async (c: string): Promise<{ statusCode: number, body: { token?: string, sync?: boolean, code?: string } }> => {
    const res = await app.inject({ url: '/api/fresh-sync', headers: { cookie: c } })
    return { statusCode: res.statusCode, body: res.json() }
  }
  // The client cache fills on the first read (once tracking is live): a few reads.
  let first = await fresh(cookie)
  if (cached) {
    for (let i = 0; i < 20 && first.body.sync !== true; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25))
      first = await fresh(cookie)
    }
  }
  t.same(first, { statusCode: 200, body: { token: fp(set.accessToken), sync: backend.name === 'memory' || cached } },
    backend.name === 'memory' || cached ? 'in memory and fresh: no promise' : 'a Redis read: a promise')
  t.same(refreshCalls, [])

  // A forged cookie, no cookie: no session, whatever the store holds.
  t.equal((await fresh(cookie.replace(/=([^.]+)\./, '=x$1.'))).statusCode, 401, 'a cookie whose signature does not verify')

  // Due for refresh: refreshed (a promise), then the new set without one.
  const keys = keysOf(app)
  const sid = sessionIdOf(cookie)
  await app.tokenStore.save(sid, { ...tokenSet(), obtainedAt: Date.now() - 120_000, expiresAt: Date.now() + 1000 })
  const refreshed = await fresh(cookie)
  t.equal(refreshed.statusCode, 200)
  t.equal(refreshed.body.sync, false, 'a refresh is waited for')
  t.equal(refreshCalls.length, 1, 'refreshed once')

  // Ended elsewhere (the record deleted in the store): 401 at once, never the remembered set.
  await kv.delete(keys.session(sid))
  if (cached) await (kv as unknown as { clientCache: { sync: () => Promise<void> } }).clientCache.sync()
  const ended = await fresh(cookie)
  t.equal(ended.statusCode, 401, 'an ended session is not served')
  t.equal(ended.body.code, 'FST_AIHUBMIX_UNAUTHENTICATED')
})
