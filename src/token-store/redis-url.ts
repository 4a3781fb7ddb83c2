import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from './redis-store.js'
import { TokenStoreOptionsError, errorInfo } from './errors.js'
import { REDIS_ERROR_LOG_INTERVAL_MS, isProtocolError } from './connection-errors.js'
import { STORE_ERROR_CHANNEL, type StoreErrorMessage } from './diagnostics.js'
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, URL_QUERY_OPTIONS } from './options.js'

/** How long a connection attempt may take before ioredis gives up on it (and tries again). */
export const REDIS_URL_CONNECT_TIMEOUT_MS = 5000
/** The longest pause between two connection attempts while Redis is down. */
export const RECONNECT_MAX_DELAY_MS = 1000

/** What token-store needs of the client it makes (ioredis' `Redis`). */
interface OwnedClient extends RedisClient {
  readonly options: { enableOfflineQueue?: unknown }
  connect (): Promise<void>
  disconnect (): void
  once (event: 'ready' | 'error', listener: () => void): unknown
  on (event: 'ready' | 'error', listener: (err: unknown) => void): unknown
}

type RedisConstructor = new (url: string, options: Record<string, unknown>) => OwnedClient

/** The URL without its user name and password, for log lines. */
export function redisUrlForLogs (url: string): string {
  const parsed = new URL(url)
  parsed.username = ''
  parsed.password = ''
  return parsed.href
}

/**
 * The first word of a Redis reply that refuses the connection's credentials, or undefined: a wrong user or password
 * (WRONGPASS), none given to a Redis that wants one (NOAUTH), or one given to a Redis that has none.
 */
function credentialsRefused (message: string): string | undefined {
  if (/^(WRONGPASS|NOAUTH)\b/.test(message)) return message.split(' ', 1)[0]
  if (/^ERR (AUTH .*without any password configured|Client sent AUTH, but no password is set)/.test(message)) return 'no password is set'
  return undefined
}

/** Whether a Redis error is the refusal of a write by a replica (`READONLY You can't write against a read only replica.`). */
export function isReadonlyReply (err: unknown): boolean {
  return /^READONLY\b/.test(errorInfo(err).message)
}

/**
 * ioredis' `reconnectOnError` for the client made from a URL: a READONLY reply means this connection is on a replica,
 * typically the old primary after a failover (Sentinel, a managed Redis' primary endpoint moving): Redis keeps its
 * clients on a role change, so without a reconnect every write of the app would answer READONLY (503) until a
 * restart. A new connection goes where the URL leads now, the new primary. The command itself was not executed, so
 * resending it is safe: 2 (reconnect and resend) when the client has its offline queue on (a URL that asks for it),
 * where ioredis holds it until the new connection is ready; else 1 (reconnect; this command fails with its READONLY
 * error, 503 once): with the offline queue off, which token-store sets, ioredis' resend would only fail it with
 * "Stream isn't writeable", hiding why. One warning per REDIS_ERROR_LOG_INTERVAL_MS at most, naming the URL
 * without its password.
 */
export function reconnectOnReadonly (
  shown: string,
  log: FastifyBaseLogger,
  offlineQueue: () => boolean,
  now: () => number = Date.now
): (err: Error) => 1 | 2 | false {
  let lastAt = -Infinity
  let missed = 0
  return (err) => {
    if (!isReadonlyReply(err)) return false
    const at = now()
    if (at - lastAt < REDIS_ERROR_LOG_INTERVAL_MS) {
      missed++
    } else {
      lastAt = at
      const more = missed === 0 ? '' : ` (${missed} more since the last line)`
      missed = 0
      log.warn(`token-store: Redis at ${shown} refused a write as a read-only replica (READONLY${more}), as the old primary ` +
        'does after a failover: reconnecting, to reach the primary the URL leads to now. If this repeats, the URL names a ' +
        'replica: point it at the primary (or the endpoint that follows it)')
    }
    return offlineQueue() ? 2 : 1
  }
}

