import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { KVStore } from './kv-store.js'
import type { ResolvedTokenStoreOptions, TokenStoreHooks } from './options.js'
import type { GetFreshOptions, Refresher, TokenSet } from './token-set.js'
import type { SessionStoreLike } from './session-store.js'
import { isTokenSet, normalizeTokenSet, tokenSetProblem } from './token-set.js'
import { KeyLayout, assertId } from './keys.js'
import { Records } from './records.js'
import { createSessionStore } from './session-store.js'
import { CookieSessions, type SessionCheck } from './cookie-sessions.js'
import { serveBackend, timeLockWait, traceRefresh } from './diagnostics.js'
import {
  ReauthRequiredError,
  RefreshBusyError,
  RefreshRejectedError,
  TokenStoreArgumentError,
  UnauthenticatedError,
  UnsealFailedError
} from './errors.js'

/** The token store (`fastify.tokenStore`). Session ids (`sid`) are the @fastify/session ids. */
export interface TokenStore {
  /** The stored set, or null (absent, expired, or unreadable: an unreadable one is deleted and logged at warn). */
  get (sid: string): Promise<TokenSet | null>
  /**
   * Stores the set, sealed. TTL: `refreshTokenTtlMs` if the set has a refresh token, else until `expiresAt`
   * (a set without refresh token that has already expired is not stored: any stored one is deleted).
   */
  save (sid: string, set: TokenSet): Promise<void>
  delete (sid: string): Promise<void>
  /**
   * A usable token set: the stored set if more than refreshSkewMs remains (and !force); otherwise refreshes ONCE
   * per session however many callers ask at the same time (single flight, in-process and across instances sharing
   * Redis), saves the rotated set before resolving, and gives every waiter the new set.
   * Throws UnauthenticatedError if there is no set (or it has no refresh token and is expired, or is forced),
   * ReauthRequiredError when the refresher threw RefreshRejectedError (the set has then been deleted, onRevoked
   * called), RefreshBusyError when another instance's refresh outlasted lockWaitMs, StoreUnavailableError when the
   * store failed, or the refresher's own (transient) error unchanged, after onRefreshFailed (set kept).
   */
  getFresh (sid: string, refresh: Refresher, opts?: GetFreshOptions): Promise<TokenSet>
  /** Stores a sealed one-time record (e.g. a login state) for ttlMs. */
  putRecord (key: string, value: unknown, ttlMs: number): Promise<void>
  /** Atomic read-and-delete: a record is returned to exactly ONE caller, even across instances. */
  takeRecord (key: string): Promise<unknown | null>
  /**
   * Writes an empty marker record for ttlMs only if none exists (Redis `SET NX`): true for exactly ONE caller, even
   * across instances (e.g. "this login state was used").
   */
  claimRecord (key: string, ttlMs: number): Promise<boolean>
  /** Deletes a record or marker (absent is fine). */
  deleteRecord (key: string): Promise<void>
  /**
   * Seals a string with the key ring (AES-256-GCM, the first key) for `context`: it opens only under the same
   * context, with any key of the ring. For values the server hands to the browser and reads back (login cookies,
   * with the cookie's name in the context); contexts never collide with the store's own.
   */
  seal (plaintext: string, context: string): string
  /** The plaintext, or null when the value does not open under `context` (tampered, another context, an unknown key). */
  unseal (sealed: string, context: string): string | null
  /** A @fastify/session store backed by the same KV store (pass it as @fastify/session's `store`). */
  readonly sessionStore: SessionStoreLike
  /**
   * Adds a check that sessions read from the cookie (the `sessionCookie` option, routes outside @fastify/session's
   * scope) must pass: it may end a session or update its data. oauth-routes adds its idle and absolute timeouts.
   */
  addSessionCheck (check: SessionCheck): void
  /** Ends a session: deletes its record and its token set (what @fastify/session's `destroy` does through the store). */
  endSession (sid: string): Promise<void>
  readonly refreshSkewMs: number
}

/** A stored set together with the exact sealed value it came from (for compare-and-set). */
export interface StoredTokenSet {
  set: TokenSet
  sealed: string
}

export interface TokenStoreCoreOptions {
  kv: KVStore
  options: ResolvedTokenStoreOptions
  log: FastifyBaseLogger
}

