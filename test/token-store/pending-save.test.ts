import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { RefreshBusyError } from '@fastify-aihubmix/token-store'
import type { RefreshEvent, TokenSet } from '@fastify-aihubmix/token-store'
import { sessionTag } from '../../src/token-store/token-store.js'
import { buildApp, countingRefresher, sid, tokenSet } from '../helpers/token-store.js'
import type { T } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from '../helpers/redis.js'
import { until } from '../helpers/redis-server.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'

// Issue 14, point 2: once the provider has answered a refresh, the rotated set reaches the store. Instance A talks
// to the real Redis through a relay the test cuts (its save fails); instance B keeps its direct connection.

const MINUTE = 60_000

interface Instances {
  a: FastifyInstance
  b: FastifyInstance
  relay: TcpRelay
  admin: Redis
  logs: Array<Record<string, unknown>>
  refreshed: RefreshEvent[]
  prefix: string
}

async function instances (t: T): Promise<Instances | undefined> {
  const admin = await connectRedis(t)
  if (admin === undefined) return undefined
  const prefix = uniquePrefix('pending')
  cleanupPrefix(t, admin, prefix)
  const target = new URL(redisUrl())
  const relay = await startTcpRelay(target.hostname, Number(target.port === '' ? 6379 : target.port))
  t.teardown(() => relay.close())
  // As the example configures its client: fail fast while Redis cannot be reached, reconnect by itself.
  const viaRelay = new Redis({
    host: '127.0.0.1',
    port: relay.port,
    username: target.username === '' ? undefined : decodeURIComponent(target.username),
    password: target.password === '' ? undefined : decodeURIComponent(target.password),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50
  })
  viaRelay.on('error', () => {})
  t.teardown(() => viaRelay.disconnect())
  await new Promise(resolve => viaRelay.once('ready', resolve))
  const logs: Array<Record<string, unknown>> = []
  const refreshed: RefreshEvent[] = []
  const a = await buildApp(t, {
    redis: viaRelay,
    keyPrefix: prefix,
    lockLeaseMs: 5000,
    redisCommandTimeoutMs: 500,
    hooks: { onRefresh: e => { refreshed.push(e) } }
  }, { logs })
  const b = await buildApp(t, { redis: admin, keyPrefix: prefix, lockWaitMs: 300 })
  return { a, b, relay, admin, logs, refreshed, prefix }
}

/** Whether any log line holds one of these strings. */
function leaked (logs: Array<Record<string, unknown>>, secrets: string[]): string[] {
  const text = JSON.stringify(logs)
  return secrets.filter(secret => text.includes(secret))
}

t.test('a save that fails: the set is served from the process, the lock stays held, and it is stored when Redis is back', async t => {
  const env = await instances(t)
  if (env === undefined) return
  const { a, b, relay, admin, logs, refreshed, prefix } = env
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await b.tokenStore.save(id, old)
  const next = tokenSet()
  const onA = countingRefresher({ answer: async () => { await relay.cut(); return next } })

  t.same(await a.tokenStore.getFresh(id, onA.refresh), next, 'the caller gets the rotated set although it could not be stored')
  for (let i = 0; i < 5; i++) t.same(await a.tokenStore.getFresh(id, onA.refresh), next, 'later requests on this instance: the same set')
  t.equal(onA.calls.length, 1, 'one refresh')
  t.equal(refreshed.length, 0, 'onRefresh waits for the save')

  t.same(await b.tokenStore.get(id), old, 'not stored yet')
  t.not(await admin.get(`${prefix}{${id}}:lock`), null, 'the lock is still held')
  const onB = countingRefresher()
  await t.rejects(b.tokenStore.getFresh(id, onB.refresh), RefreshBusyError, 'the other instance waits for the lock (then 503 refresh_busy)')
  t.same(onB.calls, [], 'and never refreshes with the dead refresh token')

  await relay.restore()
  await until(async () => await admin.exists(`${prefix}{${id}}:lock`) === 0, 'the lock to be released after the save')
  t.same(await b.tokenStore.get(id), next, 'stored')
  t.same(await b.tokenStore.getFresh(id, onB.refresh), next, 'the other instance now uses it')
  t.same(onB.calls, [])
  t.equal(refreshed.length, 1, 'onRefresh once it is stored')

  t.ok(logs.some(l => l.level === 40 && l.session === sessionTag(id) && /could not be stored yet/.test(String(l.msg))), 'a warning names the session by its tag')
  t.ok(logs.some(l => l.level === 30 && l.session === sessionTag(id) && /stored a refreshed token set/.test(String(l.msg))))
  t.notOk(logs.some(l => (l.level as number) >= 50), 'no error')
  t.same(leaked(logs, [id, old.accessToken, old.refreshToken ?? '', next.accessToken, next.refreshToken ?? '']), [], 'no session id or token in any log line')
})

