import type { FastifyBaseLogger } from 'fastify'
import type { KVStore } from './kv-store.js'
import type { KeyLayout } from './keys.js'

/**
 * A store for @fastify/session, on the token store's KV store. Structurally the `SessionStore` of
 * @fastify/session (get/set/destroy with callbacks), so it can be passed as its `store` option.
 */
export interface SessionStoreLike {
  get (sessionId: string, callback: (err: Error | null, session?: SessionData | null) => void): void
  set (sessionId: string, session: SessionData, callback: (err?: Error | null) => void): void
  destroy (sessionId: string, callback: (err?: Error | null) => void): void
}

/**
 * The session data as @fastify/session passes it: its `Session` type, which each app augments
 * (`declare module 'fastify' { interface Session {...} }`). `any`, so that this store stays assignable to
 * @fastify/session's `store` option whatever the augmentation, without depending on @fastify/session's types.
 */
export type SessionData = any

/**
 * The property under which `get()` hands the session's sealed token set to @fastify/session, which copies every
 * enumerable property of what `get` returns onto `request.session`. `request.tokens` reads it from there (once),
 * which is how a steady-state request costs ONE store round trip (MGET of the session and the token set).
 */
export const PREFETCH_KEY = '__tokenStorePrefetch'

/**
 * The prefetched sealed token set of one session, for one request. `toJSON()` returns undefined, so it is left
 * out of @fastify/session's modification hash (a request that only reads never writes the session back), out of
 * what `set()` stores, and out of any JSON a route might make of the session. It is sealed: printing it shows
 * no token.
 */
export class PrefetchedTokens {
  readonly owner: object
  readonly sid: string
  readonly sealed: string | null
  consumed = false

  constructor (owner: object, sid: string, sealed: string | null) {
    this.owner = owner
    this.sid = sid
    this.sealed = sealed
  }

  toJSON (): undefined {
    return undefined
  }
}

export interface SessionStoreContext {
  kv: KVStore
  keys: KeyLayout
  sessionTtlMs: number
  log: FastifyBaseLogger
  /** The token store the prefetched sets belong to (request.tokens checks it). */
  owner: object
  /** Ends a session: deletes its record and its token set (TokenStoreCore.endSession). */
  end: (sid: string) => Promise<void>
}

/**
 * - `get`: ONE round trip (MGET `{sid}:sess` + `{sid}:tok`, one hash slot); the session JSON plus a
 *   PrefetchedTokens under PREFETCH_KEY. A session that is missing or not valid JSON is "no session".
 * - `set`: the session as JSON without PREFETCH_KEY, with a TTL until `cookie.expires`, or `sessionTtlMs` when the
 *   cookie has no expiry; an already expired session is deleted instead. A session `get` read (it carries its
 *   PREFETCH_KEY) is written only if its record is still there (`SET XX`): one ended meanwhile stays ended. A new
 *   session holding nothing but its cookie is not written at all.
 * - `destroy`: deletes the session AND its token set (one DEL): a destroyed session id (logout, regenerate at
 *   login) can never find tokens again.
 * Store failures reach @fastify/session as StoreUnavailableError (503) through the callback.
 */
export function createSessionStore (ctx: SessionStoreContext): SessionStoreLike {
  const { kv, keys, sessionTtlMs, log, owner, end } = ctx

  return {
    get (sessionId, callback) {
      kv.getMany([keys.session(sessionId), keys.tokens(sessionId)]).then(([json, sealed]) => {
        if (json === null || json === undefined) {
          callback(null, null)
          return
        }
        let data: unknown
        try {
          data = JSON.parse(json)
        } catch (err) {
          log.warn({ err }, 'token-store: ignored a stored session that is not valid JSON')
          data = null
        }
        if (typeof data !== 'object' || data === null || Array.isArray(data)) {
          callback(null, null)
          return
        }
        const session = data as Record<string, unknown>
        session[PREFETCH_KEY] = new PrefetchedTokens(owner, sessionId, sealed ?? null)
        callback(null, session)
      }, (err: Error) => callback(err))
    },

    set (sessionId, session, callback) {
      let json: string
      try {
        json = JSON.stringify(session, function (this: unknown, key: string, value: unknown) {
          return this === session && key === PREFETCH_KEY ? undefined : value
        })
      } catch (err) {
        callback(err as Error)
        return
      }
      const ttl = sessionTtl(session, sessionTtlMs)
      // A session read from the store is written back only while it is still there: ended meanwhile (a logout or
      // an end from another device, on any instance), it stays ended, whatever this request saves (a "last seen"
      // stamp). A new one (a sign-in's, after regenerate) is written as it is.
      const prefetched = (session as Record<string, unknown>)[PREFETCH_KEY]
      const loaded = prefetched instanceof PrefetchedTokens && prefetched.sid === sessionId
      // A new session with nothing in it (only its cookie, and no token set saved under it) is not written: no record
      // is what an empty session reads as. @fastify/session's regenerate() saves the new session at once: a session
      // ended by its timeout kept an empty record no cookie named, until its TTL, for every such visit.
      if (!loaded && isEmptySession(session) && (session as Record<symbol, unknown>)[TOKENS_SAVED] !== sessionId) {
        callback(null)
        return
      }
      const done = ttl <= 0
        ? kv.delete(keys.session(sessionId))
        : loaded ? kv.replace(keys.session(sessionId), json, ttl) : kv.set(keys.session(sessionId), json, ttl)
      done.then(() => callback(null), (err: Error) => callback(err))
    },

    destroy (sessionId, callback) {
      end(sessionId).then(() => callback(null), (err: Error) => callback(err))
    }
  }
}

/**
 * Set on a session object (a symbol: never in its JSON, nor in @fastify/session's change hash) when `request.tokens`
 * saved a token set under its id: a session whose only content is its token set (`regenerate()`, then
 * `request.tokens.save(set)`) is a signed-in one, and its record is written like any other.
 */
const TOKENS_SAVED = Symbol('token-store: token set saved')

export function markTokens (session: object, sid: string): void {
  (session as Record<symbol, unknown>)[TOKENS_SAVED] = sid
}

/** Nothing but the cookie (and the prefetched token set, never stored): what @fastify/session makes of no record. */
function isEmptySession (session: Record<string, unknown>): boolean {
  for (const key of Object.keys(session)) {
    if (key !== 'cookie' && key !== PREFETCH_KEY && session[key] !== undefined) return false
  }
  return true
}

/** Milliseconds until the session's cookie expires (may be <= 0), or `fallback` when it has no expiry. */
export function sessionTtl (session: object, fallback: number): number {
  const cookie = (session as { cookie?: { expires?: unknown } }).cookie
  const expires = cookie?.expires
  if (expires instanceof Date || typeof expires === 'string' || typeof expires === 'number') {
    const at = new Date(expires).getTime()
    if (Number.isFinite(at)) return Math.ceil(at - Date.now())
  }
  return fallback
}