/**
 * Implementation of TokenStore.
 *
 * Single flight, in three layers:
 * 1. In-process: `#flights` maps a sid to the promise of its running refresh; concurrent callers join it.
 * 2. Across instances: the flight takes the lock `{sid}:lock` (SET NX PX, random owner). A caller that finds it
 *    taken waits for its release (pub/sub, bounded polling, the lease), at most `lockWaitMs` (then RefreshBusyError).
 * 3. Under the lock the set is READ AGAIN: if another instance refreshed meanwhile (fresh now, or, with force, a
 *    different access token than the stale one), that set is used and the refresher is not called.
 * The refresher is called once per flight; the merged set is written with compare-and-set against the exact sealed
 * value read under the lock, before anyone gets it, then the lock is released (owner-checked) and announced.
 *
 * Lease: the lock's lease is renewed every third of `lockLeaseMs` while the refresher runs. If it is lost anyway
 * (the process stalled longer than the lease, or Redis lost the key), another instance may refresh too; the
 * compare-and-set still prevents overwriting a newer set with an older one, and a set deleted by a logout during
 * the refresh is never written back (the refreshed set is then dropped and the caller gets UnauthenticatedError).
 */
export class TokenStoreCore implements TokenStore {
  readonly refreshSkewMs: number
  readonly sessionStore: SessionStoreLike
  readonly keys: KeyLayout
  readonly #kv: KVStore
  readonly #options: ResolvedTokenStoreOptions
  readonly #hooks: Readonly<TokenStoreHooks>
  readonly #log: FastifyBaseLogger
  readonly #records: Records
  readonly #flights = new Map<string, Promise<TokenSet>>()
  readonly #sessionChecks: SessionCheck[] = []
  /** Sessions read from the signed cookie (`sessionCookie` option), else undefined. */
  readonly cookieSessions: CookieSessions | undefined
  /**
   * Recently opened sets by sid, with the sealed value they came from. The same sid and the same sealed
   * value always open to the same set (the storage key is bound in as AAD, checked when it was first
   * opened), so a hit skips AES-GCM and validation. Oldest first; bounded by `openedCacheSize`.
   */
  readonly #opened = new Map<string, { sealed: string, set: TokenSet }>()

  constructor ({ kv, options, log }: TokenStoreCoreOptions) {
    this.#kv = kv
    this.#options = options
    this.#hooks = options.hooks
    this.#log = log
    this.refreshSkewMs = options.refreshSkewMs
    this.keys = new KeyLayout(options.keyPrefix)
    this.#records = new Records(kv, options.keyRing, this.keys, log)
    this.sessionStore = createSessionStore({
      kv,
      keys: this.keys,
      sessionTtlMs: options.sessionTtlMs,
      log,
      owner: this,
      end: (sid) => this.endSession(sid)
    })
    const cookie = options.sessionCookie
    this.cookieSessions = cookie === undefined
      ? undefined
      : new CookieSessions({
        cookieName: cookie.name,
        secrets: cookie.secrets,
        kv,
        keys: this.keys,
        sessionTtlMs: options.sessionTtlMs,
        log,
        end: (sid) => this.endSession(sid),
        checks: this.#sessionChecks
      })
    serveBackend(kv, this)
  }

  addSessionCheck (check: SessionCheck): void {
    if (typeof check !== 'function') throw new TokenStoreArgumentError('check', 'must be a function')
    this.#sessionChecks.push(check)
  }

  async endSession (sid: string): Promise<void> {
    assertId(sid, 'sid')
    this.forget(sid)
    await this.#kv.delete([this.keys.session(sid), this.keys.tokens(sid)])
  }

  /** The KV store underneath (for tests and for building other stores on it). */
  get kv (): KVStore {
    return this.#kv
  }

  async get (sid: string): Promise<TokenSet | null> {
    return (await this.read(sid))?.set ?? null
  }

  async save (sid: string, set: TokenSet): Promise<void> {
    assertId(sid, 'sid')
    const problem = tokenSetProblem(set)
    if (problem !== undefined) throw new TokenStoreArgumentError('set', problem)
    const normalized = normalizeTokenSet(set)
    const ttl = this.#ttl(normalized)
    if (ttl <= 0) {
      await this.#kv.delete(this.keys.tokens(sid))
      return
    }
    await this.#kv.set(this.keys.tokens(sid), this.#seal(sid, normalized), ttl)
  }

  async delete (sid: string): Promise<void> {
    assertId(sid, 'sid')
    this.forget(sid)
    await this.#kv.delete(this.keys.tokens(sid))
  }

  /** Drops the opened copy of a session's set from this process's memory (logout, revocation). */
  forget (sid: string): void {
    this.#opened.delete(sid)
  }

  async getFresh (sid: string, refresh: Refresher, opts?: GetFreshOptions): Promise<TokenSet> {
    return await this.getFreshFrom(sid, undefined, refresh, opts)
  }

  putRecord (key: string, value: unknown, ttlMs: number): Promise<void> {
    return this.#records.put(key, value, ttlMs)
  }

  takeRecord (key: string): Promise<unknown | null> {
    return this.#records.take(key)
  }

  claimRecord (key: string, ttlMs: number): Promise<boolean> {
    return this.#records.claim(key, ttlMs)
  }

