import t from 'tap'
import { Redis } from 'ioredis'
import type { RedisOptions } from 'ioredis'
import { Signer } from '@fastify/cookie'
import { StoreUnavailableError } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, sid, tokenSet } from '../helpers/token-store.js'
import type { T } from '../helpers/token-store.js'
import { SESSION_SECRET, sessionApp } from '../helpers/token-store-session-app.js'

/**
 * Redis down, simulated by a client pointed at a closed port (127.0.0.1:1). Stopping the real Redis is left to
 * the integration tests. No real Redis is needed here, so these tests always run.
 */
function deadClient (t: T, options: RedisOptions = {}): Redis {
  const client = new Redis({
    host: '127.0.0.1',
    port: 1,
    connectTimeout: 500,
    retryStrategy: () => 200, // keeps trying, as a production client would
    ...options
  })
  client.on('error', () => {}) // connection errors are expected here
  t.teardown(() => client.disconnect())
  return client
}

const UNAVAILABLE = { code: 'FST_AIHUBMIX_STORE_UNAVAILABLE', statusCode: 503, message: 'The token store is unavailable' }

t.test('every operation fails with StoreUnavailableError (503), with the cause, and nothing crashes', async t => {
  const client = deadClient(t, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  const app = await buildApp(t, { redis: client })
  const store = app.tokenStore
  const id = sid()
  const r = countingRefresher()
  const operations: Array<[string, () => Promise<unknown>]> = [
    ['get', () => store.get(id)],
    ['save', () => store.save(id, tokenSet())],
    ['delete', () => store.delete(id)],
    ['getFresh', () => store.getFresh(id, r.refresh)],
    ['putRecord', () => store.putRecord('k', { a: 1 }, 1000)],
    ['takeRecord', () => store.takeRecord('k')]
  ]
  for (const [name, op] of operations) {
    let thrown: unknown
    try {
      await op()
    } catch (err) {
      thrown = err
    }
    t.ok(thrown instanceof StoreUnavailableError, `${name}: StoreUnavailableError`)
    t.match(thrown, UNAVAILABLE, `${name}: code and status`)
    t.type((thrown as Error).cause, Error, `${name}: the Redis error is the cause`)
    t.notOk('command' in ((thrown as Error).cause as object), `${name}: the cause carries no command arguments (keys hold session ids)`)
  }
  t.same(r.calls, [], 'no refresh without a store')
})

t.test('a client that queues commands while offline: bounded by redisCommandTimeoutMs', async t => {
  const client = deadClient(t) // ioredis defaults: offline queue on, 20 retries per request
  const app = await buildApp(t, { redis: client, redisCommandTimeoutMs: 200 })
  await t.rejects(app.tokenStore.get(sid()), UNAVAILABLE)
  const err = await app.tokenStore.save(sid(), tokenSet()).catch((e: unknown) => e) as Error
  t.match(err, UNAVAILABLE)
  t.match(err.cause, { message: /did not answer within 200 ms/ })
})

t.test('@fastify/session on a dead store: 503 JSON with the code, no token or session id in logs', async t => {
  const logs: Array<Record<string, unknown>> = []
  const client = deadClient(t, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  const app = await sessionApp(t, { redis: client }, { logs })
  const id = 'Xq3-session-id-that-must-not-be-logged'
  const cookie = `sessionId=${encodeURIComponent(new Signer(SESSION_SECRET).sign(id))}`

  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(me.statusCode, 503)
  t.same(me.json(), {
    statusCode: 503,
    code: 'FST_AIHUBMIX_STORE_UNAVAILABLE',
    error: 'Service Unavailable',
    message: 'The token store is unavailable'
  })

  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'x', set: tokenSet() } })
  t.equal(login.statusCode, 503, 'regenerate/save failures are 503 too')
  t.equal(login.json().code, 'FST_AIHUBMIX_STORE_UNAVAILABLE')

  const again = await app.inject({ url: '/me', headers: { cookie } })
  t.equal(again.statusCode, 503, 'still answering (no crash)')
  // A request without a session cookie gets a session id made for it, which no store has seen: nothing to ask.
  const anonymous = await app.inject({ url: '/me' })
  t.equal(anonymous.statusCode, 200, 'a visitor without a session needs no store')
  const text = JSON.stringify(logs)
  t.ok(logs.some(l => (l.level as number) >= 50 && /FST_AIHUBMIX_STORE_UNAVAILABLE/.test(JSON.stringify(l))), 'the 503s are logged')
  t.notMatch(text, id, 'no session id in the logs')
  t.notMatch(text, 'SECRET', 'no token in the logs')
})

t.test('a Redis reply error (not a connection error) is wrapped too, without the command\'s keys', async t => {
  const { connectRedis, uniquePrefix, cleanupPrefix } = await import('../helpers/redis.js')
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('down')
  cleanupPrefix(t, redis, prefix)
  const logs: Array<Record<string, unknown>> = []
  const app = await buildApp(t, { redis, keyPrefix: prefix }, { logs })
  const id = sid()
  await redis.hset(`${prefix}{${id}}:tok`, 'not', 'a string') // WRONGTYPE for GET
  await redis.pexpire(`${prefix}{${id}}:tok`, 60_000)
  const err = await app.tokenStore.get(id).catch((e: unknown) => e) as Error
  t.match(err, UNAVAILABLE)
  t.match(err.cause, { message: /WRONGTYPE/ })
  t.notOk('command' in (err.cause as object), 'ioredis attached the command (with the key); the cause does not carry it')
  t.notMatch(JSON.stringify(err.cause) + String((err.cause as Error).stack), id)
})

t.test('Redis goes away and comes back: 503 meanwhile, then it works again by itself', async t => {
  const { connectRedis, redisUrl, uniquePrefix, cleanupPrefix } = await import('../helpers/redis.js')
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('down')
  cleanupPrefix(t, admin, prefix)
  const target = new URL(redisUrl())
  const net = await import('node:net')
  // A TCP relay to the real Redis that can be cut and restored on the same port.
  const sockets = new Set<import('node:net').Socket>()
  let relay = net.createServer(socket => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname)
    sockets.add(socket)
    sockets.add(upstream)
    socket.pipe(upstream).pipe(socket)
    const drop = (): void => { socket.destroy(); upstream.destroy() }
    socket.on('error', drop)
    upstream.on('error', drop)
  })
  await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
  const port = (relay.address() as import('node:net').AddressInfo).port
  const cut = async (): Promise<void> => {
    await new Promise<void>(resolve => { relay.close(() => resolve()); for (const s of sockets) s.destroy(); sockets.clear() })
  }
  t.teardown(cut)

  const client = new Redis({
    host: '127.0.0.1',
    port,
    username: target.username || undefined,
    password: target.password !== '' ? decodeURIComponent(target.password) : undefined,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50
  })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  await new Promise(resolve => client.once('ready', resolve))
  const app = await buildApp(t, { redis: client, keyPrefix: prefix })
  const id = sid()
  const set = tokenSet()
  await app.tokenStore.save(id, set)

  await cut()
  await t.rejects(app.tokenStore.get(id), UNAVAILABLE, 'down: 503')

  relay = net.createServer(relay.listeners('connection')[0] as (socket: import('node:net').Socket) => void)
  await new Promise<void>(resolve => relay.listen(port, '127.0.0.1', resolve))
  await new Promise(resolve => client.status === 'ready' ? resolve(undefined) : client.once('ready', resolve))
  t.same(await app.tokenStore.get(id), set, 'back: the same client works again, the set is still there')
})
