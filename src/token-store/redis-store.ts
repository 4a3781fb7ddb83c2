import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { CompareAndSetResult, KVStore } from './kv-store.js'
import { assertTtl } from './keys.js'
import { StoreUnavailableError, TokenStoreOptionsError, errorInfo, errorLogFields } from './errors.js'
import { TrackingCache } from './tracking-cache.js'
import type { DataClient, TrackingConnection } from './tracking-cache.js'
import { publishStoreError } from './diagnostics.js'

/**
 * An ioredis client: a `Redis` or a `Cluster`, of ioredis 5 or 6. Declared by its shape rather than imported from
 * ioredis, so that this package's types compile in an app that has no ioredis installed (a memory-only app): ioredis
 * is an optional peer. The store only uses `call()` and, for lock waiters and the client cache, `duplicate()`; the
 * client cache also follows its connections (its 'close' and 'ready' events, `status`).
 */
export interface RedisClient {
  call (command: string, args: Array<string | number>): Promise<unknown>
  duplicate (...args: never[]): unknown
  readonly status: string
}

/** What the store needs of a client (both ioredis classes have it); lets tests wrap a client. */
interface RedisCaller extends DataClient {
  call (command: string, args: Array<string | number>): Promise<unknown>
  duplicate (override?: Record<string, unknown>): RedisSubscriber & TrackingConnection
  readonly options?: { keyPrefix?: unknown, socketTimeout?: unknown, redisOptions?: { socketTimeout?: unknown } }
  on (event: 'ready' | 'close' | 'reconnecting' | 'end', listener: () => void): unknown
  removeListener (event: 'ready' | 'close' | 'reconnecting' | 'end', listener: () => void): unknown
}

/** A client on its way back to Redis after its connection closed (ioredis' `status`). */
const COMING_BACK = new Set(['reconnecting', 'connecting', 'connect'])

/**
 * ioredis' refusal of a command it did not send: the connection was not ready and the client has no offline queue.
 * Sending it again is safe whatever the command.
 */
const NOT_SENT = /^Stream isn't writeable/

interface RedisSubscriber {
  readonly status: string
  connect (): Promise<void>
  once (event: 'ready', listener: () => void): unknown
  subscribe (channel: string): Promise<unknown>
  on (event: 'message', listener: (channel: string, message: string) => void): unknown
  on (event: 'error', listener: (err: Error) => void): unknown
  disconnect (): void
}

export interface RedisStoreOptions {
  client: RedisClient
  /** The pub/sub channel on which released locks are announced (KeyLayout.lockChannel). */
  lockChannel: string
  /**
   * Upper bound for any one command, in ms (0: none). A client whose offline queue is on (ioredis' default)
   * holds commands while Redis is down; this bound turns that into a StoreUnavailableError instead of a hang.
   */
  commandTimeoutMs: number
  /**
   * Keep the values `getMany` reads in this process, invalidated by Redis' client-side caching (tracking-cache.ts).
   * Single Redis only (not a Cluster). `prefix`: the keys that may be cached all start with it.
   */
  clientCache?: { prefix: string, cacheable?: (key: string) => boolean, maxEntries: number, maxAgeMs: number } | undefined
  log?: FastifyBaseLogger | undefined
  /**
   * The client was given, not made from a URL: a command timeout that finds it without ioredis' `socketTimeout` says
   * once what that option is for (the client made from a URL has it).
   */
  adviseSocketTimeout?: boolean | undefined
}

/**
 * Releases the lock if ARGV[1] owns it, and announces ARGV[3] (the key as the store knows it: with an ioredis
 * `keyPrefix`, KEYS[1] carries the prefix) on ARGV[2]. PUBLISH is key-less, so fine in a Cluster. 1: released and
 * announced; 2: released, the announcement refused (an ACL user without PUBLISH on the channel: the lock is gone all
 * the same, which the script's error hid, and waiters notice it by polling); 0: not this owner's.
 */
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local published = redis.pcall('PUBLISH', ARGV[2], ARGV[3])
  if type(published) == 'table' and published.err then return 2 end
  return 1
end
return 0`

const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`

/** 1: replaced, 0: missing, -1: holds another value. */
const COMPARE_AND_SET = `local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current ~= ARGV[1] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`

/** 1: deleted, 0: missing, -1: holds another value (left alone). */
const COMPARE_AND_DELETE = `local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1`

/** Writes a field; the hash lives at least ARGV[3] ms from now (a longer TTL is kept). Returns the field count. */
const HASH_SET = `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return redis.call('HLEN', KEYS[1])`

