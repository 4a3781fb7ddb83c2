import type { FastifyRequest } from 'fastify'
import type { GetFreshOptions, Refresher, TokenSet } from './token-set.js'
import type { StoredTokenSet, TokenStoreCore } from './token-store.js'
import { InsecureSessionCookieError, NoSessionError, UnauthenticatedError } from './errors.js'
import { markTokens, PREFETCH_KEY, PrefetchedTokens } from './session-store.js'

/**
 * `request.tokens`: the token store bound to this request's session. The session is @fastify/session's
 * (`request.session.sessionId`) where @fastify/session runs; on routes outside its scope, with the `sessionCookie`
 * option, it is read from the signed cookie by token-store itself. Without a session it behaves as "no token set":
 * get() is null, getFresh() throws UnauthenticatedError, clear() and endSession() do nothing, save() throws
 * NoSessionError.
 */
export interface RequestTokens {
  get (): Promise<TokenSet | null>
  save (set: TokenSet): Promise<void>
  clear (): Promise<void>
  getFresh (refresh: Refresher, opts?: GetFreshOptions): Promise<TokenSet>
  /**
   * getFresh for the hot path: the same checks and the same answer, but in the steady state (the session and its
   * token set known without waiting, in the memory store or the Redis client-side cache, and not due for refresh)
   * the set itself instead of a promise, so a request pays for no promise and no extra tick. Anything else (a
   * store read, a refresh, no session, an error) is getFresh's promise.
   */
  getFreshSync (refresh: Refresher, opts?: GetFreshOptions): TokenSet | Promise<TokenSet>
  /**
   * Ends the session: its token set and its record (through @fastify/session's `destroy` where it runs, so that
   * `request.session` follows). For a grant the provider revoked.
   */
  endSession (): Promise<void>
}

/** This request's session: its id, and the sealed set read with it (until a read takes it). */
interface BoundSession {
  sid: string
  prefetch: PrefetchedTokens | undefined
  /** @fastify/session's session object, where it runs. */
  session: { destroy?: () => Promise<void> } | undefined
  /**
   * The session was made by this request (no cookie of the request names its id: a visitor without a session, or
   * a regenerate) and nothing was saved for it through this object: it has no token set, so reads answer "none"
   * without asking the store, which keeps an anonymous visitor's request off the store (and off a store outage).
   */
  unsaved: boolean
}

/**
 * The first read of a request uses the sealed set read together with the session (no second round trip); any
 * later read, and any read after a save or clear, goes to the store, so it sees the newest set.
 */
export class RequestTokensImpl implements RequestTokens {
  readonly #store: TokenStoreCore
  readonly #request: FastifyRequest
  /** The session read from the cookie (once per request), when there is no @fastify/session. */
  #fromCookie: BoundSession | null | Promise<BoundSession | null> | undefined
  /** The session id last saved or cleared through this object (a regenerate may have made it in this request). */
  #written: string | undefined

  constructor (store: TokenStoreCore, request: FastifyRequest) {
    this.#store = store
    this.#request = request
  }

  async get (): Promise<TokenSet | null> {
    const bound = await this.#bind()
    if (bound === null || bound.unsaved) return null
    const prefetched = await this.#takePrefetched(bound)
    if (prefetched !== undefined) return prefetched?.set ?? null
    return await this.#store.get(bound.sid)
  }

  async save (set: TokenSet): Promise<void> {
    const bound = await this.#bind()
    if (bound === null) throw new NoSessionError()
    if (bound.session !== undefined && insecure(bound.session, this.#request)) throw new InsecureSessionCookieError()
    consume(bound)
    this.#written = bound.sid
    // A session whose only content is its token set is not empty: the session store writes its record (markTokens).
    if (bound.session !== undefined) markTokens(bound.session, bound.sid)
    await this.#store.save(bound.sid, set)
  }

  async clear (): Promise<void> {
    const bound = await this.#bind()
    if (bound === null || bound.unsaved) return
    consume(bound)
    this.#written = bound.sid
    await this.#store.delete(bound.sid)
  }

  async getFresh (refresh: Refresher, opts?: GetFreshOptions): Promise<TokenSet> {
    return await this.#freshFrom(await this.#bind(), refresh, opts)
  }

  getFreshSync (refresh: Refresher, opts?: GetFreshOptions): TokenSet | Promise<TokenSet> {
    const bound = this.#bindNow()
    if (bound === undefined) return this.getFresh(refresh, opts)
    return this.#freshFrom(bound, refresh, opts)
  }

  /**
   * The fresh set of a bound session: without a promise when the prefetched sealed set opens at once and is usable
   * (token-store's getFreshNow), else through getFreshFrom.
   */
  #freshFrom (bound: BoundSession | null, refresh: Refresher, opts: GetFreshOptions | undefined): TokenSet | Promise<TokenSet> {
    if (bound === null || bound.unsaved) return Promise.reject(new UnauthenticatedError())
    const prefetch = bound.prefetch
    if (opts === undefined && prefetch !== undefined && !prefetch.consumed) {
      const stored = this.#store.openNow(bound.sid, prefetch.sealed)
      if (stored !== undefined && stored !== null) {
        prefetch.consumed = true
        return this.#store.getFreshNow(bound.sid, stored, refresh)
      }
    }
    return this.#freshFromStore(bound, refresh, opts)
  }

  async #freshFromStore (bound: BoundSession, refresh: Refresher, opts: GetFreshOptions | undefined): Promise<TokenSet> {
    return await this.#store.getFreshFrom(bound.sid, await this.#takePrefetched(bound), refresh, opts)
  }

