import t from 'tap'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import tokenStore, { createTokenStore, type TokenStore } from '@fastify-aihubmix/token-store'
import type { RedisStore } from '../../src/token-store/redis-store.js'
import { TrackingCache as TrackingCacheClass } from '../../src/token-store/tracking-cache.js'
import type { TrackingCache } from '../../src/token-store/tracking-cache.js'
import { redisServerOrSkip, startRedisServer, until, type RedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { startTcpRelay, type TcpRelay } from '../helpers/tcp-relay.js'
import { recordCommands } from '../helpers/redis.js'
import { KEY_A, deferred, sid, tokenSet, type T } from '../helpers/token-store.js'

// The client-side cache (`redisClientCache`) across a Redis failover. The store reads through its client's
// connection and learns of changes on another one, the cache's tracking connection; its fence (a PING answered on
// the tracking connection proves every announcement before it is in) holds only when both are on one server. After
// a failover in which the old primary comes back as a replica and keeps its connections, the store's client moves
// to the new primary on its first write (READONLY), but the tracking connection stayed on the old one: the changes
// the new primary acknowledges reach it late through replication, or not at all while it is not replicating yet,
// and the cache served what they replaced or deleted (a session ended on another instance, still answered here).
//
// Two redis-servers of this test's own on free ports (never the shared one on 6379): A, the primary, and B, its
// replica. The app reaches Redis through one address, a relay standing for a DNS name: new connections go to the
// primary of the moment, those open stay where they are. At the failover B is promoted, the address leads to it,
// and A becomes a replica that has not caught up yet (its primary, a server that accepts and never answers, sends it
// nothing), so it holds what B has since changed until it is pointed at B.

const TRACKING_NAME = 'aihubmix-token-store-tracking'
const PREFIX = 'ccfo:'

interface Servers {
  a: RedisServer
  b: RedisServer
  adminA: Redis
  adminB: Redis
  /** B's run_id: the server a connection reaches after the failover. */
  bRunId: string
  /** The address the stores are given. */
  relay: TcpRelay
  /** A primary that never answers: A, pointed at it, replicates nothing. */
  silentPort: number
}

async function servers (t: T): Promise<Servers | undefined> {
  const binary = redisServerOrSkip(t, 'the client cache across a failover')
  if (binary === undefined) return undefined
  const a = await startRedisServer(binary, await freePort(), ['--appendonly', 'no'])
  t.teardown(() => a.close())
  const b = await startRedisServer(binary, await freePort(), ['--appendonly', 'no'])
  t.teardown(() => b.close())
  const adminA = new Redis(a.port, '127.0.0.1')
  const adminB = new Redis(b.port, '127.0.0.1')
  t.teardown(() => { adminA.disconnect(); adminB.disconnect() })
  await adminB.call('REPLICAOF', '127.0.0.1', String(a.port))
  await until(async () => /master_link_status:up/.test(await adminB.info('replication')), 'B to sync with A')
  const relay = await startTcpRelay('127.0.0.1', a.port)
  t.teardown(() => relay.close())
  const silent = new Set<Socket>()
  const server = createServer((socket) => {
    silent.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => silent.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of silent) s.destroy(); server.close(() => resolve()) }))
  return { a, b, adminA, adminB, bRunId: await runIdOf(adminB) as string, relay, silentPort: (server.address() as AddressInfo).port }
}

/** The failover: B promoted, the address leads to it, A a replica that applies nothing of B's yet. */
async function failOver (t: T, s: Servers): Promise<void> {
  await s.adminB.call('REPLICAOF', 'NO', 'ONE')
  s.relay.moveTo(s.b.port)
  await s.adminA.call('REPLICAOF', '127.0.0.1', String(s.silentPort))
  t.match(await s.adminA.info('replication'), /role:slave/)
}

/** The run_id of the server `client`'s connection is on (undefined while it has none). */
async function runIdOf (client: Redis): Promise<string | undefined> {
  const info = await client.call('INFO', 'server').catch(() => '')
  return /^run_id:([0-9a-f]+)/m.exec(String(info))?.[1]
}

interface Variant {
  name: string
  /** The store under test on `port` (the relay), client cache on. */
  open: (t: T, port: number) => Promise<TokenStore>
}

const VARIANTS: Variant[] = [
  {
    name: 'a redis URL',
    async open (t, port) {
      const app = Fastify({ logger: false })
      t.teardown(() => app.close())
      await app.register(tokenStore, { redis: `redis://127.0.0.1:${port}`, redisClientCache: true, keyPrefix: PREFIX, encryptionKeys: KEY_A })
      await app.ready()
      return app.tokenStore
    }
  },
  {
    name: 'a client passed, with reconnectOnError as the README shows',
    async open (t, port) {
      const client = new Redis(port, '127.0.0.1', {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        reconnectOnError: (err) => err.message.startsWith('READONLY') ? 2 : false
      })
      client.on('error', () => {})
      const store = createTokenStore({ backend: 'redis', redis: client, redisClientCache: true, keyPrefix: PREFIX, encryptionKeys: KEY_A })
      t.teardown(async () => { await store.close(); client.disconnect() })
      return store
    }
  }
]

