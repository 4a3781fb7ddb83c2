import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { startStack, type Stack } from '../helpers/stack.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import type { TestBrowser } from '../helpers/browser.js'

// Redis full: `maxmemory` reached under `noeviction` (the policy a session store wants: nothing signed in is evicted).
// Redis then refuses every write that could grow it (OOM) and still answers reads and deletes. A signed-in user whose
// access token is valid needs no write, except the idle timeout's "last seen" stamp, written back at most every
// idleTimeoutMs / 10: by token-store's session check on routes that read the session from the cookie (/api/* in the
// example), by oauth-routes' preHandler on the @fastify/session routes (/auth/*). That write is best effort: before,
// its refusal failed the whole request with 503 store_unavailable, and since the stamp stayed due, every request of
// every signed-in user did, while Redis read fine. Ending a session past its timeout must still happen.

const CSRF = { 'x-csrf': '1' }
// A "last seen" write is due every second (idleTimeoutMs / 10, at least 1 s). 6 s, not 3: on a loaded CI machine the
// first test's reads, 1.3 s after the sign-in, were already past a 3 s idle timeout.
const IDLE_MS = 6000
const TOUCH_DUE_MS = 1000
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Full { stack: Stack, admin: Redis, browser: TestBrowser, signedInAt: number }

async function fullRedisStack (t: Test): Promise<Full | undefined> {
  const binary = redisServerOrSkip(t, 'the Redis-full case')
  if (binary === undefined) return undefined
  const server = await startRedisServer(binary, await freePort(), ['--maxmemory-policy', 'noeviction'])
  t.teardown(() => server.close())
  const redis = new Redis(server.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))
  const admin = new Redis(server.port, '127.0.0.1')
  t.teardown(() => admin.disconnect())
  const stack = await startStack({ redis, oauth: { idleTimeoutMs: IDLE_MS, absoluteTimeoutMs: 60_000 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const signedInAt = Date.now()
  await admin.config('SET', 'maxmemory', '1') // full: writes refused (OOM), reads and deletes answered
  return { stack, admin, browser, signedInAt }
}

async function apiStatus (full: Full): Promise<string> {
  const r = await full.browser.get(`${full.stack.url}/api/user/info`, CSRF)
  return r.status === 200 ? '200' : `${r.status} ${JSON.parse(r.body).error as string}`
}

async function authSession (full: Full): Promise<string> {
  const r = await full.browser.get(`${full.stack.url}/auth/session`)
  return r.status === 200 ? `200 authenticated: ${String(JSON.parse(r.body).authenticated)}` : `${r.status} ${JSON.parse(r.body).error as string}`
}

function warnings (stack: Stack, pattern: RegExp): string[] {
  return stack.logs.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((l) => l.level === 40 && pattern.test(l.msg)).map((l) => JSON.stringify(l))
}

const SIGNED_IN = '200 authenticated: true'

for (const route of ['/api/* (token-store reads the cookie)', '/auth/* (@fastify/session)'] as const) {
  const read = route.startsWith('/api') ? apiStatus : authSession
  const ok = route.startsWith('/api') ? '200' : SIGNED_IN
  const logged = route.startsWith('/api') ? /token-store: could not record a session's activity/ : /oauth-routes: could not record a session's activity/

  t.test(`Redis full, ${route}: a signed-in user keeps getting 200 while "last seen" cannot be written; one warning`, async (t) => {
    const full = await fullRedisStack(t)
    if (full === undefined) return
    t.equal(await read(full), ok, 'right after: no write due')
    await sleep(TOUCH_DUE_MS + 300) // the "last seen" write comes due
    const statuses = [await read(full), await read(full), await read(full)]
    t.same(statuses, [ok, ok, ok], 'nothing this request needs has to be written')
    const lines = warnings(full.stack, logged)
    t.equal(lines.length, 1, 'one warning for the refused writes, not one per request')
    t.match(lines[0], /OOM/, 'naming the refusal')
    t.notOk(lines[0]?.includes(full.stack.sessionIdOf(full.browser)), 'without the session id')
    // Room again: the stamp is written, and the session outlives its first idle window.
    await full.admin.config('SET', 'maxmemory', '0')
    while (Date.now() - full.signedInAt < IDLE_MS + 1000) {
      t.equal(await read(full), ok, 'active, Redis has room: still signed in')
      await sleep(500)
    }
  })

  t.test(`Redis full, ${route}: the idle timeout still ends a session (only the stamp's refresh is skipped)`, async (t) => {
    const full = await fullRedisStack(t)
    if (full === undefined) return
    // Active every 500 ms, but the stamp cannot be recorded: it stays at the sign-in.
    // Stopping 1.5 s short of it: the stamp was recorded before signedInAt, and a read on a loaded machine is slow.
    while (Date.now() - full.signedInAt < IDLE_MS - 1500) {
      t.equal(await read(full), ok, 'within the idle timeout of the last recorded activity: signed in')
      await sleep(500)
    }
    while (Date.now() - full.signedInAt < IDLE_MS + 300) await sleep(100)
    const signedOut = route.startsWith('/api') ? '401 unauthenticated' : '200 authenticated: false'
    // On /auth/*, @fastify/session's regenerate() deletes the old session (allowed) and stores no new empty one (token-
    // store's session store writes no session that holds nothing): that request answered 503 while it stored one.
    t.equal(await read(full), signedOut, 'past it: ended (a DEL is allowed when Redis is full), answered as signed out')
    t.equal(await apiStatus(full), '401 unauthenticated', 'and signed out on the other routes too')
  })
}
