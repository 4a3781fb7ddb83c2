import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { FastifyBaseLogger } from 'fastify'
import { errorInfo } from './errors.js'
import { STORE_ERROR_CHANNEL, type StoreErrorMessage } from './diagnostics.js'

/** At most one "Redis is full" line this often while writes keep being refused. */
export const REDIS_FULL_LOG_INTERVAL_MS = 60_000

/** Whether a Redis error is the refusal of a command because Redis is full (`OOM command not allowed when ...`). */
export function isOutOfMemoryReply (err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError' && /^OOM\b/.test(err.message)
}

/**
 * Says why, at most once a REDIS_FULL_LOG_INTERVAL_MS, when Redis refuses `store`'s commands because it is full:
 * without it an operator saw only hundreds of "store unavailable" lines (each request's 503) and no cause.
 * Watches the store-error diagnostics channel; returns the function that stops watching (at close).
 */
export function warnWhenRedisIsFull (store: object, log: FastifyBaseLogger): () => void {
  let lastLogged = -Infinity
  const listener = (message: unknown): void => {
    const m = message as StoreErrorMessage
    if (m.store !== store || !isOutOfMemoryReply((m.error as { cause?: unknown }).cause)) return
    const now = performance.now()
    if (now - lastLogged < REDIS_FULL_LOG_INTERVAL_MS) return
    lastLogged = now
    log.error('token-store: Redis refused a write because it is full (OOM: used memory is over its maxmemory, and its ' +
      'maxmemory-policy evicts nothing it may): sign-ins and refreshes answer 503 store_unavailable until it has room ' +
      '(sign-outs, which only delete, work). Fix: raise maxmemory (CONFIG SET maxmemory, or a managed Redis\'s parameter group or node size), or ' +
      'give token-store a Redis it does not share with bulkier data')
  }
  subscribe(STORE_ERROR_CHANNEL, listener)
  return () => { unsubscribe(STORE_ERROR_CHANNEL, listener) }
}

/** What the check below needs of a client: ioredis' `call`, and whether it is a Cluster. */
interface InfoClient {
  call: (command: string, ...args: string[]) => Promise<unknown>
  isCluster?: unknown
}

/**
 * Reads Redis's memory settings once (INFO memory) and warns when a full Redis would EVICT token-store's keys:
 * `maxmemory` set with a policy other than `noeviction`. Every key token-store writes has a TTL, so `volatile-*`
 * policies take them as readily as `allkeys-*`: sessions and token sets vanish (users are signed out, with no
 * line saying why), and so can a refresh lock or fence. Nothing is said when INFO is refused (an ACL without it),
 * fails, or the client is a Cluster (each node has its own settings; INFO reaches one). Never throws.
 */
export async function warnIfRedisEvicts (client: unknown, log: FastifyBaseLogger): Promise<void> {
  const c = client as InfoClient | null
  if (typeof c !== 'object' || c === null || typeof c.call !== 'function' || c.isCluster === true) return
  let info: unknown
  try {
    info = await c.call('INFO', 'memory')
  } catch (err) {
    log.debug({ err: errorInfo(err) }, 'token-store: could not read Redis\'s memory settings (INFO memory)')
    return
  }
  if (typeof info !== 'string') return
  const field = (name: string): string | undefined => new RegExp(`^${name}:(.*?)\\r?$`, 'm').exec(info as string)?.[1]
  const maxmemory = Number(field('maxmemory'))
  const policy = field('maxmemory_policy')
  if (!(maxmemory > 0) || policy === undefined || policy === 'noeviction') return
  log.warn(`token-store: Redis has maxmemory ${maxmemory} bytes with maxmemory-policy ${policy}: once full, it evicts ` +
    'sessions and token sets (every one has a TTL, so volatile-* policies take them too), signing users out; a user\'s ' +
    'session index (read least often, so evicted first under an LRU policy), after which "sign out everywhere" leaves the ' +
    'other devices signed in; and a refresh lock, which lets two instances refresh with the same refresh token. Fix: maxmemory-policy noeviction (CONFIG SET ' +
    'maxmemory-policy noeviction, or a managed Redis\'s parameter group, whose default is often volatile-lru; a full ' +
    'Redis then refuses writes, said in the log), or maxmemory 0, or a Redis of token-store\'s own')
}