/**
 * The client class of the `ioredis` module as `import()` gives it: its named `Redis` export, which ioredis has from
 * 5.2.5. Older ones (their client class is only the default export to an ES module) are refused: up to 5.0.4 their
 * auto-pipelining, which this client turns on, sends a `call()` without its command name and throws where nothing
 * can catch it, ending the process at its first command.
 */
export function ioredisClient (mod: unknown): RedisConstructor {
  const exports = mod as { Redis?: unknown, default?: unknown } | null
  if (typeof exports?.Redis === 'function') return exports.Redis as RedisConstructor
  const what = typeof exports?.default === 'function' ? 'is older than 5.2.5' : 'exports no client class'
  throw new TokenStoreOptionsError('redis', `the installed ioredis ${what}: install ioredis 5.2.5 or newer, or 6 (npm i ioredis@latest)`)
}

/**
 * The client for `redis: '<url>'`, made by token-store (ioredis, an optional peer, is loaded only here).
 *
 * Unlike @fastify/redis, which holds the start until Redis is ready (a Redis down at start became "Plugin did not
 * start in time: '@fastify/redis'" ten seconds later, and a refused password crashed the start printing the AUTH
 * command with the password in it), this one waits for the first attempt only, then lets the app start either way:
 * while Redis is unreachable every request that needs the store answers 503 store_unavailable at once (no offline
 * queue), and ioredis reconnects on its own. One warning when Redis becomes unreachable, one line when it is back
 * (or one error line when it refuses the URL's credentials, which does not pass on its own), and a reconnection
 * (with a warning, at most one per 10 s) when a write meets a replica (READONLY, after a failover),
 * each naming the URL without its password and the error by its code or message only (ioredis attaches the
 * command, and a HELLO or AUTH command carries the password).
 */
