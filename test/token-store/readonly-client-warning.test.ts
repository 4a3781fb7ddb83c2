import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis, type RedisOptions } from 'ioredis'
import tokenStore from '@fastify-aihubmix/token-store'
import { redisServerOrSkip, startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { sid, tokenSet } from '../helpers/token-store.js'

// A client the user passes is theirs: token-store does not change its options, so after a failover it stays on the
// old primary (a replica now) unless the user set `reconnectOnError`. token-store says so, once, naming the option,
// the first time a write of such a client is answered READONLY.

async function replicaOrSkip (t: Test): Promise<RedisServer | undefined> {
  const binary = redisServerOrSkip(t, 'the READONLY warning')
  if (binary === undefined) return undefined
  const server = await startRedisServer(binary, await freePort())
  t.teardown(() => server.close())
  // A replica of a primary that is not there: it answers reads, and READONLY to every write.
  const admin = new Redis(server.port, '127.0.0.1')
  t.teardown(() => admin.disconnect())
  await admin.call('REPLICAOF', '127.0.0.1', String(await freePort()))
  return server
}

async function appWith (t: Test, server: RedisServer, clientOptions: RedisOptions): Promise<{ save: () => Promise<string>, warnings: () => string[] }> {
  const redis = new Redis(server.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, ...clientOptions })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await new Promise((resolve) => redis.once('ready', resolve))
  const raw: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: new Writable({ write (c: Buffer, _e, cb) { raw.push(c.toString()); cb() } }) } })
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: `base64:${randomBytes(32).toString('base64')}`, redis, keyPrefix: 'readonly-warning:' })
  await app.ready()
  return {
    save: () => app.tokenStore.save(sid(), tokenSet()).then(() => 'saved', (err: { code?: string }) => err.code ?? 'error'),
    warnings: () => raw.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((l) => l.level === 40).map((l) => l.msg)
  }
}

t.test('a client given without reconnectOnError: the first READONLY logs one warning naming the option', async (t) => {
  const server = await replicaOrSkip(t)
  if (server === undefined) return
  const app = await appWith(t, server, {})
  t.equal(await app.save(), 'FST_AIHUBMIX_STORE_UNAVAILABLE', 'the write is refused: 503')
  t.equal(await app.save(), 'FST_AIHUBMIX_STORE_UNAVAILABLE', 'and again')
  const warnings = app.warnings().filter((w) => /READONLY/.test(w))
  t.equal(warnings.length, 1, 'one warning, not one per refused write')
  t.match(warnings[0], /read-only replica.*failover.*reconnectOnError: \(err\) => err\.message\.startsWith\('READONLY'\) \? 2 : false/)
})

t.test('a client given with its own reconnectOnError: no warning (it is the owner\'s)', async (t) => {
  const server = await replicaOrSkip(t)
  if (server === undefined) return
  const app = await appWith(t, server, { reconnectOnError: () => false })
  t.equal(await app.save(), 'FST_AIHUBMIX_STORE_UNAVAILABLE', 'the write is refused: 503')
  t.same(app.warnings().filter((w) => /READONLY/.test(w)), [], 'nothing said')
})
