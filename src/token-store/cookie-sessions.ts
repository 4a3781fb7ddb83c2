import { createHmac, timingSafeEqual } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { KVStore } from './kv-store.js'
import type { KeyLayout } from './keys.js'
import { sessionTtl } from './session-store.js'
import { StoreUnavailableError, errorInfo } from './errors.js'
import { REDIS_ERROR_LOG_INTERVAL_MS } from './connection-errors.js'

/**
 * What a session check decides about a stored session, on routes where token-store reads sessions itself:
 * - `undefined`: the session is fine as it is;
 * - `'end'`: the session is over (its record and its token set are deleted, the request is signed out);
 * - `{ touch }`: the session is fine and `touch` is its new data, written back (compare-and-set: a concurrent
 *   change of the session wins). Best effort: when the store refuses the write (Redis full, a failover), the request
 *   goes on with the session as it was stored, and a later request writes it again.
 * Checks are synchronous and must not throw; they see the session data as @fastify/session stored it.
 */
export type SessionVerdict = undefined | 'end' | { touch: Record<string, unknown> }
export type SessionCheck = (session: Readonly<Record<string, unknown>>, now: number) => SessionVerdict

/** A session read straight from the signed cookie: its id and its sealed token set, read in the same round trip. */
export interface CookieSession {
  sid: string
  sealed: string | null
}

export interface CookieSessionsOptions {
  /** The session cookie's name (@fastify/session's `cookieName`). */
  cookieName: string
  /** The secret(s) @fastify/session signs it with (its `secret`); the first signs, every one verifies. */
  secrets: readonly string[]
  kv: KVStore
  keys: KeyLayout
  sessionTtlMs: number
  log: FastifyBaseLogger
  /** Ends a session: deletes its record and its token set, and drops its opened set from memory. */
  end: (sid: string) => Promise<void>
  /** The checks every session read here must pass (the array is read on each request: later additions count). */
  checks: readonly SessionCheck[]
}

/** Verified cookies remembered (signature checks skipped), oldest dropped first. */
const VERIFIED_CACHE_SIZE = 10_000
const MAX_COOKIE_LENGTH = 1024
/** Session cookies that do not verify: the first is said, then one line a minute at most, with a count. */
const REFUSED_COOKIE_LOG_INTERVAL_MS = 60_000

/**
 * Reads @fastify/session's sessions without @fastify/session, for routes registered outside its scope (the
 * `/api` hot path): the id from the signed cookie, then ONE read (MGET) of the session record and the sealed token
 * set. Nothing is built, hashed or re-signed per request, and nothing is written back unless a check says so.
 *
 * It accepts exactly what @fastify/session would restore, and less:
 * - the cookie must carry a valid signature (HMAC-SHA256 under one of the secrets, @fastify/cookie's format
 *   `<id>.<base64 signature without padding>`, compared in constant time);
 * - the session record must exist (a destroyed or regenerated id has none), be a JSON object, and its cookie must
 *   not have expired (@fastify/session regenerates an expired session; here it is ended);
 * - every registered check must let it through (oauth-routes registers its idle and absolute timeouts).
 */
export class CookieSessions {
  readonly cookieName: string
  readonly #secrets: readonly string[]
  readonly #kv: KVStore
  readonly #keys: KeyLayout
  readonly #sessionTtlMs: number
  readonly #log: FastifyBaseLogger
  readonly #end: (sid: string) => Promise<void>
  readonly #checks: readonly SessionCheck[]
  /**
   * Signed cookie value -> session id, for values whose signature verified. The secrets are fixed for the life of
   * this object and a signature never stops being valid for its value, so this only saves recomputing the HMAC;
   * whether the session still exists is read from the store on every request.
   */
  readonly #verified = new Map<string, string>()
  /**
   * Session id -> the last session record read for it, parsed. Used only when the record just read is exactly the
   * same JSON (so it is the same data); the record itself is read from the store on every request.
   */
  readonly #parsed = new Map<string, ParsedSession>()
  /** When the last "did not verify" line was logged, and how many cookies did not verify since (rate limit). */
  #refusedSaidAt = -Infinity
  #refusedSince = 0
  /** When the last "could not write a touch" warning was logged, and how many were not since (rate limit). */
  #touchWarnedAt = -Infinity
  #touchFailures = 0

  constructor (options: CookieSessionsOptions) {
    this.cookieName = options.cookieName
    this.#secrets = options.secrets
    this.#kv = options.kv
    this.#keys = options.keys
    this.#sessionTtlMs = options.sessionTtlMs
    this.#log = options.log
    this.#end = options.end
    this.#checks = options.checks
  }

