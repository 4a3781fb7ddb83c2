import type { FastifyBaseLogger } from 'fastify'
import { errorInfo } from './errors.js'

/** At most one log line per this many ms about the Redis client's connection errors. */
export const REDIS_ERROR_LOG_INTERVAL_MS = 10_000

interface ErrorEmitter {
  listenerCount (event: 'error'): number
  on (event: 'error', listener: (err: unknown) => void): unknown
  removeListener (event: 'error', listener: (err: unknown) => void): unknown
}

function isErrorEmitter (value: unknown): value is ErrorEmitter {
  const v = value as Partial<ErrorEmitter> | null
  return typeof v === 'object' && v !== null && typeof v.listenerCount === 'function' && typeof v.on === 'function' &&
    typeof v.removeListener === 'function'
}

/**
 * Whether a Redis client's error says that what answered does not speak Redis' protocol (RESP): ioredis 5's parser
 * (a `ParserError`, "Protocol error, got "H" as reply type byte") or ioredis 6's ("Unknown RESP type 72 "H""). An HTTP
 * server at the address answers so (its "HTTP/1.1 400"): it does not pass on its own, unlike Redis being down.
 */
export function isProtocolError (err: unknown): boolean {
  if (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'ParserError') return true
  return /^(Protocol error\b|Unknown RESP type\b)/.test(errorInfo(err).message)
}

/**
 * Logs the Redis client's connection errors through the app's logger, when nobody listens to them: an ioredis client
 * with no 'error' listener (@fastify/redis adds none) prints "[ioredis] Unhandled error event" and a stack to stderr
 * on every reconnection attempt while Redis is down. One warning per REDIS_ERROR_LOG_INTERVAL_MS at most, naming
 * what requests get meanwhile. A client that already has a listener is left alone (its owner logs). Returns the
 * function that removes the listener (at close), or undefined when none was added.
 */
export function logConnectionErrors (client: unknown, log: FastifyBaseLogger, now: () => number = Date.now): (() => void) | undefined {
  if (!isErrorEmitter(client) || client.listenerCount('error') > 0) return undefined
  let lastAt = -Infinity
  let missed = 0
  const listener = (err: unknown): void => {
    const at = now()
    if (at - lastAt < REDIS_ERROR_LOG_INTERVAL_MS) {
      missed++
      return
    }
    lastAt = at
    const more = missed === 0 ? '' : ` (${missed} more since the last line)`
    missed = 0
    if (isProtocolError(err)) {
      log.error({ error: errorInfo(err) }, `token-store: what the Redis client reaches is not a Redis server (an answer not in Redis' protocol${more}): ` +
        'requests that need the store answer 503 store_unavailable. Fix: give the client the host and port of your Redis')
      return
    }
    log.warn({ error: errorInfo(err) }, `token-store: Redis connection error${more}; requests that need the store answer 503 store_unavailable until it is back`)
  }
  client.on('error', listener)
  return () => { client.removeListener('error', listener) }
}