  async endSession (): Promise<void> {
    const bound = await this.#bind()
    if (bound === null) return
    consume(bound)
    if (typeof bound.session?.destroy === 'function') {
      await bound.session.destroy()
    } else {
      await this.#store.endSession(bound.sid)
    }
  }

  /** The session of this request, or null. Synchronous where @fastify/session already loaded it. */
  #bind (): BoundSession | null | Promise<BoundSession | null> {
    const session = (this.#request as unknown as { session?: Record<string, unknown> | null }).session
    // Where @fastify/session runs, `request.session` is decorated (null until loaded, and after a destroy).
    if (session !== undefined) {
      if (typeof session !== 'object' || session === null) return null
      const sid = session.sessionId
      if (typeof sid !== 'string' || sid === '') return null
      const prefetch = session[PREFETCH_KEY]
      if (prefetch instanceof PrefetchedTokens) {
        // Loaded by token-store's session store: the sealed set came with it.
        return { sid, prefetch: prefetch.owner === this.#store && prefetch.sid === sid ? prefetch : undefined, session, unsaved: false }
      }
      return { sid, prefetch: undefined, session, unsaved: sid !== this.#written && madeByFastifySession(session) && !this.#cookieNames(sid) }
    }
    if (this.#fromCookie === undefined) this.#fromCookie = this.#readCookie()
    return this.#fromCookie
  }

  /** #bind when it is known without waiting; undefined when it is not (then #bind reads it). */
  #bindNow (): BoundSession | null | undefined {
    if ((this.#request as unknown as { session?: unknown }).session !== undefined) return this.#bind() as BoundSession | null
    const known = this.#fromCookie
    if (known !== undefined) return known instanceof Promise ? undefined : known
    const sessions = this.#store.cookieSessions
    if (sessions === undefined) return undefined
    const cookies = (this.#request as unknown as { cookies?: Record<string, string | undefined> }).cookies
    const read = sessions.readNow(cookies?.[sessions.cookieName])
    if (read === undefined) return undefined
    const bound = read === null ? null : { sid: read.sid, prefetch: new PrefetchedTokens(this.#store, read.sid, read.sealed), session: undefined, unsaved: false }
    this.#fromCookie = bound
    return bound
  }

  async #readCookie (): Promise<BoundSession | null> {
    const sessions = this.#store.cookieSessions
    if (sessions === undefined) return null
    const cookies = (this.#request as unknown as { cookies?: Record<string, string | undefined> }).cookies
    const read = await sessions.read(cookies?.[sessions.cookieName])
    if (read === null) return null
    return { sid: read.sid, prefetch: new PrefetchedTokens(this.#store, read.sid, read.sealed), session: undefined, unsaved: false }
  }

  /**
   * Whether a cookie of the request holds this session id. @fastify/session's cookie is the id and its signature
   * (under any secret of the list), so a loaded session's id is always in it; an id made in this request (128+
   * random bits) never is.
   */
  #cookieNames (sid: string): boolean {
    const cookies = (this.#request as unknown as { cookies?: Record<string, string | undefined> }).cookies
    if (cookies === undefined || cookies === null) return true
    for (const name in cookies) {
      const value = cookies[name]
      if (typeof value === 'string' && value.includes(sid)) return true
    }
    return false
  }

  /** Takes the prefetched set (once): undefined when there is none to use, else the opened set or null. */
  async #takePrefetched (bound: BoundSession): Promise<StoredTokenSet | null | undefined> {
    const prefetch = bound.prefetch
    if (prefetch === undefined || prefetch.consumed) return undefined
    prefetch.consumed = true
    return await this.#store.open(bound.sid, prefetch.sealed)
  }
}

/**
 * Whether the session object is @fastify/session's (whose cookie holds the id), not one an app or another plugin
 * put on `request.session` with an id kept elsewhere: only for @fastify/session's is "no cookie names the id" the
 * same as "made in this request".
 */
function madeByFastifySession (session: Record<string, unknown>): boolean {
  return typeof session.encryptedSessionId === 'string' && typeof session.regenerate === 'function'
}

function consume (bound: BoundSession): void {
  if (bound.prefetch !== undefined) bound.prefetch.consumed = true
}

/**
 * A @fastify/session session whose cookie is Secure, in a request over plain http: @fastify/session saves no such
 * session and sends no such cookie (it checks the same, its `cookie.secure` resolved for this request).
 */
function insecure (session: object, request: FastifyRequest): boolean {
  const cookie = (session as { cookie?: { secure?: unknown } }).cookie
  return cookie?.secure === true && request.protocol !== 'https'
}