  deleteRecord (key: string): Promise<void> {
    return this.#records.delete(key)
  }

  seal (plaintext: string, context: string): string {
    return this.#options.keyRing.seal(plaintext, valueContext(context))
  }

  unseal (sealed: string, context: string): string | null {
    try {
      return this.#options.keyRing.unseal(sealed, valueContext(context))
    } catch {
      return null
    }
  }

  /** Reads and opens the stored set. */
  async read (sid: string): Promise<StoredTokenSet | null> {
    assertId(sid, 'sid')
    const sealed = await this.#kv.get(this.keys.tokens(sid))
    return await this.open(sid, sealed)
  }

  /**
   * Opens a sealed set read for `sid` (from the store, or prefetched by the session store). A value that does not
   * open or is not a token set is treated as absent: deleted, and logged at warn without the value.
   */
  async open (sid: string, sealed: string | null): Promise<StoredTokenSet | null> {
    if (sealed === null) return null
    const hit = this.#opened.get(sid)
    if (hit !== undefined && hit.sealed === sealed) return { set: hit.set, sealed }
    let set: unknown
    try {
      set = JSON.parse(this.#options.keyRing.unseal(sealed, tokenContext(sid)))
      if (!isTokenSet(set)) throw new UnsealFailedError('the opened value is not a token set')
    } catch (err) {
      this.#log.warn({ err }, 'token-store: discarded a stored token set that could not be opened')
      try {
        await this.#kv.delete(this.keys.tokens(sid))
      } catch (deleteErr) {
        this.#log.warn({ err: deleteErr }, 'token-store: could not delete an unreadable token set')
      }
      return null
    }
    this.#remember(sid, sealed, set)
    return { set, sealed }
  }

  #remember (sid: string, sealed: string, set: TokenSet): void {
    const max = this.#options.openedCacheSize
    if (max === 0) return
    // Shared by every request that reads this value: nobody may change it.
    Object.freeze(set.scope)
    Object.freeze(set)
    this.#opened.delete(sid)
    this.#opened.set(sid, { sealed, set })
    if (this.#opened.size > max) {
      const oldest = this.#opened.keys().next()
      if (oldest.done !== true) this.#opened.delete(oldest.value)
    }
  }

