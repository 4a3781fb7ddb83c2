import type { FastifyBaseLogger } from 'fastify'
import { errorInfo } from './errors.js'

/**
 * A process-local cache of the values the Redis store reads on the hot path (session record and sealed token set),
 * kept true by Redis' own server-assisted client-side caching: a connection of its own runs
 * `CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX <prefix>` and subscribes to `__redis__:invalidate`, so Redis
 * announces every change to a key under the prefix, whoever made it (another instance, an expiry, an eviction, a
 * FLUSHDB). Announced keys are dropped; the next read goes to Redis again.
 *
 * What makes it safe:
 * - It serves nothing unless that connection is subscribed with tracking on. When the connection closes, every
 *   entry is dropped at once and nothing is cached until a new connection is tracking again (changes made in
 *   between were never announced to this process).
 * - One server. Everything below is about one Redis server: the values are read on the store's client's
 *   connection (the data connection), the announcements and PING answers come on the tracking connection, and
 *   those prove something about the values only when both connections are on the same server. They are two TCP
 *   connections to one address, and after a failover they can be on two: the old primary, back as a replica, keeps
 *   its connections, and the data client moves to the new primary on a write answered READONLY (redis-url.ts) while
 *   the tracking connection stays; or the tracking connection reconnects alone, to the new primary, while the data
 *   client is still on the old one. A change acknowledged by the data connection's server then reaches the tracking
 *   connection's server late (replication) or never (not replicating yet): an answered PING proves nothing about
 *   it, and the cache would serve what it replaced or deleted (a session ended on another instance).
 *   So the cache learns each connection's server when it is up (the run_id in `INFO server`, random at every start
 *   of a redis-server: one server's, no other's) and serves only while the two are the same; a TCP connection
 *   never changes server, so that holds until one of them closes. The data client's 'close' (ioredis emits it
 *   before it opens the next connection, so before any read is answered there) drops every entry and stops serving;
 *   its next connection's server is learned at its 'ready' (one INFO per connection, none per request), and a
 *   tracking connection on another server is replaced at once, the new one going where the address leads now. A
 *   tracking connection that comes up on another server than the data connection's is replaced too, after the
 *   backoff (the data client may still be on the old primary, and move on its next write). When both are on a
 *   server that has become a replica, the cache follows what that server has applied (a replica announces the
 *   changes it replicates), as reads on the data connection would without it. "Redis" below is that one server.
 * - A read in flight leaves a placeholder; an announcement (or a local write) of one of its keys removes the
 *   placeholder, and the answer is then handed to the caller but not kept. This closes the race between the
 *   answer (on the data connection) and an announcement of a later change (on the tracking connection), which
 *   can arrive in either order.
 * - The store drops a key itself before it writes it, so this process reads its own writes at once.
 * - The fence, which closes the window between another instance's change and the arrival of its announcement
 *   here. The cache PINGs its tracking connection every HEARTBEAT_MS while it is in use. Redis answers a PING
 *   after every announcement it sent that connection before, on the same connection, in order: once the answer to
 *   a PING sent at time s is in, every change Redis acknowledged before s has been applied here. A lookup is
 *   served only while such an answer is in for a PING sent less than CLIENT_CACHE_FENCE_MS ago, and every write
 *   that replaces or deletes a cacheable value (on every instance with the cache on) waits CLIENT_CACHE_FENCE_MS
 *   after Redis acknowledged it before it completes. So a change whose writer has completed (a sign-out answered
 *   204, a refreshed token set saved) is never served from the value before it, whatever the delay of its
 *   announcement: a request that comes after the write completes comes at least CLIENT_CACHE_FENCE_MS after Redis
 *   acknowledged it, so the answered PING it needs was sent after that acknowledgement, and came after the
 *   announcement. Without a recent answer (Redis slow, the connection silently broken, an idle process whose
 *   heartbeat stopped), every read goes to Redis. Only reads concurrent with a write in progress may see either
 *   value, as without a cache.
 * - An entry is served for `maxAgeMs` at most (counted from when its read was sent), however recent the fence.
 */

/** The tracking connection: a `duplicate()` of the store's ioredis client. */
export interface TrackingConnection {
  connect (): Promise<void>
  call (command: string, args: Array<string | number>): Promise<unknown>
  subscribe (channel: string): Promise<unknown>
  on (event: 'messageBuffer', listener: (channel: Buffer, message: unknown) => void): unknown
  on (event: 'close', listener: () => void): unknown
  on (event: 'error', listener: (err: Error) => void): unknown
  disconnect (): void
}