export async function connectRedisUrl (url: string, log: FastifyBaseLogger, commandTimeoutMs: number = DEFAULT_REDIS_COMMAND_TIMEOUT_MS): Promise<OwnedClient> {
  // 0: commands wait as long as it takes (redisCommandTimeoutMs), and so does the connection.
  const socketTimeoutMs = commandTimeoutMs > 0 ? commandTimeoutMs : undefined
  let ioredis: unknown
  try {
    ioredis = await import('ioredis')
  } catch {
    throw new TokenStoreOptionsError('redis', 'a redis:// URL needs ioredis installed next to token-store: npm i ioredis')
  }
  const Redis = ioredisClient(ioredis)
  const shown = redisUrlForLogs(url)
  const { address, options } = urlQueryOptions(url)
  const client: OwnedClient = new Redis(address, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: REDIS_URL_CONNECT_TIMEOUT_MS,
    // The commands of concurrent requests issued in the same turn go out in one write.
    enableAutoPipelining: true,
    // Back at most a second after Redis is (ioredis' default waits up to 2 s between attempts).
    retryStrategy: (times: number) => Math.min(times * 100, RECONNECT_MAX_DELAY_MS),
    // A connection on which nothing comes back for this long after a command (a NAT or firewall that dropped it, a host
    // gone: no close ever arrives) is closed and replaced; without it, ioredis kept it until the kernel gave up, about
    // 15 minutes, and this instance answered 503 all along (an operator review). Subscriber connections inherit it.
    ...(socketTimeoutMs === undefined ? {} : { socketTimeout: socketTimeoutMs }),
    // After a failover: off the old primary (now a replica answering READONLY to every write), onto the new one.
    reconnectOnError: reconnectOnReadonly(shown, log, () => client.options.enableOfflineQueue === true),
    ...options
  })
  let unreachable = false
  let notRedis = false
  let missingDatabase: string | undefined
  let started = false
  client.on('error', (err) => {
    const { message: said } = errorInfo(err)
    if (databaseMissing(said)) {
      // ioredis goes on in database 0 when its SELECT is refused: every key would land there. Stop the client
      // instead (requests that need the store answer 503), and say what to change; at start, the start fails, and
      // its error is the one line (logged here too, it was said twice).
      client.disconnect()
      if (missingDatabase === undefined) {
        missingDatabase = said
        if (started) log.error(`token-store: ${databaseFix(shown, said)}`)
      }
      return
    }
    // The client stopped for a missing database: what its commands in flight then fail with ("Stream isn't writeable",
    // ioredis' ready check) is not Redis being unavailable.
    if (missingDatabase !== undefined) return
    // Something that is not Redis answers at the URL's address (an HTTP server: the app's own port, the mock
    // provider's). Said once, whatever came first (an EPIPE of an attempt is the "unavailable" line), as an error:
    // it does not pass on its own. The reply's byte is not repeated ("Please report this." is ioredis' wording).
    if (isProtocolError(err)) {
      unreachable = true
      if (notRedis) return
      notRedis = true
      log.error(`token-store: what answers at ${shown} is not a Redis server (its answer is not in Redis' protocol): requests ` +
        'that need the store answer 503 store_unavailable. Fix: check REDIS_URL (token-store\'s redis option): the host and ' +
        'port of your Redis (6379 by default)')
      return
    }
    if (unreachable) return
    unreachable = true
    const { code, message } = errorInfo(err)
    if (message.startsWith('Socket timeout')) {
      log.warn(`token-store: Redis at ${shown} did not answer on this client's connection for ${socketTimeoutMs} ms: the ` +
        'connection is closed and a new one opened; requests that need the store answer 503 store_unavailable until Redis ' +
        'answers again (if Redis is up, something between dropped the connection: a NAT, a firewall, a proxy)')
      return
    }
    const refused = credentialsRefused(message)
    if (refused !== undefined) {
      // It does not come back on its own: an error, naming the fix (the reply never holds the password).
      log.error(`token-store: Redis at ${shown} refused the credentials of the redis URL (${refused}): requests that need ` +
        'the store answer 503 store_unavailable. Fix: the user name and password in the URL (redis://user:password@host:port, ' +
        'or redis://:password@host:port for the default user; none if Redis has no password)')
      return
    }
    log.warn(`token-store: Redis at ${shown} is unavailable (${code ?? message}): requests that need the store answer 503 ` +
      `store_unavailable until it is back; reconnecting in the background${tlsHint(shown, code)}${resetHint(shown, code)}`)
  })
  client.on('ready', () => {
    if (!unreachable) return
    unreachable = false
    notRedis = false
    log.info(`token-store: Redis at ${shown} is available again`)
  })
  const firstAttempt = new Promise<void>((resolve) => {
    client.once('ready', resolve)
    client.once('error', resolve)
  })
  client.connect().catch(() => {}) // a failure is an 'error' event; reconnecting is ioredis' own
  await firstAttempt
  started = true
  if (missingDatabase !== undefined) throw new TokenStoreOptionsError('redis', databaseFix(shown, missingDatabase))
  return client
}

/**
 * A `rediss:` URL whose connection failed in a way a plain (non-TLS) Redis fails it (it waits for a RESP command that
 * a TLS handshake never is: a timeout; or closes, or answers what is no TLS): what to check. Nothing for a failure
 * that says nothing is there (refused, unknown host, unreachable) or a certificate problem (the server speaks TLS).
 */
function tlsHint (url: string, code: string | undefined): string {
  if (!url.startsWith('rediss:')) return ''
  if (code !== undefined && (NOT_THERE.has(code) || code.includes('CERT') || code.includes('SELF_SIGNED') || code.startsWith('UNABLE_TO_'))) return ''
  return ' (rediss:// needs a Redis that speaks TLS; for a plain Redis use redis://)'
}

/**
 * A plain `redis:` URL whose connection was taken and then reset or closed under the first command (EPIPE,
 * ECONNRESET): a Redis restarting does that, a Redis at its `maxclients` too (its "-ERR max number of clients reached"
 * comes before the close, and ioredis, writing its first command meanwhile, reports only the EPIPE), and so does a
 * server of another protocol at that port (PostgreSQL, NATS, an MQTT broker) that hangs up on what it cannot read.
 */