/** What a lock waiter adds to the lease's remaining PTTL before looking again (see waitForUnlock). */
const LEASE_EXPIRY_MARGIN_MS = 2

/** How often Redis's clock is read again (`now`), besides each time the client becomes ready. */
const CLOCK_SYNC_INTERVAL_MS = 60_000
/**
 * A TIME whose round trip took longer than this says little about when Redis read its clock (the reading is the
 * reply's time at the round trip's midpoint, wrong by up to half of it): a better reading already held is kept. When
 * none is held yet it is taken all the same: off by half a slow round trip beats off by a machine's whole skew.
 */
const CLOCK_SYNC_MAX_ROUND_TRIP_MS = 1000
/**
 * How far this machine's wall clock may move away from its monotonic one since the last reading before Redis's clock
 * is read again at once: a step (NTP, an operator, a VM resumed) of this much or more.
 */
const CLOCK_JUMP_MS = 1000
/** An offset this large or larger is warned about, once: token expiry is still judged by each machine's own clock. */
const CLOCK_SKEW_WARN_MS = 5000

/** Most keys one coalesced MGET carries (a full batch is sent as it is and a new one started). */
const MGET_BATCH_KEYS = 512

interface MgetBatch {
  keys: string[]
  parts: Array<{ start: number, count: number, resolve: (values: Array<string | null>) => void, reject: (err: unknown) => void }>
}

interface Script { source: string, sha: string }
function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}
const SCRIPTS = {
  unlock: script(UNLOCK),
  extend: script(EXTEND),
  compareAndSet: script(COMPARE_AND_SET),
  compareAndDelete: script(COMPARE_AND_DELETE),
  hashSet: script(HASH_SET)
} as const

/**
 * The Redis KV store (Redis >= 6.2 for GETDEL). Every command goes through `#call`, which bounds it by
 * `commandTimeoutMs` and turns any failure into StoreUnavailableError with a sanitised cause (ioredis attaches
 * the command's arguments to its errors: keys carry session ids, so they are dropped).
 *
 * Lock waiters subscribe (on a lazily created `duplicate()` connection, closed by `close()`) to the channel on
 * which `unlock` publishes; as a safety net they also re-check after the lease's remaining time, and callers poll
 * with backoff, so a lost message or a crashed lock holder only costs time.
 *
 * Its clock (`now`) is Redis's: the last reading of TIME (taken each time the client becomes ready, reconnections
 * too, and every CLOCK_SYNC_INTERVAL_MS) moved on by this machine's MONOTONIC clock since, so that a step of the
 * machine's wall clock (NTP, a VM resumed) does not move it; a step of CLOCK_JUMP_MS or more between the two clocks
 * has Redis's read again at once. Before the first reading, `Date.now()`; the last reading is kept when TIME fails.
 * Every instance sharing the Redis compares the times it stores (a refresh's presented mark) on that one clock,
 * however far apart their machines' clocks are. An offset of CLOCK_SKEW_WARN_MS or more between Redis's clock and
 * this machine's wall clock is logged once at warn: token expiry is still judged by each machine's own clock.
 */
export class RedisStore implements KVStore {
  readonly #client: RedisCaller
  /** The client it was given, or the one token-store made from a URL (tests watch its commands). */
  readonly client: RedisClient
  readonly #channel: string
  readonly #timeoutMs: number
  readonly #log: FastifyBaseLogger | undefined
  /** Whether the ACL's refusal of PUBLISH, and of SUBSCRIBE, on the lock channel has been logged (once each). */
  #publishRefusedSaid = false
  #subscribeRefusedSaid = false
  readonly #waiters = new Map<string, Set<() => void>>()
  /** What close() takes off the client it was given (onAvailable's listeners). */
  readonly #unlisten: Array<() => void> = []
  #subscriber: RedisSubscriber | undefined
  #subscribed: Promise<boolean> | undefined
  #subscriberReady: Promise<void> | undefined
  #closed = false
  readonly #cluster: boolean
  readonly #cache: TrackingCache | undefined
  #mget: MgetBatch | undefined
  /**
   * The last reading of Redis's clock (#syncClock): Redis's time, this machine's wall clock and its monotonic clock
   * (performance.now) at the round trip's midpoint, and how long the round trip took. undefined until the first.
   */
  #clock: { redisMs: number, wallMs: number, monoMs: number, roundTripMs: number } | undefined
  /** A reading is on its way (one at a time when a step of the wall clock asks for one). */
  #clockReading = false
  /** When (performance.now) a step of the wall clock last asked for a reading. */
  #stepReadAt = -Infinity
  readonly #clockTimer: NodeJS.Timeout
  #skewWarned = false
  #clockRefusedLogged = false
  /**
   * Settles once the client, coming back after its connection closed, is ready (true) or its attempt failed (false):
   * what commands refused meanwhile wait for (#call). One at a time, shared by every such command.
   */
  #backOnline: Promise<boolean> | undefined
  /**
   * Reconnections ioredis scheduled since the client was last ready: a second one means an attempt failed (Redis is
   * down or unreachable), and commands then fail at once. Counted by the 'reconnecting' event, not by 'error': a
   * listener of 'error' would silence ioredis' "Unhandled error event" and token-store's own connection-error lines,
   * which listen only to a client nobody else listens to.
   */
  #reconnects = 0
  #adviseSocketTimeout: boolean