  /**
   * What `read` would answer, when it can be decided without waiting: the store answers at once (`getManyNow`: the
   * memory store, the Redis store's client-side cache) and the session is fine as it is (no check ends or touches
   * it, its cookie has not expired). undefined: call `read`. Every check of `read` is made here too.
   */
  readNow (cookieValue: unknown): CookieSession | null | undefined {
    const getManyNow = this.#kv.getManyNow
    if (getManyNow === undefined) return undefined
    if (typeof cookieValue !== 'string') return null
    const sid = this.#unsign(cookieValue)
    if (sid === null) {
      this.#refused()
      return null
    }
    const values = getManyNow.call(this.#kv, [this.#keys.session(sid), this.#keys.tokens(sid)])
    if (values === undefined) return undefined
    const json = values[0]
    if (json === null || json === undefined) {
      this.#parsed.delete(sid)
      return null
    }
    const parsed = this.#parse(sid, json)
    // Not a JSON object (logged by `read`), expired, ended or touched: `read` does it.
    if (parsed === null) return undefined
    const now = Date.now()
    if (parsed.expiresAt <= now) return undefined
    const session = parsed.session
    for (const check of this.#checks) {
      if (check(session, now) !== undefined) return undefined
    }
    return { sid, sealed: values[1] ?? null }
  }

  /** The record parsed, from the last parse of this session when the JSON is the same; null: not a JSON object. */
  #parse (sid: string, json: string): ParsedSession | null {
    const known = this.#parsed.get(sid)
    if (known !== undefined && known.json === json) return known
    const session = parseSession(json)
    if (session === null) return null
    // Shared by the requests that read the same record: nobody may change it.
    Object.freeze(session)
    if (typeof session.cookie === 'object' && session.cookie !== null) Object.freeze(session.cookie)
    const parsed: ParsedSession = { json, session, expiresAt: cookieExpiresAt(session) }
    if (known !== undefined) this.#parsed.delete(sid)
    this.#parsed.set(sid, parsed)
    if (this.#parsed.size > VERIFIED_CACHE_SIZE) {
      const oldest = this.#parsed.keys().next()
      if (oldest.done !== true) this.#parsed.delete(oldest.value)
    }
    return parsed
  }

  /** Whether a cookie value carries a signature of one of `sessionCookie.secret`'s secrets (nothing is read or logged). */
  verifies (cookieValue: string): boolean {
    return this.#unsign(cookieValue) !== null
  }

  /** The session of this cookie value, or null (no cookie, bad signature, no such session, expired, ended). */
  async read (cookieValue: unknown): Promise<CookieSession | null> {
    if (typeof cookieValue !== 'string') return null
    const sid = this.#unsign(cookieValue)
    if (sid === null) {
      this.#refused()
      return null
    }
    const sessionKey = this.#keys.session(sid)
    const [json, sealed] = await this.#kv.getMany([sessionKey, this.#keys.tokens(sid)])
    if (json === null || json === undefined) {
      this.#parsed.delete(sid)
      return null
    }
    const parsed = this.#parse(sid, json)
    if (parsed === null) {
      this.#log.warn('token-store: ignored a stored session that is not a JSON object')
      return null
    }
    const session = parsed.session
    const now = Date.now()
    if (parsed.expiresAt <= now) {
      this.#parsed.delete(sid)
      await this.#end(sid)
      return null
    }
    let touched: Record<string, unknown> | undefined
    for (const check of this.#checks) {
      const verdict = check(touched ?? session, now)
      if (verdict === undefined) continue
      if (verdict === 'end') {
        this.#parsed.delete(sid)
        await this.#end(sid)
        return null
      }
      touched = verdict.touch
    }
    if (touched !== undefined) await this.#touch(sessionKey, json, touched)
    return { sid, sealed: sealed ?? null }
  }

  /**
   * Writes a check's touch (the idle timeout's "last seen" stamp), best effort: the checks have already decided
   * that the session goes on, so a store that refuses the write (Redis full: OOM under noeviction; a replica after
   * a failover) or is down costs the stamp's precision, not the request. The stamp stays due, so the next request
   * of the session tries again; a session whose stamp could not be written for a whole idle timeout still ends.
   * At most one warning per REDIS_ERROR_LOG_INTERVAL_MS, without the session id.
   */
  async #touch (key: string, json: string, session: Record<string, unknown>): Promise<void> {
    const ttl = sessionTtl(session, this.#sessionTtlMs)
    if (ttl <= 0) return
    try {
      // A session changed meanwhile (a login in another tab) or deleted (a logout) keeps that change.
      await this.#kv.compareAndSet(key, json, JSON.stringify(session), ttl)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      this.#touchFailures++
      const now = Date.now()
      if (now - this.#touchWarnedAt < REDIS_ERROR_LOG_INTERVAL_MS) return
      const more = this.#touchFailures === 1 ? '' : ` (${this.#touchFailures - 1} more since the last line)`
      this.#touchWarnedAt = now
      this.#touchFailures = 0
      this.#log.warn({ error: errorInfo(err.cause) }, `token-store: could not record a session's activity for its checks${more}; ` +
        'the request goes on with the session as stored (an idle timeout then counts from the last activity recorded)')
    }
  }

