import type { FastifyBaseLogger } from 'fastify'
import type { RedisClient } from './redis-store.js'
import { TokenStoreOptionsError, errorInfo } from './errors.js'

/** How long a connection attempt may take before ioredis gives up on it (and tries again). */
export const REDIS_URL_CONNECT_TIMEOUT_MS = 5000
/** The longest pause between two connection attempts while Redis is down. */
export const RECONNECT_MAX_DELAY_MS = 1000

/** What token-store needs of the client it makes (ioredis' `Redis`). */
interface OwnedClient extends RedisClient {
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

/**
 * The client for `redis: '<url>'`, made by token-store (ioredis, an optional peer, is loaded only here).
 *
 * Unlike @fastify/redis, which holds the start until Redis is ready (a Redis down at start became "Plugin did not
 * start in time: '@fastify/redis'" ten seconds later, and a refused password crashed the start printing the AUTH
 * command with the password in it), this one waits for the first attempt only, then lets the app start either way:
 * while Redis is unreachable every request that needs the store answers 503 store_unavailable at once (no offline
 * queue), and ioredis reconnects on its own. One warning when Redis becomes unreachable, one line when it is back
 * (or one error line when it refuses the URL's credentials, which does not pass on its own),
 * each naming the URL without its password and the error by its code or message only (ioredis attaches the
 * command, and a HELLO or AUTH command carries the password).
 */
export async function connectRedisUrl (url: string, log: FastifyBaseLogger): Promise<OwnedClient> {
  let Redis: RedisConstructor
  try {
    Redis = (await import('ioredis')).Redis as unknown as RedisConstructor
  } catch {
    throw new TokenStoreOptionsError('redis', 'a redis:// URL needs ioredis installed next to token-store: npm i ioredis')
  }
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: REDIS_URL_CONNECT_TIMEOUT_MS,
    // The commands of concurrent requests issued in the same turn go out in one write.
    enableAutoPipelining: true,
    // Back at most a second after Redis is (ioredis' default waits up to 2 s between attempts).
    retryStrategy: (times: number) => Math.min(times * 100, RECONNECT_MAX_DELAY_MS)
  })
  const shown = redisUrlForLogs(url)
  let unreachable = false
  client.on('error', (err) => {
    if (unreachable) return
    unreachable = true
    const { code, message } = errorInfo(err)
    const refused = credentialsRefused(message)
    if (refused !== undefined) {
      // It does not come back on its own: an error, naming the fix (the reply never holds the password).
      log.error(`token-store: Redis at ${shown} refused the credentials of the redis URL (${refused}): requests that need ` +
        'the store answer 503 store_unavailable. Fix: the user name and password in the URL (redis://user:password@host:port, ' +
        'or redis://:password@host:port for the default user; none if Redis has no password)')
      return
    }
    log.warn(`token-store: Redis at ${shown} is unavailable (${code ?? message}): requests that need the store answer 503 ` +
      'store_unavailable until it is back; reconnecting in the background')
  })
  client.on('ready', () => {
    if (!unreachable) return
    unreachable = false
    log.info(`token-store: Redis at ${shown} is available again`)
  })
  const firstAttempt = new Promise<void>((resolve) => {
    client.once('ready', resolve)
    client.once('error', resolve)
  })
  client.connect().catch(() => {}) // a failure is an 'error' event; reconnecting is ioredis' own
  await firstAttempt
  return client
}