  constructor (options: RedisStoreOptions) {
    this.#client = options.client as unknown as RedisCaller
    this.client = options.client
    this.#channel = options.lockChannel
    this.#timeoutMs = options.commandTimeoutMs
    this.#log = options.log
    this.#cluster = (options.client as { isCluster?: unknown }).isCluster === true
    this.#adviseSocketTimeout = options.adviseSocketTimeout === true
    if (!this.#cluster) {
      // Reconnecting already: it lost or failed a connection before this store heard of it (a URL's client whose first
      // attempt failed), so its commands fail at once until it is ready, rather than waiting for an attempt.
      this.#reconnects = this.#client.status === 'reconnecting' ? 2 : 0
      const reconnecting = (): void => { this.#reconnects++ }
      const ready = (): void => { this.#reconnects = 0 }
      this.#client.on('reconnecting', reconnecting)
      this.#client.on('ready', ready)
      this.#unlisten.push(() => {
        this.#client.removeListener('reconnecting', reconnecting)
        this.#client.removeListener('ready', ready)
      })
    }
    const cache = options.clientCache
    if (cache !== undefined) {
      if (this.#cluster) {
        throw new TokenStoreOptionsError('redisClientCache', 'needs a single Redis, not a Cluster (each node would need a tracking connection of its own)')
      }
      const keyPrefix = this.#client.options?.keyPrefix
      this.#cache = new TrackingCache({
        // Its own connection, reconnected by the cache itself: tracking must be switched on again on every new
        // connection, before SUBSCRIBE, and nothing may be served in between. RESP2 on it whatever the client
        // speaks: over RESP3 (ioredis 6's default) Redis sends announcements as `invalidate` push frames, which
        // ioredis drops without an event, so the cache would never hear of a change; over RESP2 they come as
        // messages on `__redis__:invalidate`. (ioredis 5 has no `protocol` option and always speaks RESP2.)
        open: () => this.#client.duplicate({
          protocol: 2,
          lazyConnect: true,
          autoResubscribe: false,
          enableOfflineQueue: true,
          retryStrategy: () => null,
          reconnectOnError: () => false,
          connectionName: 'aihubmix-token-store-tracking'
        }),
        // Its connection and the tracking connection must be on one server (tracking-cache.ts): the cache follows it.
        data: this.#client,
        prefix: cache.prefix,
        ...(cache.cacheable === undefined ? {} : { cacheable: cache.cacheable }),
        clientKeyPrefix: typeof keyPrefix === 'string' ? keyPrefix : '',
        maxEntries: cache.maxEntries,
        maxAgeMs: cache.maxAgeMs,
        log: options.log
      })
      // Tracking from the start, so that the first requests already find the cache live.
      this.#cache.start()
    }
    // Redis's clock: read at every 'ready' (a reconnection may reach another server: a failover, a Cluster node),
    // now if the client is ready already, and every minute. TIME is key-less: on a Cluster, any node answers.
    const sync = (): void => { this.#syncClock() }
    this.#client.on('ready', sync)
    this.#unlisten.push(() => { this.#client.removeListener('ready', sync) })
    this.#clockTimer = setInterval(sync, CLOCK_SYNC_INTERVAL_MS)
    this.#clockTimer.unref()
    if (this.#client.status === 'ready') this.#syncClock()
  }

  /** Redis's clock (ms since the epoch): its last reading moved on by this machine's monotonic clock. */
  now (): number {
    const clock = this.#clock
    if (clock === undefined) return Date.now()
    const elapsed = performance.now() - clock.monoMs
    // This machine's wall clock was stepped since the reading: which clock moved is not known here (a VM suspended
    // and resumed stops the monotonic one), so Redis's is read again; meanwhile the monotonic clock goes on.
    // At most one such reading a CLOCK_JUMP_MS: a TIME that keeps failing is not sent again at every look.
    if (!this.#clockReading && Math.abs(Date.now() - clock.wallMs - elapsed) >= CLOCK_JUMP_MS &&
      performance.now() - this.#stepReadAt >= CLOCK_JUMP_MS) {
      this.#stepReadAt = performance.now()
      this.#syncClock()
    }
    return clock.redisMs + elapsed
  }

  /**
   * Measures the offset of Redis's clock from this machine's: TIME's answer minus the midpoint of its round trip. A
   * failure keeps the last offset: logged once at warn when Redis refused the command (an ACL without TIME),
   * at debug otherwise (Redis away: other lines say so, and the next 'ready' measures again).
   */
  #syncClock (): void {
    if (this.#closed) return
    this.#clockReading = true
    const sentWall = Date.now()
    const sentMono = performance.now()
    this.#call('TIME', []).then((reply) => {
      this.#clockReading = false
      const roundTripMs = performance.now() - sentMono
      const redisMs = timeReplyMs(reply)
      if (this.#closed || redisMs === undefined) return
      const held = this.#clock
      const wallMs = sentWall + roundTripMs / 2
      const monoMs = sentMono + roundTripMs / 2
      if (held !== undefined && roundTripMs > CLOCK_SYNC_MAX_ROUND_TRIP_MS && roundTripMs >= held.roundTripMs) {
        // A slow reading, where a better one is held. Unless the wall clock was stepped since, the held one stays.
        // After a step, the slow one tells which clock moved: when it agrees with the held reading moved on by the
        // monotonic clock (within half the two readings' round trips together: each is off by up to half its own),
        // the wall clock was stepped (NTP), and the held reading stays,
        // anchored to the wall clock anew (so the step is not asked about again); else the monotonic clock stopped
        // (a VM suspended and resumed), and the slow reading is the better one.
        const stepped = Math.abs(sentWall - held.wallMs - (sentMono - held.monoMs)) >= CLOCK_JUMP_MS
        if (!stepped) return
        const projected = held.redisMs + (monoMs - held.monoMs)
        // Within half the slow one's round trip alone was too tight: a held reading whose reply was read late (a
        // busy event loop) is off by up to half its own, and an NTP step was then taken for a stopped clock.
        this.#clock = Math.abs(redisMs - projected) <= (roundTripMs + held.roundTripMs) / 2
          ? { redisMs: projected, wallMs, monoMs, roundTripMs: held.roundTripMs }
          : { redisMs, wallMs, monoMs, roundTripMs }
      } else {
        this.#clock = { redisMs, wallMs, monoMs, roundTripMs }
      }
      const offset = Math.round(this.#clock.redisMs - wallMs)
      if (Math.abs(offset) >= CLOCK_SKEW_WARN_MS && !this.#skewWarned) {
        this.#skewWarned = true
        this.#log?.warn({ clockOffsetMs: offset }, `token-store: this machine's clock is ${(Math.abs(offset) / 1000).toFixed(1)} s ` +
          `${offset < 0 ? 'ahead of' : 'behind'} Redis's; refresh fences use Redis's clock, but token expiry is judged by ` +
          'each machine\'s own: keep clocks in sync (NTP)')
      }
    }, (err: unknown) => {
      this.#clockReading = false
      const refused = err instanceof StoreUnavailableError && err.cause instanceof Error && err.cause.name === 'ReplyError'
      if (refused && !this.#clockRefusedLogged) {
        this.#clockRefusedLogged = true
        this.#log?.warn({ err }, 'token-store: Redis refused TIME (allow it to this client\'s ACL user); refresh fences compare ' +
          'the instances\' own clocks until it answers')
      } else {
        this.#log?.debug({ err }, 'token-store: could not read Redis\'s clock (TIME); the last offset is kept')
      }
    })
  }

  /** The client-side cache, when on (tests and tools: `sync()`, `live`). */
  get clientCache (): TrackingCache | undefined {
    return this.#cache
  }

  async get (key: string): Promise<string | null> {
    return await this.#call('GET', [key]) as string | null
  }

  /**
   * One MGET. On a single Redis (not a Cluster), the getMany calls made in the same turn of the event loop are
   * coalesced into ONE MGET of all their keys (at most MGET_BATCH_KEYS), each caller getting its own slice: under
   * load, concurrent requests share a command and a round trip instead of each paying for one. Each caller's keys
   * are still read together, atomically. On a Cluster, keys of different sessions live in different slots, so
   * every call is its own MGET.
   */
  /** From the client-side cache, when it is on and holds every key. */
  getManyNow (keys: readonly string[]): Array<string | null> | undefined {
    return this.#cache?.lookup(keys)
  }

  getMany (keys: readonly string[]): Promise<Array<string | null>> {
    const cache = this.#cache
    if (cache !== undefined) {
      const hit = cache.lookup(keys)
      if (hit !== undefined) return Promise.resolve(hit)
      const ticket = cache.begin(keys)
      if (ticket !== undefined) {
        return this.#mgetCoalesced(keys).then((values) => {
          cache.complete(keys, ticket, values)
          return values
        }, (err: unknown) => {
          cache.abandon(keys, ticket)
          throw err
        })
      }
    }
    return this.#mgetCoalesced(keys)
  }

  #mgetCoalesced (keys: readonly string[]): Promise<Array<string | null>> {
    if (this.#cluster) return this.#call('MGET', [...keys]) as Promise<Array<string | null>>
    let batch = this.#mget
    if (batch === undefined || batch.keys.length + keys.length > MGET_BATCH_KEYS) {
      const fresh: MgetBatch = { keys: [], parts: [] }
      batch = this.#mget = fresh
      setImmediate(() => this.#flushMget(fresh))
    }
    const start = batch.keys.length
    for (const key of keys) batch.keys.push(key)
    const parts = batch.parts
    return new Promise((resolve, reject) => { parts.push({ start, count: keys.length, resolve, reject }) })
  }

  #flushMget (batch: MgetBatch): void {
    if (this.#mget === batch) this.#mget = undefined
    this.#call('MGET', batch.keys).then((values) => {
      const all = values as Array<string | null>
      for (const part of batch.parts) part.resolve(all.slice(part.start, part.start + part.count))
    }, (err: unknown) => {
      for (const part of batch.parts) part.reject(err)
    })
  }

  async set (key: string, value: string, ttlMs: number): Promise<void> {
    assertTtl(ttlMs)
    if (this.#cache?.tracks(key) !== true) {
      await this.#written(key, this.#call('SET', [key, value, 'PX', ttlMs]))
      return
    }
    // SET ... GET (Redis >= 6.2): the value replaced says whether the fence is needed. Creating the key, or writing
    // the value it held, leaves no other instance a value to unlearn (a cached absence at worst, read as none).
    await this.#written(key, this.#call('SET', [key, value, 'PX', ttlMs, 'GET']), (old) => old !== null && old !== value)
  }

  async replace (key: string, value: string, ttlMs: number): Promise<boolean> {
    assertTtl(ttlMs)
    return await this.#written(key, this.#call('SET', [key, value, 'PX', ttlMs, 'XX']), (reply) => reply === 'OK') === 'OK'
  }

  async compareAndSet (key: string, expected: string, value: string, ttlMs: number): Promise<CompareAndSetResult> {
    assertTtl(ttlMs)
    const result = await this.#written(key, this.#eval(SCRIPTS.compareAndSet, key, [expected, value, ttlMs]), (reply) => reply === 1)
    return result === 1 ? 'ok' : result === 0 ? 'missing' : 'changed'
  }

  async compareAndDelete (key: string, expected: string): Promise<CompareAndSetResult> {
    const result = await this.#written(key, this.#eval(SCRIPTS.compareAndDelete, key, [expected]), (reply) => reply === 1)
    return result === 1 ? 'ok' : result === 0 ? 'missing' : 'changed'
  }

  async remainingTtl (key: string): Promise<number | null> {
    const pttl = Number(await this.#call('PTTL', [key]))
    return pttl >= 0 ? pttl : null
  }

  async delete (keys: string | readonly string[]): Promise<void> {
    const list = typeof keys === 'string' ? [keys] : [...keys]
    if (list.length > 0) await this.#written(list, this.#call('DEL', list), (deleted) => deleted !== 0)
  }

  async take (key: string): Promise<string | null> {
    return await this.#written(key, this.#call('GETDEL', [key]), (old) => old !== null) as string | null
  }

  async lock (key: string, owner: string, leaseMs: number): Promise<boolean> {
    assertTtl(leaseMs, 'leaseMs')
    return await this.#call('SET', [key, owner, 'PX', leaseMs, 'NX']) === 'OK'
  }

  async unlock (key: string, owner: string): Promise<boolean> {
    const released = await this.#eval(SCRIPTS.unlock, key, [owner, this.#channel, key])
    if (released === 2 && !this.#publishRefusedSaid) {
      this.#publishRefusedSaid = true
      this.#log?.warn(`token-store: Redis refused PUBLISH on the channel ${this.#channel} (the ACL user lacks it): released refresh ` +
        'locks are not announced, so other instances\' requests waiting for a refresh notice it later, by polling. Fix: allow ' +
        'PUBLISH and SUBSCRIBE on that channel (see "Redis ACL" in token-store\'s README)')
    }
    return released === 1 || released === 2
  }

  async extendLock (key: string, owner: string, leaseMs: number): Promise<boolean> {
    assertTtl(leaseMs, 'leaseMs')
    return await this.#eval(SCRIPTS.extend, key, [owner, leaseMs]) === 1
  }

  async hashSet (key: string, field: string, value: string, ttlMs: number): Promise<number> {
    assertTtl(ttlMs)
    return Number(await this.#eval(SCRIPTS.hashSet, key, [field, value, ttlMs]))
  }

  async hashGetAll (key: string): Promise<Record<string, string>> {
    // `call` answers Redis' reply as it is: field, value, field, value...
    const flat = await this.#call('HGETALL', [key]) as unknown[]
    const out: Record<string, string> = Object.create(null)
    for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
    return out
  }

  async hashDelete (key: string, fields: readonly string[]): Promise<void> {
    if (fields.length > 0) await this.#call('HDEL', [key, ...fields])
  }

  async waitForUnlock (key: string, timeoutMs: number): Promise<void> {
    let wake!: () => void
    const woken = new Promise<void>(resolve => { wake = resolve })
    let waiters = this.#waiters.get(key)
    if (waiters === undefined) {
      waiters = new Set()
      this.#waiters.set(key, waiters)
    }
    waiters.add(wake)
    let timer: NodeJS.Timeout | undefined
    try {
      // Subscribe first, then look: a release between the two is seen by PTTL, one after it by the message.
      await this.#subscribe()
      const pttl = await this.#call('PTTL', [key]) as number
      if (pttl === -2) return // already released
      // PTTL is whole milliseconds and a timer may fire up to one early by the real clock: waiting only `pttl` could
      // wake the waiter just before Redis expires the lease, and its lock attempt would find it still held.
      const wait = pttl > 0 ? Math.min(timeoutMs, pttl + LEASE_EXPIRY_MARGIN_MS) : timeoutMs
      await Promise.race([woken, new Promise<void>(resolve => { timer = setTimeout(resolve, Math.max(0, wait)) })])
    } finally {
      clearTimeout(timer)
      const set = this.#waiters.get(key)
      if (set !== undefined) {
        set.delete(wake)
        if (set.size === 0) this.#waiters.delete(key)
      }
    }
  }

  onAvailable (listener: (reconnected: boolean) => void): void {
    // A connection already ready when this is called counts as one before: its next 'ready' follows a close.
    let connected = this.#client.status === 'ready'
    let lost = false
    const ready = (): void => {
      const again = connected && lost
      connected = true
      lost = false
      if (!this.#closed) listener(again)
    }
    const close = (): void => { lost = true }
    this.#client.on('ready', ready)
    this.#client.on('close', close)
    this.#unlisten.push(() => {
      this.#client.removeListener('ready', ready)
      this.#client.removeListener('close', close)
    })
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#clockTimer)
    for (const unlisten of this.#unlisten.splice(0)) unlisten()
    this.#cache?.close()
    for (const set of this.#waiters.values()) for (const wake of set) wake()
    this.#waiters.clear()
    const subscriber = this.#subscriber
    this.#subscriber = undefined
    this.#subscribed = undefined
    this.#subscriberReady = undefined
    subscriber?.disconnect()
  }

  /** Resolves true once subscribed; false when it could not (waiters then rely on polling). Never rejects. */
  #subscribe (): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false)
    if (this.#subscribed !== undefined) return this.#subscribed
    if (this.#subscriber === undefined) {
      const subscriber = this.#client.duplicate()
      subscriber.on('error', (err: Error) => {
        this.#log?.debug({ err: sanitize(err) }, 'token-store: lock subscriber connection error')
      })
      subscriber.on('message', (channel: string, key: string) => {
        if (channel === this.#channel) this.#wake(key)
      })
      this.#subscriber = subscriber
    }
    const subscriber = this.#subscriber
    const subscribing = this.#whenReady(subscriber).then(() => subscriber.subscribe(this.#channel))
    const attempt = this.#bounded(subscribing, 'SUBSCRIBE').then(() => true, (err: unknown) => {
      const refused = /^NOPERM\b/.test(errorInfo((err as { cause?: unknown }).cause).message)
      if (refused) {
        // An ACL refusal does not pass on its own: said once, with the fix, and the subscription not tried again.
        if (!this.#subscribeRefusedSaid) {
          this.#log?.warn(`token-store: Redis refused SUBSCRIBE to the channel ${this.#channel} (the ACL user lacks it): requests ` +
            'waiting for another instance\'s refresh notice its end by polling, later. Fix: allow PUBLISH and SUBSCRIBE on that ' +
            'channel (see "Redis ACL" in token-store\'s README)')
        }
        this.#subscribeRefusedSaid = true
        return false
      }
      this.#log?.warn({ error: errorLogFields(err) }, 'token-store: cannot subscribe to lock releases; falling back to polling')
      if (this.#subscribed === attempt) this.#subscribed = undefined // try again next time
      return false
    })
    this.#subscribed = attempt
    return attempt
  }

  /**
   * Resolves once the subscriber connection is ready: a client with `enableOfflineQueue: false` (and so its
   * duplicate) rejects a SUBSCRIBE sent while still connecting. One pending 'ready' listener at most.
   */
  #whenReady (subscriber: RedisSubscriber): Promise<void> {
    if (subscriber.status === 'ready') return Promise.resolve()
    if (this.#subscriberReady === undefined) {
      this.#subscriberReady = new Promise<void>(resolve => {
        subscriber.once('ready', () => {
          this.#subscriberReady = undefined
          resolve()
        })
      })
      if (subscriber.status === 'wait') subscriber.connect().catch(() => {}) // a lazyConnect client; errors go to 'error'
    }
    return this.#subscriberReady
  }

  #wake (key: string): void {
    const waiters = this.#waiters.get(key)
    if (waiters === undefined) return
    this.#waiters.delete(key)
    for (const wake of waiters) wake()
  }

  /**
   * A write of `keys` was just issued: drop them from the client-side cache now (reads issued before it must not
   * keep what they get) and again once it is done (a read may have been answered between the two, for example
   * while a script was reloaded after NOSCRIPT), so this process reads its own writes at once. Then the fence:
   * the write completes CLIENT_CACHE_FENCE_MS after Redis answered it (a failed one too: it may have been applied),
   * by when no other instance's cache serves the value before it (tracking-cache.ts). This waits even while this
   * process' own cache is not live: the other instances' may be. A write of keys no cache holds (a user link, a
   * one-time record) completes at once, and so does one whose answer (`changed`) says it replaced or deleted
   * nothing another instance could hold.
   */
  #written<T> (keys: string | readonly string[], pending: Promise<T>, changed: (reply: T) => boolean = () => true): Promise<T> {
    const cache = this.#cache
    if (cache === undefined) return pending
    cache.invalidate(keys)
    if (!cache.tracks(keys)) return pending.finally(() => cache.invalidate(keys))
    return pending.then(async (reply) => {
      cache.invalidate(keys)
      if (changed(reply)) await cache.fence()
      return reply
    }, async (err: unknown) => {
      cache.invalidate(keys)
      await cache.fence()
      throw err
    })
  }

  async #eval (s: Script, key: string, args: Array<string | number>): Promise<unknown> {
    try {
      return await this.#call('EVALSHA', [s.sha, 1, key, ...args])
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || !isNoScript(err.cause)) throw err
      return await this.#call('EVAL', [s.source, 1, key, ...args])
    }
  }

  /**
   * One command, bounded by commandTimeoutMs. A command ioredis refused without sending it because the connection
   * had just closed and the client is reconnecting (Redis closed an idle connection under its `timeout` setting, a
   * proxy or load balancer closed it, the client replaced a dead one) waits for the reconnection, within the same
   * bound, and is sent again: those closes are routine, and answered 503 to whatever request came in the 100 ms
   * before the client was back. When the reconnection fails (Redis is down), it fails at once, as before.
   */
  #call (command: string, args: Array<string | number>): Promise<unknown> {
    let pending: Promise<unknown>
    try {
      pending = this.#client.call(command, args)
    } catch (err) {
      return Promise.reject(this.#unavailable(command, 'error', sanitize(err)))
    }
    if (!this.#cluster) {
      const sentAt = performance.now()
      pending = pending.catch((err: unknown) => {
        if (!(err instanceof Error) || !NOT_SENT.test(err.message)) throw err
        return this.#whenBack().then((back) => {
          // Not sent once its caller was answered (timed out): a write would land after its failure was reported.
          if (!back || (this.#timeoutMs > 0 && performance.now() - sentAt >= this.#timeoutMs)) throw err
          return this.#client.call(command, args)
        })
      })
    }
    return this.#bounded(pending, command)
  }

  /** Whether the client is (or gets) ready again, without a failed attempt on the way (see #call). */
  #whenBack (): Promise<boolean> {
    const client = this.#client
    if (this.#closed || this.#reconnects >= 2 || !COMING_BACK.has(client.status)) return Promise.resolve(false)
    this.#backOnline ??= new Promise<boolean>((resolve) => {
      const settle = (back: boolean): void => {
        client.removeListener('ready', ready)
        client.removeListener('reconnecting', failed)
        client.removeListener('end', failed)
        this.#backOnline = undefined
        resolve(back)
      }
      const ready = (): void => { settle(true) }
      // Another reconnection scheduled: the attempt failed. 'end': ioredis gave up (or the client was closed).
      const failed = (): void => { settle(false) }
      client.on('ready', ready)
      client.on('reconnecting', failed)
      client.on('end', failed)
    })
    return this.#backOnline
  }

  #bounded<T> (pending: Promise<T>, command: string): Promise<T> {
    const ms = this.#timeoutMs
    return new Promise<T>((resolve, reject) => {
      let timedOut = false
      const timer = ms > 0
        ? setTimeout(() => {
          timedOut = true
          reject(this.#unavailable(command, 'timeout', new Error(`Redis ${command} did not answer within ${ms} ms`)))
          this.#adviseOnTimeout(ms)
        }, ms)
        : undefined
      pending.then(value => {
        clearTimeout(timer)
        resolve(value)
      }, (err: unknown) => {
        clearTimeout(timer)
        // A command that already timed out was reported then; its late failure is not a second one.
        if (!timedOut) reject(this.#unavailable(command, 'error', sanitize(err)))
      })
    })
  }

  /**
   * Said once, at the first command timeout, for a client given without ioredis' `socketTimeout`: a connection that
   * stops answering without closing (a NAT or firewall that dropped it, a host gone) is kept until the kernel gives up
   * on it, about 15 minutes later, and every request of this instance answers 503 meanwhile (an operator review: 80 s
   * of 503s on one instance while Redis and the other instances were fine, and the refreshes it held blocked theirs).
   * `socketTimeout` makes ioredis replace a connection on which nothing comes back.
   */
  #adviseOnTimeout (ms: number): void {
    if (!this.#adviseSocketTimeout) return
    this.#adviseSocketTimeout = false
    const options = this.#client.options
    if (options?.socketTimeout !== undefined || options?.redisOptions?.socketTimeout !== undefined) return
    this.#log?.warn(`token-store: a Redis command did not answer within ${ms} ms. If Redis is up, this client's connection may ` +
      'have stopped answering without closing (a NAT or firewall that dropped it, a host that went away), and ioredis keeps such a ' +
      'connection until the kernel gives up on it, about 15 minutes later. Fix: give the Redis client you pass ioredis\' ' +
      `socketTimeout option (for example socketTimeout: ${ms}${this.#cluster ? ', in redisOptions for a Cluster' : ''}), which replaces a connection that stops answering`)
  }

  /**
   * The error a failed command rejects with, published on `aihubmix:store-error` (diagnostics.ts). NOSCRIPT is not
   * a failure of the store (a restarted Redis has forgotten the script; `#eval` loads it again) and is not published.
   */
  #unavailable (command: string, reason: 'timeout' | 'error', cause: Error): Error {
    const error = new StoreUnavailableError({ cause })
    if (!isNoScript(cause)) publishStoreError(this, command, reason, error)
    return error
  }
}

