import dc from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import type { Refresher, TokenSet } from './token-set.js'
import type { TokenStore } from './token-store.js'
import { tokenSetProblem } from './token-set.js'
import { RefreshBusyError, RefreshRejectedError } from './errors.js'

/**
 * What token-store tells `node:diagnostics_channel` (the README lists the channels and their payloads).
 *
 * Nothing is built or measured while a channel has no subscriber: every publisher checks `hasSubscribers` first,
 * so an app without metrics pays one property read per refresh, lock wait or failed store command. Payloads carry
 * facts an operator needs and never a token, a session id or a key: `store` is the publishing TokenStore itself
 * (`fastify.tokenStore`), so that a subscriber can tell the apps of one process apart by identity.
 */

/** TracingChannel of one refresh flight: the lock wait, the re-read under the lock, the refresher, the save. */
export const REFRESH_CHANNEL = 'aihubmix:refresh'
/** Plain channel: how long a flight waited for the session's refresh lock (in-process and across instances). */
export const REFRESH_LOCK_WAIT_CHANNEL = 'aihubmix:refresh-lock-wait'
/** Plain channel: a store command failed (Redis down, stalled, refused it); the caller got StoreUnavailableError. */
export const STORE_ERROR_CHANNEL = 'aihubmix:store-error'

/** What the refresher (the provider) answered: a new set, a refusal for good, or a transient failure. */
export type RefreshOutcome = 'ok' | 'rejected' | 'failed'

/**
 * The context object of `tracing:aihubmix:refresh:*`. `outcome` is set once the refresher has answered; a flight
 * that ends without calling it (another instance had refreshed meanwhile, the set was gone, the lock wait timed
 * out, the store failed) has none. Node's TracingChannel adds `error` when the flight failed (the error the
 * callers get: ReauthRequiredError, RefreshBusyError, StoreUnavailableError, the refresher's own) and `result`,
 * which is always undefined here (the token set is never put on the context).
 */
export interface RefreshTraceContext {
  readonly store: TokenStore
  /** true: asked for after the provider refused the access token (a 401); false: the token was due. */
  readonly force: boolean
  outcome?: RefreshOutcome
  error?: unknown
  result?: undefined
}

/** The message of `aihubmix:refresh-lock-wait`, once per flight when the wait for the lock is over. */
export interface RefreshLockWaitMessage {
  readonly store: TokenStore
  /** From the first attempt to take the lock until it was taken or given up. */
  readonly waitMs: number
  /**
   * `busy`: another instance held it longer than this flight waits (RefreshBusyError): `lockWaitMs`, or less for a
   * caller whose access token is still valid (at once when it outlives `lockWaitMs`); `error`: the store failed.
   */
  readonly outcome: 'acquired' | 'busy' | 'error'
}

/** The message of `aihubmix:store-error`, once per failed store command. */
export interface StoreErrorMessage {
  /** The TokenStore the failed backend serves (undefined for a backend used on its own). */
  readonly store: TokenStore | undefined
  /** The Redis command's name (`GET`, `MGET`, `EVALSHA`, ...), never its arguments (keys hold session ids). */
  readonly command: string
  /** `timeout`: no answer within `redisCommandTimeoutMs`; `error`: the client or Redis refused or failed it. */
  readonly reason: 'timeout' | 'error'
  /** The StoreUnavailableError the caller got (its cause is the Redis error without the command's arguments). */
  readonly error: Error
}

const refreshChannel = dc.tracingChannel(REFRESH_CHANNEL)
const lockWaitChannel = dc.channel(REFRESH_LOCK_WAIT_CHANNEL)
const storeErrorChannel = dc.channel(STORE_ERROR_CHANNEL)

/** Which TokenStore each backend serves, for store-error messages (keyed by the backend: nothing is shared). */
const backends = new WeakMap<object, TokenStore>()

/** Store-error messages of `kv` name `store` as theirs. */
export function serveBackend (kv: object, store: TokenStore): void {
  backends.set(kv, store)
}

/**
 * Runs one refresh flight (`fly`, given the refresher to call) as a span of `aihubmix:refresh`, recording what the
 * refresher answered. Without subscribers it is `fly(refresh)` and nothing else.
 */
export function traceRefresh (
  store: TokenStore,
  force: boolean,
  refresh: Refresher,
  fly: (refresh: Refresher) => Promise<TokenSet>
): Promise<TokenSet> {
  if (!refreshChannel.hasSubscribers) return fly(refresh)
  const context: RefreshTraceContext = { store, force }
  const watched: Refresher = async (refreshToken) => {
    try {
      const set = await refresh(refreshToken)
      // token-store refuses a malformed answer as a transient failure; so does the outcome.
      context.outcome = tokenSetProblem(set) === undefined ? 'ok' : 'failed'
      return set
    } catch (err) {
      context.outcome = err instanceof RefreshRejectedError ? 'rejected' : 'failed'
      throw err
    }
  }
  let set: TokenSet | undefined
  // The traced function resolves to nothing: TracingChannel would otherwise put the token set on the context.
  return refreshChannel.tracePromise(async () => { set = await fly(watched) }, context).then(() => set as TokenSet)
}

/** Runs `acquire` (the wait for a session's refresh lock) and publishes how long it took and how it ended. */
export function timeLockWait<T> (store: TokenStore, acquire: () => Promise<T>): Promise<T> {
  if (!lockWaitChannel.hasSubscribers) return acquire()
  const started = performance.now()
  const done = (outcome: RefreshLockWaitMessage['outcome']): void => {
    if (!lockWaitChannel.hasSubscribers) return
    const message: RefreshLockWaitMessage = { store, waitMs: performance.now() - started, outcome }
    lockWaitChannel.publish(message)
  }
  return acquire().then((held) => {
    done('acquired')
    return held
  }, (err: unknown) => {
    done(err instanceof RefreshBusyError ? 'busy' : 'error')
    throw err
  })
}

/** Publishes a failed store command of backend `kv`. */
export function publishStoreError (kv: object, command: string, reason: StoreErrorMessage['reason'], error: Error): void {
  if (!storeErrorChannel.hasSubscribers) return
  const message: StoreErrorMessage = { store: backends.get(kv), command, reason, error }
  storeErrorChannel.publish(message)
}