  /**
   * getFresh, starting from a set already read (`current`: prefetched by the session store; undefined: read it).
   */
  async getFreshFrom (sid: string, current: StoredTokenSet | null | undefined, refresh: Refresher, opts: GetFreshOptions = {}): Promise<TokenSet> {
    assertId(sid, 'sid')
    if (typeof refresh !== 'function') throw new TokenStoreArgumentError('refresh', 'must be a function')
    const stored = current === undefined ? await this.read(sid) : current
    if (stored === null) throw new UnauthenticatedError()
    const force = opts.force === true
    const stale = force ? (opts.staleAccessToken ?? stored.set.accessToken) : undefined
    if (this.#usable(stored.set, force, stale)) return stored.set
    if (!hasRefreshToken(stored.set)) return this.#withoutRefreshToken(stored.set, force)

    const running = this.#flights.get(sid)
    if (running !== undefined) {
      const result = await running
      if (!force || result.accessToken !== stale) return result
      // A forced caller joined a flight that kept the very token that got the 401: one flight of its own
      // (or the one another forced caller started meanwhile). Bounded: no loop.
      const next = this.#flights.get(sid)
      if (next !== undefined && next !== running) return await next
    }
    const flight = traceRefresh(this, force, refresh, (traced) => this.#fly(sid, traced, force, stale))
    this.#flights.set(sid, flight)
    try {
      return await flight
    } finally {
      if (this.#flights.get(sid) === flight) this.#flights.delete(sid)
    }
  }

  async #fly (sid: string, refresh: Refresher, force: boolean, stale: string | undefined): Promise<TokenSet> {
    const lockKey = this.keys.lock(sid)
    const owner = randomUUID()
    await timeLockWait(this, () => this.#acquire(lockKey, owner))
    try {
      // Re-read under the lock: another instance may have refreshed while we waited.
      const stored = await this.read(sid)
      if (stored === null) throw new UnauthenticatedError()
      if (this.#usable(stored.set, force, stale)) return stored.set
      const refreshToken = stored.set.refreshToken
      if (refreshToken === undefined || refreshToken === '') return this.#withoutRefreshToken(stored.set, force)

      const fresh = await this.#refresh(sid, refresh, refreshToken, lockKey, owner)
      const merged = normalizeTokenSet({ ...fresh, refreshToken: hasRefreshToken(fresh) ? fresh.refreshToken : refreshToken })
      const outcome = await this.#kv.compareAndSet(this.keys.tokens(sid), stored.sealed, this.#seal(sid, merged), this.#ttl(merged))
      if (outcome === 'missing') {
        // Logged out while the refresh ran: the refresh must not resurrect the set.
        throw new UnauthenticatedError()
      }
      if (outcome === 'changed') {
        // Someone wrote a newer set meanwhile (our lease ran out, or a new login): theirs wins.
        const now = await this.read(sid)
        if (now === null) throw new UnauthenticatedError()
        return now.set
      }
      await this.#hook('onRefresh', { sid, set: merged })
      return merged
    } finally {
      await this.#release(lockKey, owner)
    }
  }

  /** Calls the refresher once, renewing the lock's lease while it runs. Maps its errors. */
  async #refresh (sid: string, refresh: Refresher, refreshToken: string, lockKey: string, owner: string): Promise<TokenSet> {
    const lease = this.#options.lockLeaseMs
    const renewal = setInterval(() => {
      this.#kv.extendLock(lockKey, owner, lease).then(held => {
        if (!held) this.#log.warn('token-store: the refresh lock was lost while refreshing (lease expired)')
      }, (err: unknown) => {
        this.#log.warn({ err }, 'token-store: could not renew the refresh lock')
      })
    }, Math.max(1, Math.floor(lease / 3)))
    renewal.unref()
    let fresh: unknown
    try {
      fresh = await refresh(refreshToken)
    } catch (err) {
      if (err instanceof RefreshRejectedError) {
        this.forget(sid)
        try {
          await this.#kv.delete(this.keys.tokens(sid))
        } catch (deleteErr) {
          this.#log.warn({ err: deleteErr }, 'token-store: could not delete a revoked token set')
        }
        await this.#hook('onRevoked', { sid, error: err })
        throw new ReauthRequiredError({ cause: err })
      }
      await this.#hook('onRefreshFailed', { sid, error: err })
      throw err
    } finally {
      clearInterval(renewal)
    }
    const problem = tokenSetProblem(fresh)
    if (problem !== undefined) {
      const error = new TokenStoreArgumentError('refresher result', problem)
      await this.#hook('onRefreshFailed', { sid, error })
      throw error
    }
    return fresh as TokenSet
  }

  async #acquire (lockKey: string, owner: string): Promise<void> {
    const deadline = Date.now() + this.#options.lockWaitMs
    let pause = 50
    for (;;) {
      if (await this.#kv.lock(lockKey, owner, this.#options.lockLeaseMs)) return
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new RefreshBusyError()
      // Woken by the release (pub/sub or in-process), by the lease's end, or by this poll interval.
      await this.#kv.waitForUnlock(lockKey, Math.min(remaining, pause))
      pause = Math.min(pause * 2, 1000)
    }
  }

  async #release (lockKey: string, owner: string): Promise<void> {
    try {
      await this.#kv.unlock(lockKey, owner)
    } catch (err) {
      this.#log.warn({ err }, 'token-store: could not release the refresh lock; it expires with its lease')
    }
  }

  /** Hooks are awaited; what they throw is logged and never breaks the request. */
  async #hook<K extends keyof TokenStoreHooks> (name: K, event: Parameters<NonNullable<TokenStoreHooks[K]>>[0]): Promise<void> {
    const hook = this.#hooks[name] as ((e: typeof event) => unknown) | undefined
    if (hook === undefined) return
    try {
      await hook(event)
    } catch (err) {
      this.#log.error({ err, hook: name }, 'token-store: a hook threw')
    }
  }

  #usable (set: TokenSet, force: boolean, stale: string | undefined): boolean {
    return set.expiresAt - Date.now() > this.refreshSkewMs && (!force || set.accessToken !== stale)
  }

  /** A set without a refresh token cannot be refreshed: usable until it expires, never after a forced refresh. */
  #withoutRefreshToken (set: TokenSet, force: boolean): TokenSet {
    if (force || set.expiresAt <= Date.now()) throw new UnauthenticatedError()
    return set
  }

  #ttl (set: TokenSet): number {
    return hasRefreshToken(set) ? this.#options.refreshTokenTtlMs : Math.floor(set.expiresAt - Date.now())
  }

  #seal (sid: string, set: TokenSet): string {
    return this.#options.keyRing.seal(JSON.stringify(set), tokenContext(sid))
  }
}

function hasRefreshToken (set: TokenSet): boolean {
  return typeof set.refreshToken === 'string' && set.refreshToken !== ''
}

/** Additional data of a sealed token set: it only opens under its own session's key. */
function tokenContext (sid: string): string {
  return 'tok:' + sid
}

/** Values sealed for the outside (`seal`): a namespace of their own, apart from `tok:` and `rec:`. */
function valueContext (context: string): string {
  return 'val:' + context
}