t.test('a save that Redis applied but whose reply was lost counts as saved', async t => {
  const env = await instances(t)
  if (env === undefined) return
  const { a, b, relay, admin, logs, refreshed, prefix } = env
  const id = sid()
  const key = `${prefix}{${id}}:tok`
  await b.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const before = await admin.get(key)
  const next = tokenSet()
  const onA = countingRefresher({ answer: () => { relay.holdReplies(); return next } })

  const got = a.tokenStore.getFresh(id, onA.refresh)
  await until(async () => await admin.get(key) !== before, 'Redis to apply the compare-and-set')
  await relay.cut() // the reply never arrives
  t.same(await got, next)
  await relay.restore()
  await until(async () => await admin.exists(`${prefix}{${id}}:lock`) === 0, 'the lock to be released')
  t.same(await b.tokenStore.get(id), next, 'the set Redis took is the rotated one')
  t.ok(logs.some(l => l.level === 40 && /could not be stored yet/.test(String(l.msg))), 'the first attempt had no answer')
  t.equal(refreshed.length, 1, 'counted as saved: onRefresh once')
  t.ok(logs.some(l => l.level === 30 && /stored a refreshed token set/.test(String(l.msg))), 'logged as stored')
  t.notOk(logs.some(l => /another one was stored/.test(String(l.msg))), 'not mistaken for someone else\'s set')
  t.equal(onA.calls.length, 1)
})

t.test('a logout on another instance while the set waits to be stored wins: it is not brought back', async t => {
  const env = await instances(t)
  if (env === undefined) return
  const { a, b, relay, admin, logs, refreshed, prefix } = env
  const id = sid()
  await b.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const onA = countingRefresher({ answer: async () => { await relay.cut(); return tokenSet() } })
  await a.tokenStore.getFresh(id, onA.refresh)

  await b.tokenStore.endSession(id) // POST /auth/logout on B
  await relay.restore()
  await until(async () => await admin.exists(`${prefix}{${id}}:lock`) === 0, 'the retries to end')
  t.equal(await b.tokenStore.get(id), null, 'still logged out')
  await t.rejects(a.tokenStore.getFresh(id, onA.refresh), { code: 'FST_AIHUBMIX_UNAUTHENTICATED' }, 'A no longer serves it')
  t.equal(refreshed.length, 0)
  t.ok(logs.some(l => l.level === 30 && /the session ended meanwhile/.test(String(l.msg))))
  t.notOk(logs.some(l => (l.level as number) >= 50), 'a logout is not an error')
})

t.test('a set still waiting when the app closes is stored if Redis is back within one lease (a restart during a deploy)', async t => {
  const env = await instances(t)
  if (env === undefined) return
  const { a, b, relay, logs } = env
  const id = sid()
  await b.tokenStore.save(id, tokenSet({ expiresInMs: -MINUTE }))
  const next: TokenSet = tokenSet()
  await a.tokenStore.getFresh(id, countingRefresher({ answer: async () => { await relay.cut(); return next } }).refresh)
  // Before, close() made one last attempt and dropped the set: the session then had to sign in again, and the
  // other instances presented the rotated-away refresh token once the fence was over.
  const back = setTimeout(() => { relay.restore().catch(() => {}) }, 800)
  t.teardown(() => clearTimeout(back))
  const started = performance.now()
  await a.close()
  t.ok(performance.now() - started < 5000, 'close() waited less than the lease (5 s here)')
  t.same(await b.tokenStore.get(id), next, 'the rotated set was stored')
  t.same(logs.filter(l => (l.level as number) >= 50), [], 'no error line')
})

t.test('a set still waiting when the app closes is dropped with one error line that names the session safely', async t => {
  const env = await instances(t)
  if (env === undefined) return
  const { a, b, relay, logs } = env
  const id = sid()
  const old = tokenSet({ expiresInMs: -MINUTE })
  await b.tokenStore.save(id, old)
  const next: TokenSet = tokenSet()
  await a.tokenStore.getFresh(id, countingRefresher({ answer: async () => { await relay.cut(); return next } }).refresh)
  await a.close()
  const errors = logs.filter(l => (l.level as number) >= 50)
  t.equal(errors.length, 1, 'one error line')
  t.match(errors[0], { session: sessionTag(id), msg: /dropped a refreshed token set.*closing/ })
  t.same(leaked(logs, [id, old.accessToken, old.refreshToken ?? '', next.accessToken, next.refreshToken ?? '']), [], 'no session id or token in any log line')
})
