import t from 'tap'
import type { Redis } from 'ioredis'
import type { RedisStore } from '../../src/token-store/redis-store.js'
import { CLIENT_CACHE_FENCE_MS, type TrackingCache } from '../../src/token-store/tracking-cache.js'
import { cleanupPrefix, connectRedis, recordCommands, uniquePrefix } from '../helpers/redis.js'
import { tokenSet } from '../helpers/token-store.js'
import type { T } from '../helpers/token-store.js'
import { fp, sessionApp, sessionCookie } from '../helpers/token-store-session-app.js'

/**
 * Issue 5: a steady-state request (session cookie -> token set -> upstream) costs at most ONE Redis round trip.
 * Every command the app's client sends is recorded by wrapping its sendCommand (ioredis routes every command,
 * `call()` included, through it); the app gets a connection of its own, so nothing else is counted.
 */
async function countingApp (t: T, extra: Record<string, unknown> = {}): Promise<{ app: Awaited<ReturnType<typeof sessionApp>>, commands: string[] } | undefined> {
  const admin = await connectRedis(t)
  if (admin === undefined) return undefined
  const prefix = uniquePrefix('hot')
  cleanupPrefix(t, admin, prefix)
  const client = await connectRedis(t) as Redis
  const commands = recordCommands(client, (name) => name)
  const app = await sessionApp(t, { redis: client, keyPrefix: prefix, ...extra })
  return { app, commands }
}

t.test('a steady-state request costs one Redis command (MGET of session + token set)', async t => {
  const setup = await countingApp(t)
  if (setup === undefined) return
  const { app, commands } = setup
  const set = tokenSet()
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice', set } }))
  t.ok(commands.length > 0, 'the counter sees the login\'s commands')

  for (const url of ['/me', '/fresh', '/me']) {
    commands.length = 0
    const res = await app.inject({ url, headers: { cookie } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().token, fp(set.accessToken))
    t.same(commands, ['MGET'], `${url}: one round trip`)
  }
  t.same(app.refreshCalls, [], 'fresh set: no refresh')
})

t.test('with redisClientCache: a steady-state request costs no Redis command; the same instance sees its own writes', async t => {
  const setup = await countingApp(t, { redisClientCache: true })
  if (setup === undefined) return
  const { app, commands } = setup
  const set = tokenSet()
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice', set } }))
  // Redis also announces this instance's own login writes; one arriving after the first read's answer would drop
  // what it kept. Wait for them (sync: a PING on the tracking connection answers after every earlier announcement).
  const cache = (app.tokenStore as unknown as { kv: RedisStore }).kv.clientCache as TrackingCache
  await cache.sync()
  commands.length = 0
  t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().token, fp(set.accessToken))
  t.same(commands, ['MGET'], 'the login wrote both keys, so the first read goes to Redis')
  // The cache serves a read only within CLIENT_CACHE_FENCE_MS of an answered PING (tracking-cache.ts): a request
  // that starts with a PING (sync) and ends within that time was inside the fence throughout. On a loaded machine a
  // PING and a request can outlast it (the read then rightly goes to Redis): such a try is made again, up to 50 times.
  for (const url of ['/me', '/fresh', '/me']) {
    let within: string[] | undefined
    for (let attempt = 0; attempt < 50 && within === undefined; attempt++) {
      const started = performance.now()
      await cache.sync()
      commands.length = 0
      const res = await app.inject({ url, headers: { cookie } })
      t.equal(res.statusCode, 200)
      t.equal(res.json().token, fp(set.accessToken))
      if (performance.now() - started < CLIENT_CACHE_FENCE_MS) within = [...commands]
    }
    t.same(within, [], `${url}: answered without Redis (inside the fence)`)
  }
  const next = tokenSet()
  t.equal((await app.inject({ method: 'POST', url: '/rotate', payload: { set: next }, headers: { cookie } })).statusCode, 200)
  const after = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(after.json().token, fp(next.accessToken), 'a later save is read at once')
  const out = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.equal(out.statusCode, 204)
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: null, token: null }, 'and a logout at once')
})

t.test('without a cookie: no Redis command (a session id made in the request has no token set)', async t => {
  const setup = await countingApp(t)
  if (setup === undefined) return
  const { app, commands } = setup
  // What the store sent as it started (it reads Redis's clock with TIME) is no request's.
  commands.length = 0
  const res = await app.inject({ url: '/me' })
  t.same(res.json(), { user: null, token: null })
  t.same(commands, [], 'nothing asked of Redis for a new session id')
  const visit = await app.inject({ method: 'POST', url: '/visit' })
  const cookie = sessionCookie(visit)
  commands.length = 0
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.same(me.json(), { user: null, token: null }, 'a session without tokens')
  t.same(commands, ['MGET'], 'the prefetch also answers "no token set"')
})

t.test('reads after a save in the same request go to the store and see the new set', async t => {
  const setup = await countingApp(t)
  if (setup === undefined) return
  const { app, commands } = setup
  const first = tokenSet()
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/login', payload: { user: 'bob', set: first } }))
  const second = tokenSet()
  commands.length = 0
  const res = await app.inject({ method: 'POST', url: '/rotate', headers: { cookie }, payload: { set: second } })
  t.same(res.json(), { before: fp(first.accessToken), after: fp(second.accessToken), fresh: fp(second.accessToken) })
  t.same(commands, ['MGET', 'SET', 'GET', 'GET'], 'prefetch, save, then reads from the store')
})

t.test('an expired set: the refresh path (lock, re-read and backoff check, mark, compare-and-set, unlock)', async t => {
  const setup = await countingApp(t)
  if (setup === undefined) return
  const { app, commands } = setup
  const expired = tokenSet({ expiresInMs: -60_000 })
  const cookie = sessionCookie(await app.inject({ method: 'POST', url: '/login', payload: { user: 'carl', set: expired } }))
  commands.length = 0
  const res = await app.inject({ url: '/fresh', headers: { cookie } })
  t.equal(res.statusCode, 200)
  t.equal(app.refreshCalls.length, 1)
  // EVAL follows an EVALSHA only when Redis did not know the script yet (NOSCRIPT).
  t.same(commands.filter(c => c !== 'EVAL'), ['MGET', 'SET', 'GET', 'PTTL', 'EVALSHA', 'EVALSHA', 'EVALSHA'],
    'prefetch, lock (SET NX PX), re-read of the set and of what is left of the session\'s backoff (its TTL) under the lock (together), ' +
    'the set marked as presented (compare-and-set), the refreshed set stored (compare-and-set), unlock + publish')
})
