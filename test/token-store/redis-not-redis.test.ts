import t from 'tap'
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import { startLogged } from '../helpers/token-store.js'
import { redisServerOrSkip, startRedisServer, until } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'

// A `redis` URL (or a client) that reaches something that is not Redis, such as an HTTP server (the app's own port,
// the mock provider's): ioredis fails every attempt with a protocol error ("Protocol error, got "H" as reply type
// byte. Please report this.", ioredis 6: "Unknown RESP type 72 "H""), which was logged as Redis being unavailable
// "until it is back", which it never is. One error line says what answers there is not Redis, and what to check.

const PASSWORD = 'pw-not-to-be-logged'

type Tap = { teardown: (fn: () => unknown) => void }

/** Listens on 127.0.0.1 (port 0); counts connections, and resolves `reached(n)` once n connections came. */
async function listening (t: Tap, server: Server | ReturnType<typeof createHttpServer>): Promise<{ port: number, reached: (n: number) => Promise<void> }> {
  const sockets = new Set<Socket>()
  let count = 0
  const waiting: Array<{ n: number, resolve: () => void }> = []
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    count++
    for (const w of waiting.filter((w) => w.n <= count)) { waiting.splice(waiting.indexOf(w), 1); w.resolve() }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  return {
    port: (server.address() as { port: number }).port,
    reached: async (n) => { if (count < n) await new Promise<void>((resolve) => waiting.push({ n, resolve })) }
  }
}

/** An HTTP server, as Node.js answers a Redis command: `HTTP/1.1 400 Bad Request`, then it closes. */
function httpServer (): ReturnType<typeof createHttpServer> {
  return createHttpServer((_request, response) => { response.end('not redis') })
}

t.test('a redis URL at an HTTP server: one error line saying it is not Redis and what to check, never "until it is back"', async (t) => {
  const server = await listening(t, httpServer())
  const url = `redis://:${PASSWORD}@127.0.0.1:${server.port}/2`
  const started = await startLogged(t, { redis: url })
  await server.reached(4) // ioredis tried again, and again
  const said = started.lines.filter((l) => l.msg.startsWith('token-store:')).map((l) => ({ level: l.level, msg: l.msg }))
  t.same(said, [{
    level: 50,
    msg: `token-store: what answers at redis://127.0.0.1:${server.port}/2 is not a Redis server (its answer is not in Redis' protocol): ` +
      'requests that need the store answer 503 store_unavailable. Fix: check REDIS_URL (token-store\'s redis option): the host and ' +
      'port of your Redis (6379 by default)'
  }], 'one line, however many attempts')
  const err = await started.app.tokenStore.get('any-session').then(() => undefined, (e: unknown) => e)
  t.match(err, { statusCode: 503, code: 'FST_AIHUBMIX_STORE_UNAVAILABLE' }, 'the store is unavailable, not a crash')
  t.notOk(started.raw.join('').includes(PASSWORD), 'the password is never logged')
  t.notOk(started.raw.join('').includes('Please report this'), 'nor ioredis\' words for it')
})

t.test('an attempt that failed otherwise first (a reset): the unavailable line, then the not-Redis one, once', async (t) => {
  let first = true
  const server = await listening(t, createServer((socket) => {
    socket.once('data', () => {
      if (first) {
        first = false
        socket.resetAndDestroy()
      } else {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      }
    })
  }))
  const started = await startLogged(t, { redis: `redis://127.0.0.1:${server.port}` })
  await server.reached(4)
  const said = started.lines.filter((l) => l.msg.startsWith('token-store:')).map((l) => [l.level, l.msg])
  t.equal(said.length, 2, JSON.stringify(said))
  t.match(said[0], [40, /^token-store: Redis at redis:\/\/127\.0\.0\.1:\d+ is unavailable \(ECONNRESET\)/])
  t.match(said[1], [50, /^token-store: what answers at redis:\/\/127\.0\.0\.1:\d+ is not a Redis server .* Fix: check REDIS_URL/])
})

