import { createHash, randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { KVStore } from './kv-store.js'
import type { ResolvedTokenStoreOptions, TokenStoreHooks } from './options.js'
import type { GetFreshOptions, Refresher, TokenSet } from './token-set.js'
import type { SessionStoreLike } from './session-store.js'
import { isTokenSet, lateRefreshOf, normalizeTokenSet, refreshWindowMs, retryAfterOf, tokenSetProblem } from './token-set.js'
import { KeyLayout, assertId, isId } from './keys.js'
import { Records } from './records.js'
import { createSessionStore } from './session-store.js'
import { CookieSessions, type SessionCheck } from './cookie-sessions.js'
import { UserSessions, type LastSeenReader, type SessionOwner, type UserSession, type UserSessionInfo } from './user-sessions.js'
import { serveBackend, timeLockWait, traceRefresh } from './diagnostics.js'
import {
  ReauthRequiredError,
  RefreshBackoffError,
  RefreshBusyError,
  RefreshRejectedError,
  StoreUnavailableError,
  TokenStoreArgumentError,
  UnauthenticatedError,
  UnsealFailedError,
  unknownKeyIdOf,
  errorInfo
} from './errors.js'
import { UnknownKeyLog } from './unknown-keys.js'

/** The token store (`fastify.tokenStore`). Session ids (`sid`) are the @fastify/session ids. */
export interface TokenStore {
  /**
   * The stored set, or null (absent, expired, or unreadable). An unreadable one is deleted and logged at warn, except
   * one sealed with a key that is not in the key ring: that one is kept (a configuration problem; adding the key
   * back to `encryptionKeys` opens it again) and logged at error, once a minute per key id.
   */
  get (sid: string): Promise<TokenSet | null>
  /**
   * Stores the set, sealed. TTL: `refreshTokenTtlMs` if the set has a refresh token, else until `expiresAt`
   * (a set without refresh token that has already expired is not stored: any stored one is deleted).
   */
  save (sid: string, set: TokenSet): Promise<void>
  delete (sid: string): Promise<void>
  /**
   * A usable token set: the stored set while more than its refresh window remains (`min(refreshSkewMs, half its
   * life)`, and !force); otherwise refreshes ONCE per session however many callers ask at the same time (single
   * flight, in-process and across instances sharing Redis), saves the rotated set before resolving (or, when the
   * store fails at that moment, keeps it in this process until it is saved: see TokenStoreCore), and gives every
   * waiter the new set. When a refresh cannot be made and the access token has not expired yet (and !force), the
   * current set is returned instead of the error. Such a caller (access token not expired, !force) does not wait for
   * a refresh this process is already making: it gets the current set at once; nor, while its access token has
   * longer than `lockWaitMs` to live, for another instance's: one attempt at the lock, and the current set if taken.
   * Throws UnauthenticatedError if there is no set (or it has no refresh token and is expired, or is forced),
   * ReauthRequiredError when the refresher threw RefreshRejectedError (the set has then been deleted, onRevoked
   * called; unless another set was stored meanwhile: that one is returned), RefreshBusyError when another
   * instance's refresh outlasted lockWaitMs, StoreUnavailableError when the store failed, the refresher's own
   * (transient) error unchanged, after onRefreshFailed (set kept), and then RefreshBackoffError until the session's
   * backoff is over.
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
   * The `sessionCookie` option's cookie name, or undefined without it: @fastify/session's `cookieName` must be the
   * same (oauth-routes checks it at the first sign-in).
   */
  readonly sessionCookieName: string | undefined
  /**
   * Whether a session cookie's value is signed with one of the `sessionCookie` option's secrets; undefined without
   * the option. For a check of the app's own: a cookie @fastify/session refused (another instance signs with another
   * secret) is otherwise only "no session".
   */
  sessionCookieVerifies (cookieValue: string): boolean | undefined
  /**
   * Adds a check that sessions read from the cookie (the `sessionCookie` option, routes outside @fastify/session's
   * scope) must pass: it may end a session or update its data. oauth-routes adds its idle and absolute timeouts.
   */
  addSessionCheck (check: SessionCheck): void
  /**
   * Ends a session: deletes its record and its token set (what @fastify/session's `destroy` does through the
   * store), and its entry in its user's index.
   */
  endSession (sid: string): Promise<void>
  /**
   * Indexes a session under its user (at sign-in, once per session) so that listUserSessions shows it and
   * endUserSession(s) can end it, from any instance. Returns the session's handle. `ttlMs`: the longest the
   * session can live (oauth-routes passes its absolute timeout). Beyond `maxSessionsPerUser` the oldest end.
   */
  addUserSession (userId: string, sid: string, info: UserSessionInfo): Promise<string>
  /** The user and handle of an indexed session, or null. */
  sessionOwner (sid: string): Promise<SessionOwner | null>
  /**
   * The user's live sessions on every instance, newest first. Never a session id: `id` is an opaque handle.
   * Sessions that ended without endSession (expired, timed out by a session check) are ended and dropped here.
   */
  listUserSessions (userId: string): Promise<UserSession[]>
  /** Ends the user's session with handle `id`, as a logout does; false (nothing ends) when the user has none such. */
  endUserSession (userId: string, id: string): Promise<boolean>
  /**
   * Ends every session of the user; answers how many. Rejects with StoreUnavailableError, after ending the others, when
   * some are indexed with an encryption key this instance does not have (they live on).
   */
  endUserSessions (userId: string): Promise<number>
  /** How listings read from a session record when it was last active (oauth-routes sets it); else its start. */
  setLastSeenReader (reader: LastSeenReader): void
  readonly refreshSkewMs: number
  /** How long a session record lives after its last write when its cookie has no expiry (the `sessionTtlMs` option). */
  readonly sessionTtlMs: number
}

/** A stored set together with the exact sealed value it came from (for compare-and-set). */
export interface StoredTokenSet {
  set: TokenSet
  sealed: string
  /**
   * When a forced refresh (after a provider 401) stored it (epoch ms, the store's clock: `#sharedNow`); undefined for a
   * set saved otherwise (a sign-in, a refresh that was due) or stored before this was recorded. Kept in the sealed
   * value beside the set, never on the set itself.
   */
  forcedAt?: number | undefined
  /**
   * Set while a refresh flight has presented (or is about to present) this set's refresh token to the provider and
   * has not stored the outcome yet: when (epoch ms, the store's clock: `#sharedNow`) and which process. See `#fence`.
   */
  presented?: Presented | undefined
}

/** Who presented a stored set's refresh token, and when (the sealed value's side field `refreshPresented`). */
export interface Presented {
  at: number
  by: string
}

export interface TokenStoreCoreOptions {
  kv: KVStore
  options: ResolvedTokenStoreOptions
  log: FastifyBaseLogger
}

/**
 * Implementation of TokenStore.
 *
 * When: a set is refreshed once less than `min(refreshSkewMs, half its life)` remains, so a token that lives 30 s
 * is refreshed about every 15 s, not on every request, and a 2-hour one `refreshSkewMs` before it expires.
 *
 * Single flight, in three layers:
 * 1. In-process: `#flights` maps a sid to the promise of its running refresh; concurrent callers join it, except
 *    callers whose access token has not expired (not forced): they go on with it at once.
 * 2. Across instances: the flight takes the lock `{sid}:lock` (SET NX PX, random owner). A caller that finds it
 *    taken waits for its release (pub/sub, bounded polling, the lease), at most `lockWaitMs` (then RefreshBusyError);
 *    not at all when it is not forced and its access token has longer than `lockWaitMs` to live (RefreshBusyError
 *    at once, answered with that still-valid set).
 * 3. Under the lock the set is READ AGAIN: if another instance refreshed meanwhile (fresh now, or, with force, a
 *    different access token than the stale one), that set is used and the refresher is not called.
 * The refresher is called once per flight; the merged set is written with compare-and-set against the exact sealed
 * value read under the lock, before anyone gets it, then the lock is released (owner-checked) and announced. The
 * lock, the read under it and the compare-and-set are direct store commands, never answered by a client-side cache.
 *
 * Lease: from the moment it is taken until it is released, the lock's lease is renewed every third of
 * `lockLeaseMs` (HeldLock); a renewal that finds the key gone (the lease ran out while Redis or this process
 * stalled) takes it again unless another owner has it. Another owner may have it by then: when Redis was down or
 * stalled for everyone, the first instance to reach it again. So before calling the refresher the flight marks the
 * stored set as presented (`#fence`, a compare-and-set): the mark lives as long as the set, and another instance
 * that finds it does not present the token for `refreshFenceMs`. Past that, a second refresh may happen; the
 * compare-and-set still prevents overwriting a newer set with an older one, and a set deleted by a logout during
 * the refresh is never written back (the refreshed set is then dropped and the caller gets UnauthenticatedError).
 * The second refresh sent the refresh token the first one rotated away, so the provider refuses it: a refusal that
 * finds a newer set stored returns that set, and only ever deletes the value read under the lock (`#refused`).
 * A lock SET that fails or whose answer is lost is followed by an owner-checked unlock, and one that finds its own
 * owner's lock (resent by the client after a reconnect) holds it (`#tryLock`): no lock is left for a whole lease.
 *
 * A rotated set is never lost to a store failure: once the provider has answered, the old refresh token is dead,
 * so the new set is the only way this session stays signed in. If its compare-and-set fails (Redis down, stalled,
 * restarting, a command timeout), the set is kept in `#pending`: this process answers the session's requests from
 * it, and a background loop retries the same compare-and-set with backoff while HeldLock keeps the lock, which keeps
 * other instances waiting instead of refreshing with the dead refresh token. The lock is released only after the
 * save. A retry that finds the new value already stored (an earlier attempt was applied but its reply was lost)
 * counts as saved; one that finds the set deleted (a logout) drops it quietly, since the logout must win. It goes on
 * after another owner took the lock (the mark kept that owner from presenting the token). Only when the process
 * closes, or the store refuses the write, is a pending set dropped, with one error log line that
 * names the session by `sessionTag` (never the id itself, which is a credential, nor a token).
 *
 * Backoff: a transient refresh failure puts the session in `#backoff` for `refreshBackoffMs` (or the provider's
 * Retry-After when it asks for longer, bounded by `refreshBackoffMaxMs`): meanwhile the refresher is not called for
 * it, callers get RefreshBackoffError (or the current set while its access token is still valid), and the set is
 * kept. The map answers this process's requests without a store command; the key `{sid}:backoff`, written while
 * the lock is still held and read under the lock (its TTL: no instance reads another one's clock), keeps the other
 * instances from trying at once too. Without it, every request of a session would call a failing token endpoint
 * again, on every instance.
 *
 * A refresh may outlive its callers: the refresher's deadline is for the requests waiting on it, but a provider call
 * that was sent may have rotated the refresh token already, and its answer is then the only copy of the new one. A
 * refresher that answers its callers before its call is over rejects with an error carrying `lateRefresh` (the
 * promise of the call's own outcome): the flight ends with that error for the callers, while `#outlive` keeps the
 * lock (still renewed), refuses other refreshes of the session in this process (`#late`), and handles the outcome as
 * the flight would have: a set stored with compare-and-set against the value read under the lock, a refusal, or a
 * failure and its backoff. Waiters' deadline: the refresher's; the refresh's life: until `lateRefresh` settles.
 *
 * Diagnostics (diagnostics.ts): the flight is one span of `aihubmix:refresh`, wrapped where it starts, and its wait
 * for the lock one `aihubmix:refresh-lock-wait` message, timed around `#acquire`; the refresher the flight calls is
 * watched for its outcome. Nobody listening, both wrappers call straight through.
 */
export class TokenStoreCore implements TokenStore {
  readonly refreshSkewMs: number
  readonly sessionTtlMs: number
  readonly sessionStore: SessionStoreLike
  readonly keys: KeyLayout
  readonly #kv: KVStore
  readonly #options: ResolvedTokenStoreOptions
  readonly #hooks: Readonly<TokenStoreHooks>
  readonly #log: FastifyBaseLogger
  readonly #records: Records
  /** Values sealed with a key missing from the ring: logged (rate-limited), never deleted. */
  readonly #unknownKeys: UnknownKeyLog
  readonly #flights = new Map<string, Promise<TokenSet>>()
  /** Refreshed sets not stored yet, by sid: served to this session's requests here until saved or dropped. */
  readonly #pending = new Map<string, PendingSave>()
  /** The retry loops of pending sets (close() waits for them). */
  readonly #saving = new Set<Promise<void>>()
  /**
   * The sessions whose kept set a retry loop is still storing, also once `forget` stopped serving it (a logout whose
   * own delete then failed): the refresh token that set replaces has been presented, so no flight of this process
   * presents it again meanwhile (`#fly`), whatever this process's own mark in the store says.
   */
  readonly #retrying = new Set<string>()
  /**
   * Sessions whose last refresh failed transiently: until when (`performance.now()`, a monotonic clock: a wall clock
   * stepped back must not stretch a backoff) the refresher is not called again, and why.
   */
  readonly #backoff = new Map<string, { until: number, error: unknown }>()
  /**
   * Sessions whose refresh outlived its callers (the refresher's `lateRefresh`): no other refresh of them starts
   * until it settles, and their requests are answered as during a backoff (the error the callers got as cause).
   */
  readonly #late = new Map<string, { error: unknown }>()
  /** Wakes the retry loops' pauses (close). */
  readonly #wakers = new Set<() => void>()
  /** The running flights' presented marks, stamped at once when the store is back (#keepMark). */
  readonly #stampers = new Set<() => void>()
  /** When the store was last reachable again after it was not (performance.now()): see #settleLeft. */
  #reconnectedAt = -Infinity
  #closed = false
  /** close() has been called: it waits for the running refreshes, and no new one starts. */
  #draining = false
  /** When close() began (performance.now()): kept sets are tried again for lockLeaseMs after it. */
  #closedAt = 0
  /** Settles at close: a late refresh answer is not waited for past it. */
  readonly #closing: Promise<typeof CLOSED>
  #markClosed: () => void = () => {}
  readonly #sessionChecks: SessionCheck[] = []
  readonly #users: UserSessions
  /** Sessions read from the signed cookie (`sessionCookie` option), else undefined. */
  readonly cookieSessions: CookieSessions | undefined

  get sessionCookieName (): string | undefined {
    return this.cookieSessions?.cookieName
  }

  sessionCookieVerifies (cookieValue: string): boolean | undefined {
    return this.cookieSessions?.verifies(cookieValue)
  }

  /**
   * Recently opened sets by sid, with the sealed value they came from. The same sid and the same sealed
   * value always open to the same set (the storage key is bound in as AAD, checked when it was first
   * opened), so a hit skips AES-GCM and validation. Oldest first; bounded by `openedCacheSize`.
   */
  readonly #opened = new Map<string, StoredTokenSet>()
  /** This process, as a fence names it (`#fence`): a fence of its own with no flight running here is stale. */
  readonly #instance = randomUUID()

  constructor ({ kv, options, log }: TokenStoreCoreOptions) {
    this.#closing = new Promise(resolve => { this.#markClosed = () => { resolve(CLOSED) } })
    this.#kv = kv
    this.#options = options
    this.#hooks = options.hooks
    this.#log = log
    for (const line of options.warnings ?? []) log.warn(line)
    // A set kept while the store was away is tried again as soon as it is back, not at the end of its retry pause
    // (up to SAVE_RETRY_MAX_MS): until it is stored, the only guard against another instance presenting the refresh
    // token it replaced is the presented mark, whose life runs on.
    // The same for the presented marks of the flights at the provider: a store that came back without its last writes
    // (restarted from an older snapshot, failed over to a replica behind) lost the mark, and the lock with it.
    kv.onAvailable?.((reconnected) => {
      if (reconnected) this.#reconnectedAt = performance.now()
      for (const wake of this.#wakers) wake()
      for (const stamp of this.#stampers) stamp()
    })
    this.refreshSkewMs = options.refreshSkewMs
    this.sessionTtlMs = options.sessionTtlMs
    this.keys = new KeyLayout(options.keyPrefix)
    this.#unknownKeys = new UnknownKeyLog(log, options.keyRing)
    this.#records = new Records(kv, options.keyRing, this.keys, log, this.#unknownKeys)
    this.sessionStore = createSessionStore({
      kv,
      keys: this.keys,
      sessionTtlMs: options.sessionTtlMs,
      log,
      owner: this,
      end: (sid) => this.endSession(sid)
    })
    this.#users = new UserSessions({
      kv,
      keys: this.keys,
      keyRing: options.keyRing,
      log,
      unknownKeys: this.#unknownKeys,
      maxPerUser: options.maxSessionsPerUser,
      checks: this.#sessionChecks,
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
    // The session's keys first, its link after: a delete that fails leaves the session signed in, and its link must
    // stay for the user's index to reach it (sign out everywhere, a listing). A link left after the delete names a
    // session that is gone, which a listing drops.
    await this.#kv.delete([this.keys.session(sid), this.keys.tokens(sid)])
    const link = await this.#kv.take(this.keys.userLink(sid))
    if (link !== null) await this.#users.unlink(link)
  }

  addUserSession (userId: string, sid: string, info: UserSessionInfo): Promise<string> {
    return this.#users.add(userId, sid, info)
  }

  sessionOwner (sid: string): Promise<SessionOwner | null> {
    return this.#users.ownerOf(sid)
  }

  listUserSessions (userId: string): Promise<UserSession[]> {
    return this.#users.list(userId)
  }

  endUserSession (userId: string, id: string): Promise<boolean> {
    return this.#users.endOne(userId, id)
  }

  endUserSessions (userId: string): Promise<number> {
    return this.#users.endAll(userId)
  }

  setLastSeenReader (reader: LastSeenReader): void {
    this.#users.setLastSeenReader(reader)
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
    // A set saved here replaces one still waiting to be stored (whose compare-and-set will then find it changed).
    this.#pending.delete(sid)
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

  /**
   * Drops the opened copy of a session's set from this process's memory (logout, revocation), and stops serving a
   * set waiting to be stored (its retries go on: they cannot bring back a set the logout deleted).
   */
  forget (sid: string): void {
    this.#opened.delete(sid)
    this.#pending.delete(sid)
  }

  /**
   * Lets the refreshes still running end first (for up to lockLeaseMs): a caller whose token was still valid may have
   * gone on without waiting for the one it started, and its outcome, a rotated refresh token, must be stored before
   * the store underneath closes. Then stops the retries of sets waiting to be stored, after trying each again every
   * CLOSE_RETRY_MS for up to lockLeaseMs (dropped ones are logged).
   */
  async close (): Promise<void> {
    // No refresh starts from now on (one started during the wait would outlive it, and its rotated set be dropped):
    // a caller whose token is still valid goes on with it, one that needs a new set is told the refresh is busy.
    this.#draining = true
    const flights = [...this.#flights.values()]
    if (flights.length > 0) {
      let timer: NodeJS.Timeout | undefined
      const settled = Promise.allSettled(flights)
      await Promise.race([settled, new Promise((resolve) => { timer = setTimeout(resolve, this.#options.lockLeaseMs) })])
      clearTimeout(timer)
    }
    this.#closed = true
    this.#closedAt = performance.now()
    this.#markClosed()
    for (const wake of this.#wakers) wake()
    await Promise.all([...this.#saving])
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
    } catch (err) {
      const keyId = unknownKeyIdOf(err)
      if (keyId !== undefined) this.#unknownKeys.report(keyId, 'e.g. a login cookie', true)
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
   * open or is not a token set is treated as absent: deleted, and logged at warn without the value. Except one
   * sealed with a key that is not in the ring: absent for this call only, left in the store untouched (the ring is
   * what is wrong, and the set opens again once the key is back), logged at error once a minute per key id.
   */
  async open (sid: string, sealed: string | null): Promise<StoredTokenSet | null> {
    const now = this.openNow(sid, sealed)
    if (now !== undefined) return now
    let opened: ReturnType<typeof splitSealed>
    try {
      opened = splitSealed(JSON.parse(this.#options.keyRing.unseal(sealed as string, tokenContext(sid))))
      if (!isTokenSet(opened.set)) throw new UnsealFailedError('the opened value is not a token set')
    } catch (err) {
      const keyId = unknownKeyIdOf(err)
      if (keyId !== undefined) {
        this.#unknownKeys.report(keyId, 'a token set')
        return null
      }
      this.#log.warn({ err }, 'token-store: discarded a stored token set that could not be opened')
      try {
        await this.#kv.delete(this.keys.tokens(sid))
      } catch (deleteErr) {
        this.#log.warn({ err: deleteErr }, 'token-store: could not delete an unreadable token set')
      }
      return null
    }
    return this.#remember(sid, { set: opened.set as TokenSet, sealed: sealed as string, forcedAt: opened.forcedAt, presented: opened.presented })
  }

  /**
   * `open` without a promise, for a value that opens: the opened set (from the opened-set cache, or unsealed and
   * checked now), null for no value. undefined for a value that does not open: `open` discards it.
   */
  openNow (sid: string, sealed: string | null): StoredTokenSet | null | undefined {
    if (sealed === null) return null
    const hit = this.#opened.get(sid)
    if (hit !== undefined && hit.sealed === sealed) return hit
    let opened: ReturnType<typeof splitSealed>
    try {
      opened = splitSealed(JSON.parse(this.#options.keyRing.unseal(sealed, tokenContext(sid))))
    } catch {
      return undefined
    }
    if (!isTokenSet(opened.set)) return undefined
    return this.#remember(sid, { set: opened.set, sealed, forcedAt: opened.forcedAt, presented: opened.presented })
  }

  /** Keeps an opened value in the opened-set cache (when it has room) and returns it. */
  #remember (sid: string, stored: StoredTokenSet): StoredTokenSet {
    const max = this.#options.openedCacheSize
    if (max === 0) return stored
    // Shared by every request that reads this value: nobody may change it.
    Object.freeze(stored.set.scope)
    Object.freeze(stored.set)
    Object.freeze(stored)
    this.#opened.delete(sid)
    this.#opened.set(sid, stored)
    if (this.#opened.size > max) {
      const oldest = this.#opened.keys().next()
      if (oldest.done !== true) this.#opened.delete(oldest.value)
    }
    return stored
  }

  /**
   * getFreshFrom without a promise in the steady state: the set itself when `current` is usable as it is (not due
   * for refresh, no refreshed set of this session waiting to be stored, not forced), else getFreshFrom's promise.
   * Errors are always the promise's rejections.
   */
  getFreshNow (sid: string, current: StoredTokenSet, refresh: Refresher): TokenSet | Promise<TokenSet> {
    if (isId(sid) && typeof refresh === 'function' && !this.#pending.has(sid) &&
      this.#usable(current.set, false, undefined)) return current.set
    return this.getFreshFrom(sid, current, refresh)
  }

  /**
   * getFresh, starting from a set already read (`current`: prefetched by the session store; undefined: read it).
   */
  async getFreshFrom (sid: string, current: StoredTokenSet | null | undefined, refresh: Refresher, opts: GetFreshOptions = {}): Promise<TokenSet> {
    assertId(sid, 'sid')
    if (typeof refresh !== 'function') throw new TokenStoreArgumentError('refresh', 'must be a function')
    const force = opts.force === true
    const pending = this.#pending.get(sid)
    const worked = force && opts.staleAccepted === true
    if (pending !== undefined) return this.#fromPending(pending, force, opts.staleAccessToken, worked)
    const stored = current === undefined ? await this.read(sid) : current
    if (stored === null) throw new UnauthenticatedError()
    const stale = force ? (opts.staleAccessToken ?? stored.set.accessToken) : undefined
    if (this.#usable(stored.set, force, stale) || this.#refusedJustNow(stored, force, stale, worked)) return stored.set
    if (!hasRefreshToken(stored.set)) return this.#withoutRefreshToken(stored.set, force)
    try {
      return await this.#refreshOnce(sid, refresh, force, stale, worked, stored.set)
    } catch (err) {
      // The refresh was due but could not be made (provider down, backoff, store or lock trouble): an access token
      // that has not expired still works, so a request that was not refused by the provider goes on with it.
      if (!force && isTransient(err) && stored.set.expiresAt > Date.now()) return stored.set
      throw err
    }
  }

  /**
   * Joins this session's flight in this process, or starts one (unless the session is backing off). `current`: the
   * set the caller read. A caller that is not forced and whose access token has longer than VALID_TOKEN_MARGIN_MS to
   * live does not wait for a flight running here: it goes on with its set (the refresh may hang at the provider for
   * its whole deadline); and a flight it starts while that token has more than `lockWaitMs` to live tries the lock
   * once instead of waiting for another instance's refresh; while it has less, it waits until that margin before the
   * token's end. Then RefreshBusyError, which getFreshFrom answers with the still-valid set. The caller that starts a
   * flight waits for it until that margin before its token ends, then goes on with its set while the flight runs on.
   * A caller that needs the new set (expired, a 401) waits `lockWaitMs` in all, across the flights of this process
   * it joins.
   */
  async #refreshOnce (sid: string, refresh: Refresher, force: boolean, stale: string | undefined, worked: boolean, current: TokenSet): Promise<TokenSet> {
    // A refresh of this session still runs after its callers were answered: not a second one meanwhile.
    const late = this.#late.get(sid)
    if (late !== undefined) throw new RefreshBackoffError(this.#options.refreshBackoffMs, { cause: late.error })
    const backoff = this.#backoff.get(sid)
    if (backoff !== undefined) {
      const left = backoff.until - performance.now()
      if (left > 0) throw new RefreshBackoffError(left, { cause: backoff.error })
      this.#backoff.delete(sid)
    }
    let running = this.#flights.get(sid)
    // Valid for longer than the margin: goes on with its set (a token with less to live waits for the new one).
    if (running !== undefined && !force && current.expiresAt - Date.now() > VALID_TOKEN_MARGIN_MS) return current
    // A caller that waits (its token expired, or a 401) waits at most lockWaitMs in all, however many flights of this
    // process it joins: one started for a caller whose token was still valid may end busy, and another may follow it.
    const lockWaitMs = this.#options.lockWaitMs
    const joined = Date.now()
    while (running !== undefined) {
      let result: TokenSet | undefined
      try {
        result = await running
      } catch (err) {
        // The flight waited for the lock for as long as ITS caller could (a caller whose token was still valid, or one
        // that came earlier) and found another instance's refresh: this caller waits on for what is left of its own
        // lockWaitMs, in the flight another caller of this process started meanwhile (one flight per process), or
        // else in one of its own.
        if (!(err instanceof RefreshBusyError) || Date.now() - joined >= lockWaitMs) throw err
      }
      if (result !== undefined) {
        if (!force || result.accessToken !== stale) return result
        // A forced caller joined a flight that kept the very token that got the 401: one flight of its own
        // (or the one another forced caller started meanwhile). Bounded: no loop.
        const next = this.#flights.get(sid)
        if (next !== undefined && next !== running) return await next
        break
      }
      const next = this.#flights.get(sid)
      running = next === running ? undefined : next
    }
    const left = current.expiresAt - Date.now()
    if (this.#draining) {
      if (!force && left > VALID_TOKEN_MARGIN_MS) return current
      throw new RefreshBusyError()
    }
    // A caller that needs the new set (expired, a 401) waits for another instance's lock with what is left of its
    // lockWaitMs; one whose token is still valid waits until shortly before that token ends, or not at all.
    const waitMs = force || left <= VALID_TOKEN_MARGIN_MS
      ? Math.max(0, lockWaitMs - (Date.now() - joined))
      : left > lockWaitMs ? 0 : left - VALID_TOKEN_MARGIN_MS
    const flight = traceRefresh(this, force, refresh, (traced) => this.#fly(sid, traced, force, stale, worked, waitMs))
    this.#flights.set(sid, flight)
    const landed = (): void => { if (this.#flights.get(sid) === flight) this.#flights.delete(sid) }
    flight.then(landed, landed)
    // The caller that started the flight waits for it only while its own token lives: a refresh slower than that (a
    // token endpoint that hangs for its whole timeoutMs, a window shorter than timeoutMs) must not outlive the token
    // the request could have used. Then it goes on with its set, as the callers that came later do; the flight runs
    // on, one flight per process, and its outcome is stored for the next request.
    const validFor = force ? 0 : current.expiresAt - Date.now() - VALID_TOKEN_MARGIN_MS
    if (validFor <= 0) return await flight
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([flight, new Promise<TokenSet>((resolve) => { timer = setTimeout(resolve, validFor, current) })])
    } finally {
      clearTimeout(timer)
    }
  }

  async #fly (sid: string, refresh: Refresher, force: boolean, stale: string | undefined, worked: boolean, lockWaitMs: number): Promise<TokenSet> {
    const lock = await timeLockWait(this, () => this.#acquire(this.keys.lock(sid), lockWaitMs))
    let handedOver = false
    let mark: PresentedMark | undefined
    try {
      // Re-read under the lock: another instance may have refreshed while we waited, or failed and backed off.
      // The backoff's remaining time is the key's TTL, measured by the store: never another instance's clock.
      let [stored, backoffLeft] = await Promise.all([this.read(sid), this.#kv.remainingTtl(this.keys.backoff(sid))])
      // The store has just come back from a disconnect: it may have come back without its last writes, another
      // instance's presented mark (and the lock) among them, which that instance writes again as soon as ITS client
      // is ready. Until then this set looks unmarked (a command sent before the crash and replayed by the client on
      // reconnection takes the lock at once). So a flight started in that time waits, and reads again under the lock.
      const settle = this.#settleLeft()
      if (settle > 0 && stored !== null && !this.#usable(stored.set, force, stale)) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([new Promise((resolve) => { timer = setTimeout(resolve, settle) }), this.#closing])
        clearTimeout(timer)
        // Closing cut the wait short: the other instance's mark may still be missing, so nothing is presented.
        if (this.#closed) throw new RefreshBusyError()
        ;[stored, backoffLeft] = await Promise.all([this.read(sid), this.#kv.remainingTtl(this.keys.backoff(sid))])
      }
      if (stored === null) throw new UnauthenticatedError()
      if (this.#usable(stored.set, force, stale) || this.#refusedJustNow(stored, force, stale, worked)) return stored.set
      const refreshToken = stored.set.refreshToken
      if (refreshToken === undefined || refreshToken === '') return this.#withoutRefreshToken(stored.set, force)
      const left = Math.min(backoffLeft ?? 0, this.#options.refreshBackoffMaxMs)
      if (left > 0) {
        this.#backoff.set(sid, { until: performance.now() + left, error: undefined })
        throw new RefreshBackoffError(left)
      }
      // Another instance has presented this refresh token and not stored the outcome: its lease ran out (Redis was
      // down or stalled for everyone), not its refresh. Presenting the token again would be a reuse. The same when
      // this process still retries storing a set it kept for the session (no longer served after a logout whose
      // own delete failed).
      if (this.#retrying.has(sid) || this.#fencedByOther(stored)) throw new RefreshBusyError()
      const fenced = await this.#fence(sid, stored)
      if (typeof fenced !== 'string') {
        // Another set was stored between the read under the lock and the mark (this flight's lease ran out meanwhile,
        // and another instance refreshed; or a new sign-in): it is the session's set now. Served while usable; else
        // not ours to refresh this time.
        if (this.#usable(fenced.set, force, stale)) return fenced.set
        throw new RefreshBusyError()
      }
      mark = this.#keepMark(sid, stored, fenced)

      let fresh: TokenSet
      try {
        fresh = await this.#refresh(sid, refresh, refreshToken)
      } catch (err) {
        const late = lateRefreshOf(err)
        if (late !== undefined) {
          // The callers' deadline passed, the provider call goes on: the callers get the error now, the lock, the
          // mark and the rest of the refresh go to #outlive.
          handedOver = true
          this.#outlive(sid, late, mark, stored, lock, err, force)
          throw err
        }
        const expected = await mark.stop()
        if (!(err instanceof RefreshRejectedError)) {
          await this.#unfence(sid, expected, stored)
          throw err
        }
        return await this.#refused(sid, expected, refreshToken, err)
      }
      const result = await this.#storeRefreshed(sid, fresh, await mark.stop(), stored, lock, force)
      handedOver = result.how === 'kept'
      return result.set
    } finally {
      if (!handedOver) {
        mark?.halt()
        await lock.release()
      }
    }
  }

  /**
   * Stores a refresher's set (merged: the old refresh token kept when none came back, and the old set's `notAfter`,
   * the end of its session, whatever the refresher's set says) with compare-and-set against
   * `expected`, the value read under the lock. `saved` (onRefresh called), `kept` (the store failed: the set waits
   * in #pending, and the lock went with it), or `newer` (someone stored another set meanwhile: theirs wins, and is
   * the answer). Throws UnauthenticatedError when the set was deleted meanwhile (a logout must not be undone).
   */
  async #storeRefreshed (sid: string, fresh: TokenSet, expected: string, read: StoredTokenSet, lock: HeldLock, forced: boolean): Promise<{ set: TokenSet, how: 'saved' | 'kept' | 'newer' }> {
    const previous = read.set
    const { notAfter: _theirs, ...refreshed } = fresh
    // A set with (almost) no life left (a provider's expires_in of 0 or below) would be due at once: every request
    // would refresh it, and rotate the refresh token each time. It counts as living MIN_REFRESHED_LIFE_MS from now.
    const now = Date.now()
    const life = refreshed.expiresAt - now < MIN_REFRESHED_LIFE_MS ? { expiresAt: now + MIN_REFRESHED_LIFE_MS, obtainedAt: now } : {}
    const merged = normalizeTokenSet({
      ...refreshed,
      ...life,
      refreshToken: hasRefreshToken(fresh) ? fresh.refreshToken : previous.refreshToken,
      ...(previous.notAfter === undefined ? {} : { notAfter: previous.notAfter })
    })
    // Only a forced refresh (after a provider 401) is timed: its set is the one a second 401 must not refresh again.
    const forcedAt = forced ? this.#sharedNow() : undefined
    const save: PendingSave = { sid, set: merged, sealed: this.#seal(sid, merged, forcedAt), expected, unmarked: read.sealed, presentedToken: previous.refreshToken, lock, forcedAt }
    let outcome: SaveOutcome
    try {
      outcome = await this.#trySave(save)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      // The provider has rotated the refresh token: the only copy of the new one is here. Keep it, and the lock.
      this.#keep(save, err)
      return { set: merged, how: 'kept' }
    }
    if (outcome === 'saved') {
      // The set handed out is the one later reads of this value get (the opened-set cache): a caller may know it by
      // that object (aihubmix-proxy's record of the sets the provider accepted).
      this.#remember(sid, { set: merged, sealed: save.sealed, forcedAt })
      await this.#hook('onRefresh', { sid, set: merged })
      return { set: merged, how: 'saved' }
    }
    // Logged out while the refresh ran: the refresh must not resurrect the set.
    if (outcome === 'missing') throw new UnauthenticatedError()
    // Someone wrote a newer set meanwhile (our lease ran out, or a new login): theirs wins.
    return { set: outcome.set, how: 'newer' }
  }

  /**
   * The rest of a refresh whose refresher answered the callers before the provider call was over (its error's
   * `lateRefresh`): the waiters' deadline is the refresher's, the refresh's own life is this. Meanwhile this process
   * starts no refresh of the session (#late: its requests get RefreshBackoffError, or the current set while its
   * access token is valid), and the lock stays held and renewed, so no other instance starts one either: the refresh
   * token read under the lock may be rotated already, and presenting it again would revoke the grant. The outcome is
   * handled as a flight's: a set is stored with compare-and-set against `expected` (one info line, no token), a
   * refusal is `#refused`'s, a failure starts the backoff. At close it is not waited for: the lock is let go.
   */
  #outlive (sid: string, late: Promise<unknown>, mark: PresentedMark, stored: StoredTokenSet, lock: HeldLock, error: unknown, forced: boolean): void {
    const previous = stored.set
    const refreshToken = previous.refreshToken ?? ''
    const entry = { error }
    this.#late.set(sid, entry)
    const session = sessionTag(sid)
    const task = (async () => {
      let handedOver = false
      try {
        let fresh: unknown
        let expected: string
        try {
          fresh = await Promise.race([late, this.#closing])
        } catch (err) {
          expected = await mark.stop()
          if (err instanceof RefreshRejectedError) {
            await this.#refused(sid, expected, refreshToken, err).catch((refusal: unknown) => {
              if (!(refusal instanceof ReauthRequiredError)) throw refusal
            })
          } else {
            await this.#unfence(sid, expected, stored)
            await this.#failed(sid, err)
          }
          return
        }
        expected = await mark.stop()
        if (fresh === CLOSED) {
          this.#log.warn({ session }, 'token-store: closed while a refresh answer that came late was still awaited; it will not be stored')
          return
        }
        const problem = tokenSetProblem(fresh)
        if (problem !== undefined) {
          await this.#unfence(sid, expected, stored)
          await this.#failed(sid, new TokenStoreArgumentError('refresher result', problem))
          return
        }
        const result = await this.#storeRefreshed(sid, fresh as TokenSet, expected, stored, lock, forced)
        handedOver = result.how === 'kept'
        if (result.how === 'saved') this.#log.info({ session }, 'token-store: stored a refreshed token set whose answer came after its requests had been answered')
      } catch (err) {
        // The session ended meanwhile (UnauthenticatedError), or the store failed at the refusal.
        if (!(err instanceof UnauthenticatedError)) this.#log.warn({ session, err }, 'token-store: could not complete a refresh whose answer came late')
      } finally {
        mark.halt()
        if (this.#late.get(sid) === entry) this.#late.delete(sid)
        if (!handedOver) await lock.release()
      }
    })()
    this.#saving.add(task)
    task.finally(() => this.#saving.delete(task)).catch(() => {})
  }

  /**
   * One compare-and-set of a refreshed set against the value read under the lock. 'saved' also when the store
   * already holds exactly the new sealed value (an earlier attempt was applied, its reply lost: sealing is
   * randomised, so nobody else can have written the same value); 'missing' when the set is gone (a logout);
   * otherwise the set someone else stored meanwhile. Two stored values are not newer, and are replaced: this
   * process's mark on the refresh token it presented (a stamp whose reply was lost), and the very value read under the
   * lock before the mark (`unmarked`, byte for byte: sealing is randomised, so only a store that came back without its
   * last writes, from an older snapshot or a replica behind, gives it back). Kept, that set's refresh token, which the
   * provider has rotated away, would be presented again, and a provider with reuse detection revokes the grant (the
   * user is signed out everywhere). Any other value, even with the same refresh token (a provider that does not
   * rotate, an app's own save), is someone else's newer set. A value still replaceable after MAX_SAVE_ATTEMPTS is a
   * StoreUnavailableError: the set is kept and its save retried (#keep), never dropped.
   */
  async #trySave (save: PendingSave): Promise<SaveOutcome> {
    const key = this.keys.tokens(save.sid)
    let expected = save.expected
    // Bounded: the value replaced may change under it a few times (a mark stamped anew: this process's, #keepMark).
    for (let attempt = 0; ; attempt++) {
      // At least 1 ms: a refreshed set whose session ends now is stored and gone at once, never refused by the store.
      const outcome = await this.#kv.compareAndSet(key, expected, save.sealed, Math.max(1, this.#ttl(save.set)))
      if (outcome !== 'changed') return outcome === 'ok' ? 'saved' : 'missing'
      const now = await this.#kv.get(key)
      if (now === save.sealed) return 'saved'
      const stored = await this.open(save.sid, now)
      if (stored === null) return 'missing'
      const replaced = now === save.unmarked || (stored.presented?.by === this.#instance && stored.set.refreshToken === save.presentedToken)
      if (!replaced) return stored
      // Still this process's own mark after the last attempt (its late stamps keep landing): not a newer set, and not
      // to be taken for one, which would drop the rotated refresh token. Kept and retried as when the store fails.
      if (attempt >= MAX_SAVE_ATTEMPTS - 1) throw new StoreUnavailableError({ cause: new Error('the value to replace kept changing under the save') })
      expected = stored.sealed
    }
  }

  /** Keeps a refreshed set that could not be stored: served from here, retried in the background. */
  #keep (save: PendingSave, err: unknown): void {
    this.#pending.set(save.sid, save)
    this.#retrying.add(save.sid)
    this.#log.warn({ session: sessionTag(save.sid), err }, 'token-store: a refreshed token set could not be stored yet; this process keeps it, holds the refresh lock and retries')
    const saving = this.#retrySave(save)
    this.#saving.add(saving)
    saving.finally(() => this.#saving.delete(saving)).catch(() => {})
  }

  /**
   * Retries a pending set's compare-and-set until it is stored, the session ended, or another set was stored. Also
   * after another instance took the lock (its lease ran out while the store was away): the compare-and-set against
   * the marked value read under the lock (`#fence`) is what keeps a newer set from being overwritten, and the mark
   * kept that instance from presenting the refresh token this set replaces.
   */
  async #retrySave (save: PendingSave): Promise<void> {
    const session = sessionTag(save.sid)
    let pause = SAVE_RETRY_FIRST_MS
    let dropped: string | undefined
    try {
      for (;;) {
        await this.#pause(pause)
        pause = Math.min(pause * 2, SAVE_RETRY_MAX_MS)
        let outcome: SaveOutcome
        try {
          outcome = await this.#trySave(save)
        } catch (err) {
          // Closing: tried again for one lease after close() began (Redis restarting during a deploy's shutdown
          // comes back within it), since the set holds the only copy of a rotated refresh token; then dropped.
          if (!(err instanceof StoreUnavailableError)) dropped = 'the store refused it'
          else if (this.#closed && performance.now() - this.#closedAt >= this.#options.lockLeaseMs) {
            dropped = 'the process is closing and the store did not take it within lockLeaseMs'
          }
          if (dropped !== undefined) break
          continue
        }
        if (outcome === 'saved') {
          this.#log.info({ session }, 'token-store: stored a refreshed token set this process had kept')
          await this.#hook('onRefresh', { sid: save.sid, set: save.set })
        } else if (outcome === 'missing') {
          this.#log.info({ session }, 'token-store: a kept token set was not stored: the session ended meanwhile')
        } else {
          this.#log.warn({ session }, 'token-store: a kept token set was not stored: another one was stored for the session meanwhile')
        }
        return
      }
      this.#log.error({ session, reason: dropped }, `token-store: dropped a refreshed token set that could not be stored (${dropped}); this session will have to sign in again`)
    } finally {
      if (this.#pending.get(save.sid) === save) this.#pending.delete(save.sid)
      this.#retrying.delete(save.sid)
      await save.lock.release()
    }
  }

  /**
   * Resolves after `ms`, or at once when the store closes; while it closes, after CLOSE_RETRY_MS at most (a timer that
   * keeps the process alive: close() waits for these retries).
   */
  #pause (ms: number): Promise<void> {
    if (this.#closed) return new Promise(resolve => { setTimeout(resolve, Math.min(ms, CLOSE_RETRY_MS)) })
    return new Promise(resolve => {
      const wake = (): void => {
        clearTimeout(timer)
        this.#wakers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      timer.unref()
      this.#wakers.add(wake)
    })
  }

  /** A set kept in this process, not stored yet: it is the newest there is, so it is served while usable. */
  #fromPending (pending: PendingSave, force: boolean, staleAccessToken: string | undefined, worked: boolean): TokenSet {
    const set = pending.set
    const stale = force ? (staleAccessToken ?? set.accessToken) : undefined
    if (this.#usable(set, force, stale) || this.#refusedJustNow(pending, force, stale, worked)) return set
    if (!force && set.expiresAt > Date.now()) return set
    // Refreshing again needs the store to have taken this set first.
    throw new StoreUnavailableError({ cause: new Error('a refreshed token set is still waiting to be stored') })
  }

  /**
   * Calls the refresher once (the lock is held and renewed meanwhile). A refusal (RefreshRejectedError) is thrown
   * as it is, for `#refused`; backs off after a transient error.
   */
  async #refresh (sid: string, refresh: Refresher, refreshToken: string): Promise<TokenSet> {
    let fresh: unknown
    try {
      fresh = await refresh(refreshToken)
    } catch (err) {
      // A refusal is #refused's; a refresh that goes on after its callers' deadline is #outlive's.
      if (err instanceof RefreshRejectedError || lateRefreshOf(err) !== undefined) throw err
      await this.#failed(sid, err)
      throw err
    }
    const problem = tokenSetProblem(fresh)
    if (problem !== undefined) {
      const error = new TokenStoreArgumentError('refresher result', problem)
      await this.#failed(sid, error)
      throw error
    }
    return fresh as TokenSet
  }

  /** A transient refresh failure: the session backs off, and onRefreshFailed is called. */
  async #failed (sid: string, error: unknown): Promise<void> {
    await this.#backOff(sid, error)
    await this.#hook('onRefreshFailed', { sid, error })
  }

  /**
   * The provider refused `refreshToken`, read under the lock as part of the sealed value `expected`. The refusal is
   * only about that refresh token: when the store holds another set by now (this flight's lease ran out while it was
   * at the provider, and another instance refreshed and stored the rotated set, which made this token stale), that
   * set is the session's and is returned; nothing is deleted, no hook runs, no other session ends. Only when the
   * store still holds `expected` is the set deleted, with a compare-and-delete (a newer set stored in between is
   * never deleted), and the session revoked: onRevoked, `endUserSessionsOnRevoked`, ReauthRequiredError. When the
   * store fails meanwhile, nothing can tell whether a newer set is there: StoreUnavailableError, the set kept (a
   * refusal for good is met again by the next flight).
   */
  async #refused (sid: string, expected: string, refreshToken: string, err: unknown): Promise<TokenSet> {
    const key = this.keys.tokens(sid)
    let sealed = expected
    // Bounded: a stored set that carries the refused token too (saved again with it) is tried once more at most.
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.#kv.compareAndDelete(key, sealed) !== 'changed') break
      const now = await this.read(sid)
      if (now === null) break
      if (now.set.refreshToken !== refreshToken) {
        this.#log.info({ session: sessionTag(sid) }, 'token-store: the provider refused a refresh token that is no longer the stored one (rotated by another instance, or a new sign-in); using the set stored meanwhile')
        return now.set
      }
      sealed = now.sealed
    }
    // Said once per session: an operator saw users signed out by the provider (a grant revoked, a refresh token reused)
    // only in a metric, at any log level.
    const cause = typeof err === 'object' && err !== null && 'cause' in err && err.cause !== undefined ? err.cause : err
    this.#log.info({ session: sessionTag(sid), error: errorInfo(cause) }, 'token-store: the provider refused the session\'s refresh ' +
      'token for good (its grant revoked or expired, or the token presented twice): its token set is deleted, and its requests ' +
      'answer 401 reauth_required until the user signs in again')
    this.forget(sid)
    await this.#hook('onRevoked', { sid, error: err })
    if (this.#options.endUserSessionsOnRevoked) await this.#users.endAllOf(sid)
    throw new ReauthRequiredError({ cause: err })
  }

  /**
   * Starts the session's backoff after a transient refresh failure: in this process, and (best effort, while the
   * lock is still held) in the store, where the next flight of any instance finds it under the lock. It lasts
   * `refreshBackoffMs`, or longer when the error's `retryAfterMs` (the provider's Retry-After) asks for more, up to
   * `refreshBackoffMaxMs`: a Retry-After of 0 or a date in the past never shortens it, or every request would call
   * the token endpoint again.
   */
  async #backOff (sid: string, error: unknown): Promise<void> {
    const asked = retryAfterOf(error)
    const { refreshBackoffMs, refreshBackoffMaxMs } = this.#options
    const ms = Math.ceil(Math.max(refreshBackoffMs, asked === undefined ? 0 : Math.min(asked, refreshBackoffMaxMs)))
    if (ms <= 0) return
    const now = performance.now()
    // Oldest first: expired entries of sessions that never came back are swept from the front.
    for (const [key, entry] of this.#backoff) {
      if (entry.until > now && this.#backoff.size < MAX_BACKOFF_ENTRIES) break
      this.#backoff.delete(key)
    }
    this.#backoff.delete(sid)
    this.#backoff.set(sid, { until: now + ms, error })
    try {
      // The value (until when, by this machine's clock) is informative only: readers go by the key's TTL (#fly).
      await this.#kv.set(this.keys.backoff(sid), String(Date.now() + ms), ms)
    } catch (err) {
      this.#log.debug({ err }, 'token-store: could not share a refresh backoff with other instances')
    }
  }

  /**
   * Takes the session's refresh lock, waiting for another holder's release for at most `waitMs` (the option
   * `lockWaitMs`, or less for a caller whose token is still valid; 0: one attempt). Then RefreshBusyError.
   */
  async #acquire (lockKey: string, waitMs: number): Promise<HeldLock> {
    const owner = randomUUID()
    const deadline = Date.now() + waitMs
    let pause = 50
    for (;;) {
      if (await this.#tryLock(lockKey, owner)) {
        return new HeldLock(this.#kv, lockKey, owner, this.#options.lockLeaseMs, this.#log)
      }
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new RefreshBusyError()
      // Woken by the release (pub/sub or in-process), by the lease's end, or by this poll interval.
      await this.#kv.waitForUnlock(lockKey, Math.min(remaining, pause))
      pause = Math.min(pause * 2, 1000)
    }
  }

  /**
   * One attempt at the lock under `owner` (random, this flight's own). Its SET may have been applied although no
   * answer came back (a reply lost, a command timeout): then nobody would renew or release that lock, and every
   * instance would wait out its whole lease. So a failed attempt sends an owner-checked unlock right behind it (on
   * the same connection, so after it; not awaited: the caller gets the store's error at once), and an attempt that
   * finds the lock taken checks whether the owner is this flight (a client that resent an unanswered SET after
   * reconnecting finds its own key): then the lock is this flight's.
   */
  async #tryLock (lockKey: string, owner: string): Promise<boolean> {
    try {
      if (await this.#kv.lock(lockKey, owner, this.#options.lockLeaseMs)) return true
      return await this.#kv.get(lockKey) === owner
    } catch (err) {
      this.#kv.unlock(lockKey, owner).catch((unlockErr: unknown) => {
        this.#log.debug({ err: unlockErr }, 'token-store: could not release a refresh lock whose taking failed; it expires with its lease')
      })
      throw err
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
    return set.expiresAt - Date.now() > refreshWindowMs(set, this.refreshSkewMs) && (!force || set.accessToken !== stale)
  }

  /**
   * A forced refresh (after a provider 401) that is not made: the refused access token is the one a FORCED refresh
   * stored less than `forcedRefreshIntervalMs` ago, and the set is not due anyway. The forced refresh did not mend
   * it: the provider refuses tokens it has just issued (a resource server behind its token service, a provider bug),
   * and another refresh would only rotate the refresh token once more, on every request. A token refused after a
   * refresh that was due (the provider dropped its access tokens: a restart, a key rotation) is refreshed at once,
   * as before. The set is returned as it is; a caller can tell (its access token is
   * the stale one). Across instances too, since the time is stored with the set, by the store's clock (`#sharedNow`):
   * every instance reads the age on the clock that wrote it, counted either way. A refused token the provider had
   * accepted before (`worked`: the caller says so) was dropped anew, not refused as just issued: it waits only
   * FORCED_WORKED_MIN_MS, which bounds a provider that accepts each token once and then refuses it.
   */
  #refusedJustNow (stored: { set: TokenSet, forcedAt?: number | undefined }, force: boolean, stale: string | undefined, worked: boolean): boolean {
    const { set, forcedAt } = stored
    if (!force || forcedAt === undefined || set.accessToken !== stale) return false
    const interval = worked ? Math.min(FORCED_WORKED_MIN_MS, this.#options.forcedRefreshIntervalMs) : this.#options.forcedRefreshIntervalMs
    return Math.abs(this.#sharedNow() - forcedAt) < interval && this.#usable(set, false, undefined)
  }

  /**
   * Marks the stored set, under the lock, as "its refresh token is being presented" before the refresher is called,
   * with compare-and-set against the value read under the lock; returns the marked value, which the flight's save,
   * refusal or failure then replaces; or, when another set was stored since that read, the set stored now (nothing
   * marked). The lock alone cannot keep a refresh token from being presented twice: its
   * lease runs out when Redis is down, restarting or stalled for longer than `lockLeaseMs`, though the flight that
   * holds it may already have the provider's answer (kept in #pending until Redis is back) or be waiting for it.
   * Whoever takes the lock then finds the mark in the set itself, whose TTL does not run out with the lease, and
   * does not present the token (`#fencedByOther`) for `refreshFenceMs` after it was set. Its cost: one
   * compare-and-set per refresh; with `refreshFenceMs` 0, none.
   */
  async #fence (sid: string, stored: StoredTokenSet): Promise<string | StoredTokenSet> {
    if (this.#options.refreshFenceMs === 0) return stored.sealed
    const fenced = this.#seal(sid, stored.set, stored.forcedAt, { at: this.#sharedNow(), by: this.#instance })
    const outcome = await this.#kv.compareAndSet(this.keys.tokens(sid), stored.sealed, fenced, Math.max(1, this.#ttl(stored.set)))
    if (outcome === 'missing') throw new UnauthenticatedError()
    if (outcome !== 'changed') return fenced
    // Another set was stored since the read under the lock: the flight answers with it (or not at all), not with a mark.
    const newer = await this.read(sid)
    if (newer === null) throw new UnauthenticatedError()
    return newer
  }

  /**
   * Keeps this flight's presented mark (`fenced`, just written by #fence) younger than `refreshFenceMs` for as long as
   * the refresh goes on: every third of it, the mark is stamped anew (compare-and-set against the current mark). A
   * refresh may outlive the fence (a slow provider; a refresh answered late, read for aihubmix-proxy's
   * `refreshGraceMs`, 60 s, after its 10 s deadline): with the mark stamped once, an instance that took the lock after
   * a Redis stall longer than its lease found the mark over, and presented the refresh token again while this flight
   * was still at the provider with it. A refresh over within a third of the fence stamps nothing more. A stamp that
   * finds another value (a newer set, the set deleted) stops: the flight's own save, refusal or failure sees it. A
   * stamp whose reply is lost may have been applied: the next stamp, #trySave and #refused recognise this process's
   * mark on the same refresh token and go on from it. A stamp that finds the very value it marked (byte for byte: the
   * store came back without its last writes, restarted from an older snapshot or failed over to a replica behind)
   * marks it again, and a stamp is made as soon as the store is available again (`onAvailable`), so that another
   * instance, whose lock the store lost too, does not present the token while this flight is at the provider with it.
   * Any other value, even with the same refresh token (another instance's set, an app's own save), ends it.
   * `stop()` resolves with the mark now stored, for the compare-and-set that replaces it.
   */
  #keepMark (sid: string, stored: StoredTokenSet, fenced: string): PresentedMark {
    let current = fenced
    if (fenced === stored.sealed) return { stop: async () => current, halt: () => {} }
    const key = this.keys.tokens(sid)
    let stamping: Promise<void> | undefined
    let stopped = false
    const halt = (): void => {
      stopped = true
      clearInterval(timer)
      this.#stampers.delete(stamp)
    }
    const stamp = (): void => {
      if (stopped || stamping !== undefined) return
      const next = this.#seal(sid, stored.set, stored.forcedAt, { at: this.#sharedNow(), by: this.#instance })
      const ttl = Math.max(1, this.#ttl(stored.set))
      stamping = (async () => {
        const outcome = await this.#kv.compareAndSet(key, current, next, ttl)
        if (outcome === 'ok') {
          current = next
          return
        }
        const now = outcome === 'changed' ? await this.#kv.get(key) : null
        // The value it marked, as it was: the store lost the mark (and the lock) with its last writes; marked again.
        if (now === stored.sealed) {
          if (await this.#kv.compareAndSet(key, now, next, ttl) === 'ok') current = next
          else halt()
          return
        }
        // An earlier stamp whose reply was lost (a command timeout during a stall) may have been applied: this
        // process's mark on the same refresh token is still this flight's, and stamped on. Anything else ends it.
        const found = now === null ? null : await this.open(sid, now)
        if (found !== null && now !== null && found.presented?.by === this.#instance && found.set.refreshToken === stored.set.refreshToken) current = now
        else halt()
      })().catch((err: unknown) => {
        this.#log.debug({ err }, 'token-store: could not stamp a refresh\'s presented mark anew; tried again at the next tick')
      }).finally(() => { stamping = undefined })
    }
    const timer = setInterval(stamp, Math.min(MAX_TIMER_MS, Math.max(MIN_STAMP_INTERVAL_MS, Math.floor(this.#options.refreshFenceMs / 3))))
    timer.unref()
    this.#stampers.add(stamp)
    return {
      halt,
      async stop () {
        halt()
        await stamping
        return current
      }
    }
  }

  /**
   * Takes the mark off again after a refresh that failed (nothing to store): the value read under the lock goes
   * back, unless the set changed meanwhile. Best effort: a mark left behind only delays the next refresh of the
   * session on other instances by up to `refreshFenceMs` (this process ignores its own).
   */
  async #unfence (sid: string, fenced: string, stored: StoredTokenSet): Promise<void> {
    if (fenced === stored.sealed) return
    try {
      await this.#kv.compareAndSet(this.keys.tokens(sid), fenced, stored.sealed, Math.max(1, this.#ttl(stored.set)))
    } catch (err) {
      this.#log.debug({ err }, 'token-store: could not take the presented mark off a token set after a failed refresh')
    }
  }

  /**
   * Another process presented this set's refresh token less than `refreshFenceMs` ago and has not stored the
   * outcome. By the store's clock (`#sharedNow`), which wrote the mark's time too, counted either way. A mark of this
   * process's own is stale: its flights, kept sets (`#retrying`) and late refreshes are known here.
   */
  #fencedByOther (stored: StoredTokenSet): boolean {
    const presented = stored.presented
    if (presented === undefined || presented.by === this.#instance) return false
    return Math.abs(this.#sharedNow() - presented.at) < this.#options.refreshFenceMs
  }

  /**
   * The clock for times another instance compares (a presented mark's, a forced refresh's): the store's (Redis's,
   * measured with TIME), else this machine's. With each machine's own, an instance whose clock ran ahead of the
   * marking one by more than `refreshFenceMs`, less the mark's age, found the mark over and presented the refresh
   * token again (the provider then revoked the grant). Token expiry stays on this machine's clock: aihubmix-proxy
   * sets `expiresAt` by it.
   */
  #sharedNow (): number {
    return this.#kv.now?.() ?? Date.now()
  }

  /**
   * How long a flight still waits before it presents a refresh token, after the store came back from a disconnect
   * (#fly): RECONNECT_SETTLE_MS from then, for other instances' clients to come back and write their presented
   * marks again; at most a third of the lease this flight holds. None without marks (`refreshFenceMs` 0).
   */
  #settleLeft (): number {
    if (this.#options.refreshFenceMs === 0) return 0
    const settle = Math.min(RECONNECT_SETTLE_MS, Math.floor(this.#options.lockLeaseMs / 3))
    return Math.max(0, Math.ceil(this.#reconnectedAt + settle - performance.now()))
  }

  /** A set without a refresh token cannot be refreshed: usable until it expires, never after a forced refresh. */
  #withoutRefreshToken (set: TokenSet, force: boolean): TokenSet {
    if (force || set.expiresAt <= Date.now()) throw new UnauthenticatedError()
    return set
  }

  /** How long a set is kept: its refresh token's TTL, or its access token's life without one; never past `notAfter`. */
  #ttl (set: TokenSet): number {
    const ttl = hasRefreshToken(set) ? this.#options.refreshTokenTtlMs : Math.floor(set.expiresAt - Date.now())
    return set.notAfter === undefined ? ttl : Math.min(ttl, Math.floor(set.notAfter - Date.now()))
  }

  /**
   * The sealed value of a set: its JSON, with `forcedRefreshAt` beside its fields when a forced refresh stores it,
   * and `refreshPresented` while a flight presents its refresh token (`#fence`).
   */
  #seal (sid: string, set: TokenSet, forcedAt?: number, presented?: Presented): string {
    const value = forcedAt === undefined && presented === undefined
      ? set
      : { ...set, ...(forcedAt === undefined ? {} : { [FORCED_AT]: forcedAt }), ...(presented === undefined ? {} : { [PRESENTED]: presented }) }
    return this.#options.keyRing.seal(JSON.stringify(value), tokenContext(sid))
  }
}

/**
 * The least life a refreshed set counts as having (#storeRefreshed): refreshed at half of it, so at most about one
 * refresh per session every 2.5 s when the provider answers no life at all. aihubmix-proxy floors `expires_in` the same.
 */
const MIN_REFRESHED_LIFE_MS = 5000
/** The longest delay a Node.js timer takes (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1
/** The shortest interval between stamps of a presented mark (#keepMark), whatever a tiny `refreshFenceMs` asks. */
const MIN_STAMP_INTERVAL_MS = 100
/**
 * How long after the store came back from a disconnect a flight waits before presenting a refresh token (#settleLeft):
 * other instances' clients come back on their own schedules (token-store's own retries 100 ms, 200 ms, ... apart, at
 * most a second), and write their flights' marks again when they do.
 */
const RECONNECT_SETTLE_MS = 1000
/** Compare-and-sets one save makes at most when the value it replaces keeps changing under it (#trySave). */
const MAX_SAVE_ATTEMPTS = 3
/** What `#closing` settles with. */
const CLOSED = Symbol('closed')
/** First pause between retries of a pending set's save, doubled after each failure up to SAVE_RETRY_MAX_MS. */
const SAVE_RETRY_FIRST_MS = 50
const SAVE_RETRY_MAX_MS = 1000
/** How often a kept set is tried again while the store closes. */
const CLOSE_RETRY_MS = 200
/** Sessions in backoff remembered at most (each entry lives refreshBackoffMs; this only bounds a flood). */
const MAX_BACKOFF_ENTRIES = 100_000

/**
 * A caller whose access token is still valid waits for another instance's refresh lock until this long before the
 * token ends, then goes on with it (RefreshBusyError, answered with the set): a call made with it has that long.
 */
const VALID_TOKEN_MARGIN_MS = 1000
/** How long a forced set whose token the provider accepted, then refused, waits before its refresh (#refusedJustNow). */
const FORCED_WORKED_MIN_MS = 1000

/** A flight's presented mark, kept fresh while its refresh goes on (#keepMark). */
interface PresentedMark {
  /** Stops stamping; resolves with the mark now stored (after a stamp on its way settles). */
  stop (): Promise<string>
  /** Stops stamping at once (the flight is over some other way). */
  halt (): void
}

/** A refreshed set on its way to the store, with the lock that keeps other instances from refreshing meanwhile. */
interface PendingSave {
  readonly sid: string
  readonly set: TokenSet
  readonly sealed: string
  /** The sealed value read under the lock: the compare-and-set replaces only it. */
  readonly expected: string
  /** The refresh token the refresh presented (the stored set's): a mark of this process's on it is not a newer set. */
  readonly presentedToken: string | undefined
  /** The value read under the lock, before the mark: a store that lost its last writes gives exactly it back. */
  readonly unmarked: string
  readonly lock: HeldLock
  /** When a forced refresh made the set (undefined for a refresh that was due): see #refusedJustNow. */
  readonly forcedAt: number | undefined
}

type SaveOutcome = 'saved' | 'missing' | StoredTokenSet

/**
 * The refresh lock while this process holds it. Its lease is renewed every third of `leaseMs` until `release()`.
 * A renewal that finds the key gone or expired (Redis restarted, or this process or Redis stalled past the lease)
 * takes it again when nobody else has; when another owner has it, renewals stop (the presented mark, `#fence`, is
 * what keeps that owner from presenting this flight's refresh token). Renewals that fail (the store unreachable)
 * are retried at the next tick.
 */
class HeldLock {
  readonly #kv: KVStore
  readonly #key: string
  readonly #owner: string
  readonly #leaseMs: number
  readonly #log: FastifyBaseLogger
  readonly #timer: NodeJS.Timeout
  #released = false

  constructor (kv: KVStore, key: string, owner: string, leaseMs: number, log: FastifyBaseLogger) {
    this.#kv = kv
    this.#key = key
    this.#owner = owner
    this.#leaseMs = leaseMs
    this.#log = log
    this.#timer = setInterval(() => { this.#renew() }, Math.min(MAX_TIMER_MS, Math.max(1, Math.floor(leaseMs / 3))))
    this.#timer.unref()
  }

  #renew (): void {
    this.#kv.extendLock(this.#key, this.#owner, this.#leaseMs).then(async held => {
      if (held || this.#released) return
      if (await this.#kv.lock(this.#key, this.#owner, this.#leaseMs)) {
        // Released while this renewal was on its way: give it back at once.
        if (this.#released) await this.#kv.unlock(this.#key, this.#owner)
        else this.#log.warn('token-store: the refresh lock had expired while held (a stall); taken again')
        return
      }
      if (this.#released) return
      clearInterval(this.#timer)
      this.#log.warn('token-store: the refresh lock was lost to another instance while held (lease expired)')
    }).catch((err: unknown) => {
      this.#log.warn({ err }, 'token-store: could not renew the refresh lock')
    })
  }

  async release (): Promise<void> {
    if (this.#released) return
    this.#released = true
    clearInterval(this.#timer)
    try {
      await this.#kv.unlock(this.#key, this.#owner)
    } catch (err) {
      this.#log.warn({ err }, 'token-store: could not release the refresh lock; it expires with its lease')
    }
  }
}

/** Whether a failed refresh leaves the session signed in (anything but a refusal or a missing set). */
function isTransient (err: unknown): boolean {
  return !(err instanceof ReauthRequiredError) && !(err instanceof UnauthenticatedError)
}

/**
 * How log lines name a session: 12 characters of base64url(SHA-256(sid)). A session id is a bearer credential and
 * never goes to a log; ids are random, so this cannot be turned back into one, yet the same session always gets the
 * same tag.
 */
export function sessionTag (sid: string): string {
  return createHash('sha256').update(sid).digest('base64url').slice(0, 12)
}

function hasRefreshToken (set: TokenSet): boolean {
  return typeof set.refreshToken === 'string' && set.refreshToken !== ''
}

/**
 * The field of a sealed token set's JSON that says when a forced refresh stored it. Instances that predate it read it
 * as an extra field of the set (kept, unused); sets sealed before it, or by a refresh that was due, have none.
 */
const FORCED_AT = 'forcedRefreshAt'

/**
 * The field of a sealed token set's JSON that says a refresh flight presented its refresh token and has not stored
 * the outcome yet (`#fence`): `{ at, by }`. Instances that predate it read it as an extra field (kept, unused).
 */
const PRESENTED = 'refreshPresented'

/**
 * An opened value's set, with the store's own side fields taken off it: `forcedAt` (a number, else undefined) and
 * `presented` (`{ at: number, by: string }`, else undefined).
 */
function splitSealed (value: unknown): { set: unknown, forcedAt: number | undefined, presented: Presented | undefined } {
  if (typeof value !== 'object' || value === null || (!(FORCED_AT in value) && !(PRESENTED in value))) {
    return { set: value, forcedAt: undefined, presented: undefined }
  }
  const { [FORCED_AT]: forced, [PRESENTED]: fence, ...set } = value as Record<string, unknown>
  const forcedAt = typeof forced === 'number' && Number.isFinite(forced) ? forced : undefined
  return { set, forcedAt, presented: isPresented(fence) ? fence : undefined }
}

function isPresented (value: unknown): value is Presented {
  if (typeof value !== 'object' || value === null) return false
  const { at, by } = value as Record<string, unknown>
  return typeof at === 'number' && Number.isFinite(at) && typeof by === 'string'
}

/** Additional data of a sealed token set: it only opens under its own session's key. */
function tokenContext (sid: string): string {
  return 'tok:' + sid
}

/** Values sealed for the outside (`seal`): a namespace of their own, apart from `tok:` and `rec:`. */
function valueContext (context: string): string {
  return 'val:' + context
}