/**
 * The store's client (an ioredis `Redis`; a Cluster has no cache), whose connection the cached values are read on.
 * It emits 'close' when that connection is gone, before it opens the next (which goes where the address leads then:
 * after a READONLY reconnect, the new primary), and 'ready' when the next one is up.
 */
export interface DataClient {
  readonly status: string
  call (command: string, args: Array<string | number>): Promise<unknown>
  on (event: 'ready' | 'close', listener: () => void): unknown
  removeListener (event: 'ready' | 'close', listener: () => void): unknown
}

export interface TrackingCacheOptions {
  /** Opens a new, not yet connected, connection (lazyConnect, no reconnection of its own). */
  open: () => TrackingConnection
  /** The client the store reads with: the cache serves only while its connection is on the tracking connection's server. */
  data: DataClient
  /** Every key it caches starts with this (as the store names keys: without the client's `keyPrefix`). */
  prefix: string
  /** Of the keys under `prefix`, those it caches (default: all); only their writes wait for the fence. */
  cacheable?: (key: string) => boolean
  /** The ioredis client's `keyPrefix`: Redis announces full key names. */
  clientKeyPrefix: string
  maxEntries: number
  maxAgeMs: number
  log?: FastifyBaseLogger | undefined
}

export const INVALIDATION_CHANNEL = '__redis__:invalidate'
/**
 * How long a write that replaces or deletes a cacheable value waits after Redis acknowledged it, and the oldest a
 * PING answer may be (counted from when the PING was sent) for the cache to serve. The same on every instance: not
 * an option.
 */
export const CLIENT_CACHE_FENCE_MS = 50
/** How often the tracking connection is PINGed while the cache is in use. */
export const HEARTBEAT_MS = 10
/** The heartbeat stops when nothing was looked up for this long; the next lookup starts it again. */
const HEARTBEAT_IDLE_MS = 1000
/** PINGs in flight at most: a stalled connection does not pile them up. */
const HEARTBEAT_MAX_IN_FLIGHT = 8
const RETRY_MIN_MS = 500
const RETRY_MAX_MS = 30_000

/** A read in flight. One per read, shared by its keys; `at`: when it was sent (performance.now()). */
class Pending {
  readonly at: number
  constructor (at: number) {
    this.at = at
  }
}

class Cached {
  readonly value: string | null
  readonly until: number
  constructor (value: string | null, until: number) {
    this.value = value
    this.until = until
  }
}

export class TrackingCache {
  readonly #options: TrackingCacheOptions
  readonly #entries = new Map<string, Cached | Pending>()
  #connection: TrackingConnection | undefined
  #live = false
  #started = false
  #closed = false
  #refused = false
  #failures = 0
  #retry: NodeJS.Timeout | undefined
  #becameLive: Array<() => void> = []
  /** performance.now() when the newest PING answered on the current connection was sent. */
  #confirmedAt = -Infinity
  #heartbeat: NodeJS.Timeout | undefined
  #lastLookup = 0
  #pingsInFlight = 0
  /** The run_id of the server the tracking connection is on, once it is tracking (subscribed). */
  #trackingServer: string | undefined
  /** The run_id of the server the data client's current connection is on; undefined until learned. */
  #dataServer: string | undefined
  /** Counts the data client's connections that closed: an answer from before the last 'close' is not about the current one. */
  #dataCloses = 0
  readonly #onDataClose = (): void => { this.#dataClosed() }
  readonly #onDataReady = (): void => { this.#identifyData() }

  constructor (options: TrackingCacheOptions) {
    this.#options = options
  }

  /**
   * True while announcements arrive, and the tracking connection and the data client's connection are on one server:
   * only then are values served or kept.
   */
  get live (): boolean {
    return this.#live
  }

  /** True when Redis refused CLIENT TRACKING (already logged): the cache stays off for good. */
  get refused (): boolean {
    return this.#refused
  }

  /** Entries held (values and reads in flight). */
  get size (): number {
    return this.#entries.size
  }