t.test('a client of the app\'s own at an HTTP server (ioredis 5 and 6): the connection-error line says it is not Redis', async (t) => {
  type Client = Redis | Redis6
  const makers: Array<[string, (port: number) => Client]> = [
    ['ioredis 5', (port) => new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => 20 })],
    ['ioredis 6', (port) => new Redis6({ host: '127.0.0.1', port, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => 20 })]
  ]
  for (const [name, make] of makers) {
    const server = await listening(t, httpServer())
    const client = make(server.port)
    const started = await startLogged(t, { redis: client as unknown as Redis })
    client.connect().catch(() => {})
    await server.reached(2)
    const said = started.lines.filter((l) => l.msg.startsWith('token-store:'))
    t.equal(said.length, 1, `${name}: one line per interval`)
    t.equal(said[0]?.level, 50, `${name}: an error`)
    t.equal(said[0]?.msg, 'token-store: what the Redis client reaches is not a Redis server (an answer not in Redis\' protocol): ' +
      'requests that need the store answer 503 store_unavailable. Fix: give the client the host and port of your Redis', name)
    client.on('error', () => {}) // what the attempt in flight still fails with, once the app's close took token-store's listener
    client.disconnect()
    await started.app.close()
  }
})

// A server of another protocol that hangs up on what it cannot read (PostgreSQL at 5432, NATS, an MQTT broker): every
// attempt is reset, which read as Redis being away "until it is back". The line now says what else it may be.
t.test('a redis URL at a server that resets every connection: the unavailable line says something else may listen there', async (t) => {
  const server = await listening(t, createServer((socket) => { socket.once('data', () => { socket.resetAndDestroy() }) }))
  const started = await startLogged(t, { redis: `redis://127.0.0.1:${server.port}` })
  await server.reached(3)
  const said = started.lines.filter((l) => l.msg.startsWith('token-store:')).map((l) => [l.level, l.msg])
  t.equal(said.length, 1, 'one line, however many attempts')
  t.match(said[0], [40, /^token-store: Redis at redis:\/\/127\.0\.0\.1:\d+ is unavailable \((ECONNRESET|EPIPE)\): .*\(if it persists: Redis may be at its maxclients limit, which it says only to a connection it then closes: INFO clients; or something that is not Redis listens there: check REDIS_URL's host and port, 6379 by default\)$/])
})

// A Redis at its `maxclients` answers a new connection "-ERR max number of clients reached" and closes it; ioredis,
// writing its first command meanwhile, reports only EPIPE or ECONNRESET (an operator review found the line pointing
// at the host and port alone). The line now names maxclients first.
t.test('a Redis at its maxclients: the unavailable line names the limit, and the store works once there is room', async (t) => {
  const binary = redisServerOrSkip(t, 'the maxclients case')
  if (binary === undefined) return
  const redis = await startRedisServer(binary, await freePort(), ['--maxclients', '1'])
  t.teardown(() => redis.close())
  const holder = new Redis(redis.port, '127.0.0.1')
  await holder.ping()
  const started = await startLogged(t, { redis: redis.url, keyPrefix: 'full-clients:' })
  await until(async () => started.lines.some((l) => l.msg.includes('is unavailable')), 'the unavailable line')
  const said = started.lines.filter((l) => l.msg.startsWith('token-store:')).map((l) => [l.level, l.msg])
  t.match(said[0], [40, /^token-store: Redis at redis:\/\/127\.0\.0\.1:\d+\/? is unavailable \((ECONNRESET|EPIPE|[^)]*writeable[^)]*)\): .*Redis may be at its maxclients limit/])
  holder.disconnect()
  await until(async () => started.lines.some((l) => l.msg.includes('is available again')), 'the store to reconnect')
  t.ok(await started.app.tokenStore.get('a'.repeat(32)).then(() => true), 'answered once a client left')
})
