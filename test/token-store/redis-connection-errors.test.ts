import t from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { logConnectionErrors, REDIS_ERROR_LOG_INTERVAL_MS } from '../../src/token-store/connection-errors.js'
import { startTcpRelay } from '../helpers/tcp-relay.js'
import { redisUrl } from '../helpers/redis.js'

// A newcomer's Redis client (as @fastify/redis creates one) has no 'error' listener: while Redis is down, ioredis
// prints "[ioredis] Unhandled error event" and a stack on every reconnection attempt. token-store logs those errors
// through the app's logger instead, rate-limited, unless the client's owner listens already.

const KEY = 'hex:' + 'e5'.repeat(32)

t.test('a client nobody listens to: its errors become warnings of the app, at most one per interval', async (t) => {
  const target = new URL(redisUrl())
  const relay = await startTcpRelay(target.hostname, Number(target.port || 6379))
  t.teardown(() => relay.close())
  const client = new Redis({ host: '127.0.0.1', port: relay.port, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => 20 })
  t.teardown(() => client.disconnect())
  await client.connect()
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(tokenStore, { encryptionKeys: KEY, redis: client })
  await app.ready()
  t.equal(client.listenerCount('error'), 1, 'token-store listens to the client\'s errors')

  await relay.cut() // every connection closed and new ones refused: ioredis reconnects every 20 ms, each time an error
  await new Promise((resolve) => setTimeout(resolve, 300))
  const warned = lines.filter((l) => l.msg.startsWith('token-store: Redis connection error'))
  t.equal(warned.length, 1, `one warning for the ${REDIS_ERROR_LOG_INTERVAL_MS / 1000} s, whatever the number of attempts`)
  t.equal(warned[0]?.level, 40, 'at warn')
  t.match(warned[0]?.msg, /requests that need the store answer 503 store_unavailable until it is back$/)

  await app.close()
  t.equal(client.listenerCount('error'), 0, 'removed when the app closes')
})

t.test('a client whose owner listens already: left alone', async (t) => {
  const client = new Redis({ lazyConnect: true, port: 1 })
  const own = (): void => {}
  client.on('error', own)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: KEY, redis: client })
  t.equal(client.listenerCount('error'), 1, 'only the owner\'s listener')
  t.equal(client.listeners('error')[0], own)
})

t.test('the rate limit: one line per interval, with the count of the errors in between', async (t) => {
  const listeners: Array<(err: unknown) => void> = []
  const emitter = {
    listenerCount: () => listeners.length,
    on: (_event: 'error', l: (err: unknown) => void) => { listeners.push(l) },
    removeListener: (_event: 'error', l: (err: unknown) => void) => { listeners.splice(listeners.indexOf(l), 1) }
  }
  const logged: string[] = []
  const log = { warn: (_obj: unknown, msg: string) => { logged.push(msg) } } as never
  let now = 0
  const stop = logConnectionErrors(emitter, log, () => now)
  const emit = (): void => { for (const l of listeners) l(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })) }
  emit()
  now = 5000; emit(); emit()
  now = REDIS_ERROR_LOG_INTERVAL_MS; emit()
  t.equal(logged.length, 2)
  t.match(logged[1], /^token-store: Redis connection error \(2 more since the last line\);/)
  stop?.()
  t.equal(listeners.length, 0)
  t.equal(logConnectionErrors({}, log), undefined, 'not an emitter: nothing to do')
})