  /** Opens the tracking connection and follows the data client's connections (once; later calls do nothing). */
  start (): void {
    if (this.#started || this.#closed) return
    this.#started = true
    const data = this.#options.data
    data.on('close', this.#onDataClose)
    data.on('ready', this.#onDataReady)
    if (data.status === 'ready') this.#identifyData()
    this.#connect()
  }

  /**
   * True while the fence holds: a PING sent less than CLIENT_CACHE_FENCE_MS ago has been answered on the tracking
   * connection, so every change acknowledged before then has been applied.
   */
  get fenced (): boolean {
    return this.#live && this.#fencedAt(performance.now())
  }

  #fencedAt (now: number): boolean {
    return now - this.#confirmedAt < CLIENT_CACHE_FENCE_MS
  }

  /** A PING sent at `sentAt` on `connection` was answered: the fence moves to then, if that is newer. */
  #confirm (connection: TrackingConnection, sentAt: number): void {
    if (this.#connection === connection && this.#live && sentAt > this.#confirmedAt) this.#confirmedAt = sentAt
  }

  /**
   * The values of all `keys`, or undefined unless every one is cached and fresh and the fence holds (which starts
   * the heartbeat when it has stopped: the lookups after it are served again once a PING is answered).
   */
  lookup (keys: readonly string[]): Array<string | null> | undefined {
    if (!this.#live) return undefined
    const now = performance.now()
    this.#lastLookup = now
    if (!this.#fencedAt(now)) {
      this.#startHeartbeat()
      return undefined
    }
    const values = new Array<string | null>(keys.length)
    for (let i = 0; i < keys.length; i++) {
      const entry = this.#entries.get(keys[i] as string)
      if (!(entry instanceof Cached) || entry.until <= now) return undefined
      values[i] = entry.value
    }
    return values
  }

  /** Marks a read of `keys` as in flight (undefined: not live, keep nothing); hand `complete` the same ticket. */
  begin (keys: readonly string[]): object | undefined {
    // Only cacheable keys: Redis announces no key outside the prefix, and writes of the others skip the fence.
    if (!this.#live || !keys.every((key) => this.#cacheable(key))) return undefined
    const ticket = new Pending(performance.now())
    for (const key of keys) {
      this.#entries.delete(key) // re-inserted last: the oldest entries are the first evicted
      this.#entries.set(key, ticket)
    }
    this.#evict()
    return ticket
  }

  /** Keeps what a read returned, for the keys no announcement or write touched while it was in flight. */
  complete (keys: readonly string[], ticket: object, values: ReadonlyArray<string | null>): void {
    const until = (ticket as Pending).at + this.#options.maxAgeMs
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string
      if (this.#entries.get(key) === ticket) this.#entries.set(key, new Cached(values[i] ?? null, until))
    }
  }

  /** A read failed: forget its placeholders. */
  abandon (keys: readonly string[], ticket: object): void {
    for (const key of keys) if (this.#entries.get(key) === ticket) this.#entries.delete(key)
  }

  /** Drops keys this process is about to write. */
  invalidate (keys: string | readonly string[]): void {
    if (this.#entries.size === 0) return
    if (typeof keys === 'string') this.#entries.delete(keys)
    else for (const key of keys) this.#entries.delete(key)
  }

  /** True when any of `keys` is cacheable: a key this cache (or another instance's) may hold. */
  tracks (keys: string | readonly string[]): boolean {
    if (typeof keys === 'string') return this.#cacheable(keys)
    for (const key of keys) if (this.#cacheable(key)) return true
    return false
  }

  #cacheable (key: string): boolean {
    return key.startsWith(this.#options.prefix) && (this.#options.cacheable?.(key) ?? true)
  }

  /**
   * What a write of a cached key awaits once Redis has acknowledged it: CLIENT_CACHE_FENCE_MS, after which no
   * instance serves the value before it (see the fence above). Timers are not unref'd: the write is awaited.
   * Measured on performance.now(), the clock `fenced` reads: a timer fires on the event loop's cached millisecond
   * clock and may come up to a millisecond early by it, so it is waited on again for what is left.
   */
  fence (): Promise<void> {
    const until = performance.now() + CLIENT_CACHE_FENCE_MS
    return new Promise<void>(resolve => {
      const check = (): void => {
        const left = until - performance.now()
        if (left <= 0) resolve()
        else setTimeout(check, Math.ceil(left))
      }
      setTimeout(check, CLIENT_CACHE_FENCE_MS)
    })
  }

  /**
   * Resolves true once tracking is on, or false after `timeoutMs` (or when the cache is closed or refused) without
   * waiting any longer: the store works uncached meanwhile.
   */
  async whenLive (timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.#settled(), new Promise<void>(resolve => { timer = setTimeout(resolve, timeoutMs) })])
    clearTimeout(timer)
    return this.#live
  }

  /**
   * Resolves once every announcement Redis sent before this call has been applied (a PING on the tracking
   * connection answers after them), and the cache is live. For tests and tools; rejects when not connected.
   */
  async sync (): Promise<void> {
    await this.#settled()
    const connection = this.#connection
    if (connection === undefined) throw new Error('token-store: the tracking connection is closed')
    const sentAt = performance.now()
    await connection.call('PING', [])
    this.#confirm(connection, sentAt)
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#retry)
    this.#options.data.removeListener('close', this.#onDataClose)
    this.#options.data.removeListener('ready', this.#onDataReady)
    this.#down()
    const connection = this.#connection
    this.#connection = undefined
    connection?.disconnect()
    this.#settle()
  }

  /** Resolves once tracking is on, or the cache is closed (or refused): nothing more will happen until then. */
  #settled (): Promise<void> {
    if (this.#live || this.#closed) return Promise.resolve()
    this.start()
    return new Promise<void>(resolve => { this.#becameLive.push(resolve) })
  }

  #settle (): void {
    for (const resolve of this.#becameLive.splice(0)) resolve()
  }

  #connect (): void {
    if (this.#closed) return
    const { open, prefix, clientKeyPrefix, log } = this.#options
    let connection: TrackingConnection
    try {
      connection = open()
    } catch (err) {
      log?.debug({ error: { message: errorInfo(err).message } }, 'token-store: cannot open the tracking connection')
      this.#scheduleRetry()
      return
    }
    this.#connection = connection
    this.#trackingServer = undefined
    connection.on('error', (err: Error) => {
      log?.debug({ error: errorInfo(err) }, 'token-store: tracking connection error')
    })
    connection.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (this.#connection === connection && channel.toString() === INVALIDATION_CHANNEL) this.#announced(message)
    })
    connection.on('close', () => {
      if (this.#connection !== connection) return
      this.#connection = undefined
      this.#trackingServer = undefined
      this.#down()
      this.#scheduleRetry()
    })
    const setUp = async (): Promise<string> => {
      await connection.connect()
      const server = runId(await connection.call('INFO', ['server']))
      if (server === undefined) throw new NoRunIdError()
      const id = await connection.call('CLIENT', ['ID']) as number
      await connection.call('CLIENT', ['TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', clientKeyPrefix + prefix])
      await connection.subscribe(INVALIDATION_CHANNEL)
      return server
    }
    setUp().then((server) => {
      if (this.#connection !== connection) return
      this.#trackingServer = server
      this.#match(false)
    }, (err: unknown) => {
      if (this.#connection !== connection) return
      if (err instanceof NoRunIdError || (err instanceof Error && err.name === 'ReplyError')) {
        // Redis itself refused (older than 6.0, an ACL without CLIENT or INFO), or cannot say which server it is:
        // retrying cannot help.
        log?.warn({ error: { message: err.message } }, 'token-store: Redis refused client-side caching (CLIENT TRACKING, ' +
          'or INFO, which tells the cache which server a connection is on); reading every value from Redis')
        this.#connection = undefined
        connection.disconnect()
        this.#closed = true
        this.#refused = true
        this.#settle()
        return
      }
      // A connection failure: 'close' follows (or came already) and schedules the next attempt.
      connection.disconnect()
      if (this.#connection === connection) {
        this.#connection = undefined
        this.#scheduleRetry()
      }
    })
  }

  /**
   * Serves once the tracking connection is tracking and the data client's connection is known to be on the same
   * server. On two servers (after a failover, an address that led the two connections apart), the tracking
   * connection is replaced: a new one goes where the address leads now. At once when the data client has just come
   * to its server (`dataMoved`: it was moved there, as a READONLY reconnect does), else after the backoff (the data
   * client may still be on the old primary, and move on its next write).
   */
  #match (dataMoved: boolean): void {
    if (this.#closed || this.#live) return
    const connection = this.#connection
    if (connection === undefined) {
      // Waiting to reconnect (Redis was down, or the last connection was on another server): the data client is
      // up, so now.
      if (dataMoved && this.#retry !== undefined) {
        clearTimeout(this.#retry)
        this.#retry = undefined
        this.#connect()
      }
      return
    }
    const tracking = this.#trackingServer
    const data = this.#dataServer
    if (tracking === undefined || data === undefined) return // the other is not known yet: it calls this again
    if (tracking !== data) {
      this.#options.log?.debug('token-store: the client-side cache\'s tracking connection is on another Redis server ' +
        'than the store\'s client (after a failover?): reading every value from Redis until a new one is on the same')
      this.#connection = undefined
      this.#trackingServer = undefined
      connection.disconnect()
      if (dataMoved) this.#connect()
      else this.#scheduleRetry()
      return
    }
    // Nothing kept from before: changes made while no connection was tracking, or announced by another server,
    // were never announced here.
    this.#entries.clear()
    this.#live = true
    this.#failures = 0
    this.#lastLookup = performance.now()
    this.#startHeartbeat()
    this.#settle()
  }

  /**
   * The data client's connection is gone. Its next one may be on another server (the client reconnects where the
   * address leads then): nothing is served or kept from now until that one is known to be on the tracking
   * connection's server. ioredis emits 'close' before it opens the next connection, so no read is answered on it
   * before this.
   */
  #dataClosed (): void {
    this.#dataCloses++
    this.#dataServer = undefined
    this.#down()
  }

  /** The data client's connection is up: which server is it on? (One INFO per connection, not per request.) */
  #identifyData (): void {
    const closes = this.#dataCloses
    this.#options.data.call('INFO', ['server']).then((info) => {
      // Answered after a 'close': maybe resent on the next connection; that one's 'ready' asks again.
      if (closes !== this.#dataCloses || this.#closed) return
      this.#dataServer = runId(info)
      this.#match(true)
    }, (err: unknown) => {
      this.#options.log?.debug({ error: { message: errorInfo(err).message } }, 'token-store: cannot tell which Redis server the store\'s client is on')
      // Refused (an ACL without INFO): the tracking connection's setup is refused too, and says so. Its connection
      // closed meanwhile: its next one's 'ready' asks again. Else (a command timeout of the client's own) once more.
      if (err instanceof Error && err.name === 'ReplyError') return
      setTimeout(() => {
        if (closes === this.#dataCloses && !this.#closed) this.#identifyData()
      }, RETRY_MIN_MS).unref()
    })
  }

  #down (): void {
    this.#live = false
    this.#entries.clear()
    this.#confirmedAt = -Infinity
    this.#stopHeartbeat()
  }

  #startHeartbeat (): void {
    if (this.#heartbeat !== undefined || !this.#live) return
    this.#ping()
    this.#heartbeat = setInterval(() => {
      if (performance.now() - this.#lastLookup > HEARTBEAT_IDLE_MS) this.#stopHeartbeat()
      else this.#ping()
    }, HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  #stopHeartbeat (): void {
    clearInterval(this.#heartbeat)
    this.#heartbeat = undefined
  }

  /** One PING; its answer moves the fence to when it was sent (announcements sent before it are in). */
  #ping (): void {
    const connection = this.#connection
    if (connection === undefined || !this.#live || this.#pingsInFlight >= HEARTBEAT_MAX_IN_FLIGHT) return
    const sentAt = performance.now()
    this.#pingsInFlight++
    connection.call('PING', []).then(() => {
      this.#pingsInFlight--
      this.#confirm(connection, sentAt)
    }, () => {
      this.#pingsInFlight--
    })
  }

  #scheduleRetry (): void {
    if (this.#closed || this.#retry !== undefined) return
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.#failures++)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#connect()
    }, delay)
    this.#retry.unref()
  }

  /** One announcement: a list of full key names, or null for "everything" (FLUSHDB, FLUSHALL). */
  #announced (message: unknown): void {
    if (!Array.isArray(message)) {
      this.#entries.clear()
      return
    }
    const clientKeyPrefix = this.#options.clientKeyPrefix
    for (const item of message) {
      const full = Buffer.isBuffer(item) ? item.toString() : String(item)
      this.#entries.delete(full.startsWith(clientKeyPrefix) ? full.slice(clientKeyPrefix.length) : full)
    }
  }

  #evict (): void {
    const max = this.#options.maxEntries
    while (this.#entries.size > max) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) return
      this.#entries.delete(oldest.value)
    }
  }
}

/** A Redis that answers INFO without a run_id: the cache cannot tell whether two connections are on one server. */
class NoRunIdError extends Error {
  constructor () {
    super('INFO server has no run_id')
  }
}

/** The server's run_id in an INFO reply: random at every start of a redis-server, so one server's and no other's. */
function runId (info: unknown): string | undefined {
  return /^run_id:([0-9a-zA-Z]+)/m.exec(String(info))?.[1]
}