/** TIME's answer (seconds and microseconds, as strings or numbers) in ms since the epoch; undefined for anything else. */
function timeReplyMs (reply: unknown): number | undefined {
  if (!Array.isArray(reply) || reply.length < 2) return undefined
  const seconds = Number(reply[0])
  const micros = Number(reply[1])
  return Number.isFinite(seconds) && Number.isFinite(micros) ? seconds * 1000 + micros / 1000 : undefined
}

function isNoScript (err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT')
}

/**
 * ioredis' errors for a command it could not send because the connection is down (no offline queue, or the connection
 * closed with the command on it): they say nothing of why (an operator review found only these in the 503 lines
 * while Redis restarted).
 */
const NOT_CONNECTED = /^(Stream isn't writeable|Connection is closed\.)/

/**
 * A copy of a Redis error without the `command` (name and arguments) ioredis attaches: the arguments hold keys
 * with session ids and sealed values, which must never reach a log.
 */
function sanitize (err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err))
  const copy: Error & { code?: string } = new Error(NOT_CONNECTED.test(err.message)
    ? `not connected to Redis (${err.message}): it is down, unreachable, or refusing this client; token-store's ` +
      '"Redis connection error" line (or the client owner\'s log) says which'
    : err.message)
  copy.name = err.name
  const { code } = errorInfo(err)
  if (code !== undefined) copy.code = code
  if (err.stack !== undefined) copy.stack = err.stack
  return copy
}