/** Another instance, on the new primary (where the address leads it), its cache on as every instance's must be. */
function otherInstance (t: T, s: Servers): TokenStore {
  const client = new Redis(s.b.port, '127.0.0.1')
  const store = createTokenStore({ backend: 'redis', redis: client, redisClientCache: true, keyPrefix: PREFIX, encryptionKeys: KEY_A })
  t.teardown(async () => { await store.close(); client.disconnect() })
  return store
}

function partsOf (store: TokenStore): { cache: TrackingCache, data: Redis } {
  const kv = (store as unknown as { kv: RedisStore }).kv
  return { cache: kv.clientCache as TrackingCache, data: kv.client as unknown as Redis }
}

/** @fastify/session's view: the session record, read with its token set in one getMany (the cached read). */
function sessionsOf (store: TokenStore): { get: (id: string) => Promise<unknown>, set: (id: string, data: object) => Promise<void> } {
  const s = store.sessionStore
  return {
    get: (id) => new Promise((resolve, reject) => { s.get(id, (err, session) => { if (err !== null) reject(err); else resolve(session ?? null) }) }),
    set: (id, data) => new Promise((resolve, reject) => { s.set(id, { ...data, cookie: {} }, (err) => { if (err != null) reject(err); else resolve() }) })
  }
}

function mgets (commands: string[]): number {
  return commands.filter((c) => c === 'MGET').length
}

const sessionKey = (id: string): string => `${PREFIX}{${id}}:sess`

/** A session read once and then served from the process, before the failover; B has it too. */
async function cachedSession (t: T, s: Servers, store: TokenStore): Promise<{ id: string, commands: string[] }> {
  const { cache, data } = partsOf(store)
  t.equal(await cache.whenLive(5000), true, 'the cache is tracking')
  const sessions = sessionsOf(store)
  const id = sid()
  await sessions.set(id, { user: 'alice' })
  await store.save(id, tokenSet())
  await until(async () => await s.adminB.exists(sessionKey(id)) === 1, 'B to have the session')
  await cache.sync() // the announcements of these writes are in: none can drop what the next read keeps
  t.match(await sessions.get(id), { user: 'alice' }, 'read from Redis, and kept')
  const commands = recordCommands(data, (name) => name)
  await cache.sync()
  t.match(await sessions.get(id), { user: 'alice' })
  t.equal(mgets(commands), 0, 'then served from the process')
  return { id, commands }
}

/** The store's next write meets the old primary's refusal (READONLY): its client reconnects, through the address, to B. */
async function moveDataClient (t: T, s: Servers, store: TokenStore): Promise<void> {
  await store.save(sid(), tokenSet()).catch(() => {}) // refused (READONLY); ioredis reconnects
  await until(async () => await runIdOf(partsOf(store).data) === s.bRunId, 'the store\'s client to reach the new primary')
}

/** Whether the server `admin` is connected to has a tracking connection of a cache. */
async function hasTrackingConnection (admin: Redis): Promise<boolean> {
  return String(await admin.call('CLIENT', 'LIST')).includes(`name=${TRACKING_NAME} `)
}

for (const variant of VARIANTS) {
  t.test(`${variant.name}: after a failover, a session ended on the new primary is not served from the cache`, async (t) => {
    const s = await servers(t)
    if (s === undefined) return
    const store = await variant.open(t, s.relay.port)
    const { cache } = partsOf(store)
    const sessions = sessionsOf(store)
    const { id, commands } = await cachedSession(t, s, store)

    await failOver(t, s)
    await moveDataClient(t, s, store)
    // The tracking connection is where it was: on A, which keeps its connections and answers PINGs.

    // A sign-out on another instance: B acknowledges it, and it completes after the fence. A does not hear of it.
    const other = otherInstance(t, s)
    await other.endSession(id)
    t.equal(await s.adminB.exists(sessionKey(id)), 0, 'ended on the new primary')
    t.equal(await s.adminA.exists(sessionKey(id)), 1, 'the old primary still holds it (it replicates nothing yet)')

    t.equal(await sessions.get(id), null, 'the ended session is not served: the store\'s client moved, and the cache dropped everything')
    // However busy the process: with an answered PING on the tracking connection just now, the fence fresh.
    t.equal(await cache.whenLive(5000), true, 'the cache is tracking again')
    await cache.sync()
    t.equal(await sessions.get(id), null, 'once it serves again, still not')
    await until(async () => await hasTrackingConnection(s.adminB), 'the tracking connection on the new primary')
    await until(async () => !await hasTrackingConnection(s.adminA), 'none left on the old primary')

    // Serving again, from the new primary, whose announcements arrive.
    const otherSessions = sessionsOf(other)
    const id2 = sid()
    await otherSessions.set(id2, { user: 'bob' })
    await cache.sync() // the announcement of its creation is in: it cannot drop what the next read keeps
    t.match(await sessions.get(id2), { user: 'bob' })
    commands.length = 0
    await cache.sync()
    t.match(await sessions.get(id2), { user: 'bob' })
    t.equal(mgets(commands), 0, 'served from the process again')
    await otherSessions.set(id2, { user: 'carol' }) // a replacement: completes after the fence
    t.match(await sessions.get(id2), { user: 'carol' }, 'a change on the new primary is never served from the value before it')
  })
}