  /**
   * A cookie that does not verify is logged (never its value): forged, stale, or, when every signed-in request is
   * refused, signed with a secret that is not in `sessionCookie.secret` (it must be @fastify/session's), as a rolling
   * deploy in the wrong order leaves one instance. The first, then one line a minute at most with how many came
   * since: forged cookies cannot flood the log, and a fleet's signed-out users are not one line per process (an
   * operator review found hundreds of 401s a minute behind the single line a process used to write).
   */
  #refused (): void {
    this.#refusedSince++
    const now = Date.now()
    if (now - this.#refusedSaidAt < REFUSED_COOKIE_LOG_INTERVAL_MS) return
    const first = this.#refusedSaidAt === -Infinity
    const count = this.#refusedSince
    this.#refusedSaidAt = now
    this.#refusedSince = 0
    this.#log.warn(`token-store: ${first ? 'a session cookie did not verify' : `${count} session cookie${count === 1 ? '' : 's'} did not verify since the last line`} ` +
      '(forged; or signed with a secret that is not in sessionCookie.secret, which must be the secret @fastify/session signs with; ' +
      'or by an instance with another secret list: every instance needs the same, SESSION_SECRET in the example; or by a ' +
      '@fastify/session with a cookiePrefix, algorithm or signer of its own, which sessionCookie does not read); those requests are ' +
      'answered signed out, and the cookies are left as they are')
  }

  #unsign (value: string): string | null {
    if (value.length === 0 || value.length > MAX_COOKIE_LENGTH) return null
    const known = this.#verified.get(value)
    if (known !== undefined) return known
    const dot = value.lastIndexOf('.')
    if (dot <= 0 || dot === value.length - 1) return null
    const sid = value.slice(0, dot)
    const actual = Buffer.from(value.slice(dot + 1))
    let valid = false
    for (const secret of this.#secrets) {
      const expected = Buffer.from(signature(sid, secret))
      // Every secret is tried (no early exit), each comparison in constant time.
      if (expected.length === actual.length && timingSafeEqual(expected, actual)) valid = true
    }
    if (!valid) return null
    this.#verified.set(value, sid)
    if (this.#verified.size > VERIFIED_CACHE_SIZE) {
      const oldest = this.#verified.keys().next()
      if (oldest.done !== true) this.#verified.delete(oldest.value)
    }
    return sid
  }
}

/** @fastify/cookie's signature of a value: HMAC-SHA256, base64 without its `=` padding. */
export function signature (value: string, secret: string): string {
  return createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '')
}

export function parseSession (json: string): Record<string, unknown> | null {
  let data: unknown
  try {
    data = JSON.parse(json)
  } catch {
    return null
  }
  return typeof data === 'object' && data !== null && !Array.isArray(data) ? data as Record<string, unknown> : null
}

/**
 * As @fastify/session decides it when it restores a session: the stored cookie's `expires` at or before now. (Its
 * restored cookie takes `originalExpires` from the stored `expires`; the stored `originalExpires` is an older
 * value, kept from before the last save, and does not count.) No `expires`: a browser-session cookie, never.
 */
export function cookieExpired (session: Record<string, unknown>, now: number): boolean {
  return cookieExpiresAt(session) <= now
}

/** When cookieExpired starts to say true: the stored cookie's `expires` in ms, or Infinity (none, or unreadable). */
export function cookieExpiresAt (session: Record<string, unknown>): number {
  const cookie = session.cookie as { expires?: unknown } | null | undefined
  if (typeof cookie !== 'object' || cookie === null) return Infinity
  const when = cookie.expires
  if (typeof when !== 'string' && typeof when !== 'number') return Infinity
  const at = new Date(when).getTime()
  return Number.isFinite(at) ? at : Infinity
}

/** A session record as read (its JSON), parsed, and when its cookie expires. */
interface ParsedSession {
  readonly json: string
  readonly session: Record<string, unknown>
  readonly expiresAt: number
}