function resetHint (url: string, code: string | undefined): string {
  if (url.startsWith('rediss:') || (code !== 'EPIPE' && code !== 'ECONNRESET')) return ''
  return ' (if it persists: Redis may be at its maxclients limit, which it says only to a connection it then closes: ' +
    'INFO clients; or something that is not Redis listens there: check REDIS_URL\'s host and port, 6379 by default)'
}

const NOT_THERE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/** Redis' refusal of a SELECT of a database it does not have. */
function databaseMissing (message: string): boolean {
  return /^ERR (DB index is out of range|invalid DB index)/.test(message)
}

/** What to change when the URL names a database Redis lacks (the URL as shown: without its password). */
function databaseFix (shown: string, said: string): string {
  const url = new URL(shown)
  return `Redis at ${shown} has no database ${url.pathname.replace(/^\/|\/$/g, '')} (${said}): use a database number below ` +
    `its "databases" setting (16 by default), such as ${url.protocol}//${url.host}/0`
}

/**
 * For a client the user passed (an ioredis `Redis`, @fastify/redis'), which token-store must not reconfigure: when it
 * has no `reconnectOnError`, the first store command of `store` refused with READONLY logs one warning naming the
 * option (after a failover such a client stays on the old primary, and every write answers 503 until a restart).
 * Nothing for a Cluster (a Cluster's replicas answer MOVED, which ioredis follows) or a client with its own
 * `reconnectOnError`. Watches the store-error diagnostics channel; returns the function that stops watching (at
 * close), or undefined when there is nothing to watch for.
 */
export function warnReadonlyReplies (store: object, client: unknown, log: FastifyBaseLogger): (() => void) | undefined {
  const c = client as { isCluster?: unknown, options?: { reconnectOnError?: unknown } } | null
  if (typeof c !== 'object' || c === null || c.isCluster === true || typeof c.options?.reconnectOnError === 'function') return undefined
  let watching = true
  const stop = (): void => {
    if (!watching) return
    watching = false
    unsubscribe(STORE_ERROR_CHANNEL, listener)
  }
  const listener = (message: unknown): void => {
    const m = message as StoreErrorMessage
    if (m.store !== store || !isReadonlyReply((m.error as { cause?: unknown }).cause)) return
    stop()
    log.warn('token-store: Redis refused a write as a read-only replica (READONLY): the Redis client token-store was given ' +
      'is connected to a replica, as the old primary is after a failover (Redis keeps its connections), and writes answer ' +
      '503 store_unavailable until that client reconnects. Fix: create the client (or @fastify/redis) with ' +
      "reconnectOnError: (err) => err.message.startsWith('READONLY') ? 2 : false, or pass token-store a redis:// URL " +
      '(its client does so); if the address names a replica, point it at the primary')
  }
  subscribe(STORE_ERROR_CHANNEL, listener)
  return stop
}

/**
 * The URL without its query, and the query's options typed (options.ts has checked them against the same table,
 * `URL_QUERY_OPTIONS`). Given the URL whole, ioredis copied every parameter into the
 * client's options as text, over the options token-store sets: `?connectTimeout=300` ended the process at the first
 * connection, and `?enableOfflineQueue=false` turned the queue on (a non-empty string).
 */
export function urlQueryOptions (url: string): { address: string, options: Record<string, string | number | boolean> } {
  const parsed = new URL(url)
  const options: Record<string, string | number | boolean> = {}
  for (const [name, text] of parsed.searchParams) {
    const option = Object.hasOwn(URL_QUERY_OPTIONS, name) ? URL_QUERY_OPTIONS[name] : undefined
    if (option !== undefined) options[name] = option.value(text)
  }
  if (parsed.search === '') return { address: url, options }
  parsed.search = ''
  return { address: parsed.toString(), options }
}