t.test('the tracking connection reconnects on its own to the new primary while the store\'s client is still on the old one: nothing is kept', async (t) => {
  const s = await servers(t)
  if (s === undefined) return
  const variant = VARIANTS[0] as Variant
  const store = await variant.open(t, s.relay.port)
  const { cache, data } = partsOf(store)
  const sessions = sessionsOf(store)
  const { id } = await cachedSession(t, s, store)

  await failOver(t, s)
  // The tracking connection is dropped (a network blip); the cache opens another one, through the address: to B.
  const reopened = deferred()
  const duplicate = data.duplicate.bind(data)
  data.duplicate = ((override?: Record<string, unknown>) => {
    const connection = duplicate(override)
    if (override?.connectionName === TRACKING_NAME) connection.once('ready', () => reopened.resolve())
    return connection
  }) as typeof data.duplicate
  const tracking = /^id=(\d+) .*name=aihubmix-token-store-tracking /m.exec(String(await s.adminA.call('CLIENT', 'LIST')))?.[1]
  t.ok(tracking, 'the tracking connection was on A')
  await s.adminA.call('CLIENT', 'KILL', 'ID', tracking as string)
  await reopened.promise
  await cache.whenLive(1000) // as long as it takes a connection to be set up for tracking
  t.equal(cache.live, false, 'not serving: the tracking connection is on B, the store\'s client on A')

  // A sign-out on another instance, on B: announced on B, where the tracking connection is now.
  const other = otherInstance(t, s)
  await other.endSession(id)
  // The store's client still reads from A, which has not applied it: without a cache, the same answer.
  t.match(await sessions.get(id), { user: 'alice' }, 'read from the old primary, not caught up yet')

  // A catches up with B: the session is gone there too. Nothing announces it to a connection on B.
  await s.adminA.call('REPLICAOF', '127.0.0.1', String(s.b.port))
  await until(async () => /master_link_status:up/.test(await s.adminA.info('replication')), 'A to follow B')
  await until(async () => await s.adminA.exists(sessionKey(id)) === 0, 'A to apply the sign-out')
  if (await cache.whenLive(500)) await cache.sync() // a fresh fence, if the cache were serving
  t.equal(await sessions.get(id), null, 'the value read from A while the tracking connection was on B was not kept')

  // The store's next write moves its client to B: the cache serves again.
  await moveDataClient(t, s, store)
  t.equal(await cache.whenLive(5000), true, 'both on B: the cache is tracking again')
})

/** A tracking connection that answers `info` to INFO and accepts the rest; and a data client answering `infos` in turn. */
function fakes (info: string, infos: Array<string | Error>): { cache: TrackingCache, warnings: string[] } {
  const warnings: string[] = []
  const log = { warn: (_obj: unknown, msg: string) => { warnings.push(msg) }, debug: () => {} }
  const tracking = {
    connect: async () => {},
    call: async (command: string) => command === 'INFO' ? info : command === 'CLIENT' ? 1 : 'OK',
    subscribe: async () => 1,
    on: () => tracking,
    disconnect: () => {}
  }
  const data = {
    status: 'ready',
    call: async () => {
      const next = infos.shift() ?? new Error('no more answers')
      if (next instanceof Error) throw next
      return next
    },
    on: () => data,
    removeListener: () => data
  }
  const cache = new TrackingCacheClass({ open: () => tracking, data, prefix: 'p:', clientKeyPrefix: '', maxEntries: 10, maxAgeMs: 1000, log: log as never })
  return { cache, warnings }
}

t.test('the store\'s client\'s INFO fails without a refusal (a command timeout of its own): it is asked again', async (t) => {
  const { cache } = fakes('# Server\r\nrun_id:abc\r\n', [new Error('Command timed out'), '# Server\r\nrun_id:abc\r\n'])
  t.teardown(() => cache.close())
  cache.start()
  t.equal(await cache.whenLive(3000), true, 'live once the second answer names the same server')
})

t.test('a Redis whose INFO has no run_id: the cache cannot tell the servers apart, and stays off (one warning)', async (t) => {
  const { cache, warnings } = fakes('# Server\r\nredis_version:7.0.0\r\n', ['# Server\r\nredis_version:7.0.0\r\n'])
  t.teardown(() => cache.close())
  cache.start()
  t.equal(await cache.whenLive(1000), false)
  t.equal(cache.refused, true)
  t.match(warnings, [/refused client-side caching/])
})
