import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { KeyRing } from './crypto.js'
import type { KVStore } from './kv-store.js'
import type { KeyLayout } from './keys.js'
import { assertId, assertTtl, assertUserId } from './keys.js'
import { cookieExpired, parseSession, type SessionCheck } from './cookie-sessions.js'
import { StoreUnavailableError, TokenStoreArgumentError, unknownKeyIdOf } from './errors.js'
import type { UnknownKeyLog } from './unknown-keys.js'

/** One of a user's sessions, as a listing shows it. Never the session id: `id` is an opaque handle. */
export interface UserSession {
  /** The session's handle: random, unrelated to the session id; the way to end it (`endUserSession`). */
  id: string
  /** When the session began (ms since the epoch). */
  createdAt: number
  /** When it was last seen active, as coarse as its record keeps it (`setLastSeenReader`); else `createdAt`. */
  lastSeenAt: number
  /** The browser's User-Agent at sign-in, control characters replaced, at most MAX_USER_AGENT_LENGTH long. */
  userAgent: string
}

/** Whose a session is: the user and the session's handle. */
export interface SessionOwner {
  userId: string
  id: string
}

export interface UserSessionInfo {
  /** The browser's User-Agent header (stored clipped to MAX_USER_AGENT_LENGTH). */
  userAgent?: string | undefined
  /** When the session began; default now. */
  createdAt?: number | undefined
  /**
   * The longest the session can live from now (oauth-routes passes its absolute timeout). The entry and the link
   * expire then, and a listing ends a session that is somehow still there.
   */
  ttlMs: number
}

/** Reads from a session's record when it was last active (ms), or undefined. Synchronous, must not throw. */
export type LastSeenReader = (session: Readonly<Record<string, unknown>>) => number | undefined

/** Longest User-Agent stored (longer ones are cut): an index entry stays small whatever a browser sends. */
export const MAX_USER_AGENT_LENGTH = 256
/**
 * An entry whose session record is not there yet is a sign-in in progress (indexed before its record is saved)
 * for this long; after that it points to nothing and is dropped.
 */
export const PENDING_SIGN_IN_MS = 60_000

/** What #open answers for an entry sealed with a key that is not in the ring. */
const UNKNOWN_KEY = Symbol('unknown key')

/** 16 random bytes, base64url. */
const HANDLE = /^[A-Za-z0-9_-]{22}$/

/**
 * What an index entry holds (sealed): the session id, when it began, when it was indexed (`i`: sub-millisecond, so
 * that sign-ins of one process in one millisecond still have an order; `w`: by the wall clock, as every time it is
 * compared with), when it expires, the User-Agent. Entries written before `w` existed have none.
 */
interface Entry { s: string, c: number, i: number, w?: number, e: number, a: string }

interface Listed extends UserSession {
  sid: string
  indexedAt: number
}

export interface UserSessionsContext {
  kv: KVStore
  keys: KeyLayout
  keyRing: KeyRing
  log: FastifyBaseLogger
  /** Where entries sealed with a key missing from the ring are reported (they are kept). */
  unknownKeys: UnknownKeyLog
  /** Most sessions one user keeps; a sign-in beyond it ends the oldest. */
  maxPerUser: number
  /** The checks a session must pass to be listed (the array is read each time: later additions count). */
  checks: readonly SessionCheck[]
  /** Ends a session as a logout does (TokenStoreCore.endSession). */
  end: (sid: string) => Promise<void>
}

/**
 * A user's sessions, across every instance. Per user one key `<prefix>{u:<user>}:sessions` (a Redis hash, or its
 * in-memory twin) maps a handle to a sealed entry `{sid, createdAt, expiresAt, userAgent}`; per session a link
 * `<prefix>{<sid>}:user` names its user and handle.
 *
 * - Handles are random (128 bits) and stored, not computed: nothing about a session id can be learnt from one,
 *   not even with the key ring, and they survive key rotation. A handle is only ever looked up in its own user's
 *   hash, so another user's handle finds nothing.
 * - An entry is sealed with its user and handle as associated data: it opens nowhere else, and the session id in
 *   it (a credential) is encrypted at rest like a token set.
 * - Ending is `endSession(sid)`, the very deletion a logout makes (record and token set, one command), so every
 *   instance, and the Redis client-side cache that Redis tells of the deletion, refuses the session at once.
 *   `endSession` also takes the link and removes the entry, however the session ended (logout, timeout, a revoked
 *   grant, this index).
 * - What ends without `endSession` (a record that expires in Redis) leaves an entry that points to nothing. A
 *   listing shows only sessions whose record and token set exist and pass the session checks (oauth-routes'
 *   timeouts); it ends the others and drops their entries. An entry without a record that is younger than
 *   PENDING_SIGN_IN_MS is a sign-in in progress and is left alone.
 * - Bounded: an entry lives at most its session's longest life (`ttlMs`), the hash as long as its longest entry,
 *   and a sign-in beyond `maxPerUser` sessions ends the oldest: ended rather than dropped from the index, because
 *   a session that no listing shows could not be ended from another device. Each sign-in (of a user with other
 *   entries) does what a listing does to the others, and seals entries of live sessions again with the current
 *   key: the index outlives no session, and no key past its rotation.
 * - A sign-in stores its token set first and indexes the session after (oauth-routes): ending the session from its
 *   index, whenever that happens, deletes everything stored, and only the record (saved with the callback's answer)
 *   may come after, which without its token set signs nobody in.
 */
export class UserSessions {
  readonly #kv: KVStore
  readonly #keys: KeyLayout
  readonly #ring: KeyRing
  readonly #log: FastifyBaseLogger
  readonly #unknownKeys: UnknownKeyLog
  readonly #max: number
  readonly #checks: readonly SessionCheck[]
  readonly #end: (sid: string) => Promise<void>
  #lastSeen: LastSeenReader | undefined

  constructor (ctx: UserSessionsContext) {
    this.#kv = ctx.kv
    this.#keys = ctx.keys
    this.#ring = ctx.keyRing
    this.#log = ctx.log
    this.#unknownKeys = ctx.unknownKeys
    this.#max = ctx.maxPerUser
    this.#checks = ctx.checks
    this.#end = ctx.end
  }

  setLastSeenReader (reader: LastSeenReader): void {
    if (typeof reader !== 'function') throw new TokenStoreArgumentError('reader', 'must be a function')
    this.#lastSeen = reader
  }

  async add (userId: string, sid: string, info: UserSessionInfo): Promise<string> {
    assertUserId(userId)
    assertId(sid, 'sid')
    assertTtl(info?.ttlMs, 'ttlMs')
    const now = Date.now()
    const createdAt = info.createdAt ?? now
    if (!Number.isFinite(createdAt)) throw new TokenStoreArgumentError('createdAt', 'must be a time in ms')
    const id = randomBytes(16).toString('base64url')
    const entry: Entry = { s: sid, c: createdAt, i: performance.timeOrigin + performance.now(), w: now, e: now + info.ttlMs, a: clipUserAgent(info.userAgent) }
    await this.#kv.set(this.#keys.userLink(sid), JSON.stringify({ u: userId, h: id }), info.ttlMs)
    const count = await this.#kv.hashSet(this.#keys.userSessions(userId), id, this.#seal(userId, id, entry), info.ttlMs)
    // Each sign-in keeps the index tidy: what ended without endSession is dropped, and entries sealed with an older
    // key are sealed again with the current one. A sign-in pushes the index's TTL further out, so without this an
    // entry nobody listed could outlive its session, and the key it was sealed with (then no longer in the ring,
    // as key rotation prescribes), for as long as its user kept signing in.
    // Best effort, but for the cap: a failed read of another device's session fails no sign-in, unless this one is
    // past maxPerUser (then the oldest must end, as before).
    if (count > 1) {
      let listed: Listed[]
      try {
        listed = await this.#scan(userId, true)
      } catch (err) {
        if (count > this.#max) throw err
        this.#log.warn({ err }, 'token-store: could not tidy a user\'s session index at sign-in; the next listing or sign-in does')
        return id
      }
      await this.#trim(userId, id, listed)
    }
    return id
  }

  async ownerOf (sid: string): Promise<SessionOwner | null> {
    assertId(sid, 'sid')
    return parseLink(await this.#kv.get(this.#keys.userLink(sid)))
  }

  async list (userId: string): Promise<UserSession[]> {
    assertUserId(userId)
    const listed = await this.#scan(userId, false)
    return listed.map(({ id, createdAt, lastSeenAt, userAgent }) => ({ id, createdAt, lastSeenAt, userAgent }))
  }

  async endOne (userId: string, id: string): Promise<boolean> {
    assertUserId(userId)
    if (typeof id !== 'string' || !HANDLE.test(id)) return false
    const key = this.#keys.userSessions(userId)
    const fields = await this.#kv.hashGetAll(key)
    if (!Object.hasOwn(fields, id)) return false
    const entry = this.#open(userId, id, fields[id] as string)
    // Sealed with a key this instance lacks: its session cannot be found from here, so nothing ends and the entry
    // stays (an instance with the key, or this one once the key is added, can end it).
    if (entry === UNKNOWN_KEY) return false
    if (entry !== null) await this.#end(entry.s)
    await this.#kv.hashDelete(key, [id])
    return true
  }

  async endAll (userId: string): Promise<number> {
    assertUserId(userId)
    const key = this.#keys.userSessions(userId)
    const fields = await this.#kv.hashGetAll(key)
    const ids: string[] = []
    const sids: string[] = []
    let unopened = 0
    for (const [id, sealed] of Object.entries(fields)) {
      const entry = this.#open(userId, id, sealed)
      // Sealed with a key this instance lacks: kept (see endOne), and said below.
      if (entry === UNKNOWN_KEY) {
        unopened++
        continue
      }
      ids.push(id)
      if (entry !== null) sids.push(entry.s)
    }
    await Promise.all(sids.map(sid => this.#end(sid)))
    // Only the fields read: a sign-in indexed meanwhile stays listed (and endable).
    await this.#kv.hashDelete(key, ids)
    // "Every session ended" would not be true: those sessions live on (an instance with the key ends them). A failure,
    // after ending the others, so that a sign-out everywhere (what a user does after losing a device) is not answered
    // as done while a rotation of the encryption key is half deployed (an operator review).
    if (unopened > 0) {
      throw new StoreUnavailableError({
        cause: new Error(`${unopened} of this user's ${unopened === 1 ? 'session is' : 'sessions are'} indexed with an encryption key this ` +
          'instance does not have, so not ended here (an instance with the key ends them). Fix: add that key to encryptionKeys ' +
          '(TOKEN_ENCRYPTION_KEY in the example) on every instance; the error line about the key names it')
      })
    }
    return sids.length
  }

  /** Removes the entry a link (just taken by endSession) names. Never throws: a left entry is dropped by listings. */
  async unlink (link: string): Promise<void> {
    const owner = parseLink(link)
    if (owner === null) return
    try {
      await this.#kv.hashDelete(this.#keys.userSessions(owner.userId), [owner.id])
    } catch (err) {
      this.#log.warn({ err }, 'token-store: could not remove an ended session from its user\'s index; the next listing drops it')
    }
  }

  /** Ends every session of the user whose session `sid` is (a revoked grant). Never throws. */
  async endAllOf (sid: string): Promise<void> {
    try {
      const owner = await this.ownerOf(sid)
      if (owner !== null) await this.endAll(owner.userId)
    } catch (err) {
      this.#log.warn({ err }, 'token-store: could not end the other sessions of a user whose grant was revoked')
    }
  }

  /**
   * The user's sessions, newest first; with `pending`, also sign-ins in progress. Ends and drops along the way
   * every entry that is expired, unreadable, or whose session is gone or fails a check.
   */
  async #scan (userId: string, pending: boolean): Promise<Listed[]> {
    const key = this.#keys.userSessions(userId)
    const fields = await this.#kv.hashGetAll(key)
    const now = Date.now()
    const drop: string[] = []
    const ended: string[] = []
    const candidates: Array<{ id: string, entry: Entry, sealed: string }> = []
    for (const [id, sealed] of Object.entries(fields)) {
      const entry = this.#open(userId, id, sealed)
      if (entry === UNKNOWN_KEY) {
        // Sealed with a key this instance lacks: neither listed nor dropped (an instance with the key lists it).
        continue
      } else if (entry === null) {
        drop.push(id)
      } else if (entry.e <= now) {
        drop.push(id)
        ended.push(entry.s)
      } else {
        candidates.push({ id, entry, sealed })
      }
    }
    // One entry per session: a session indexed again (its link lost, say, to a logout whose delete failed) keeps the
    // newest entry, the one its link names; the others are dropped, the session not ended.
    const newest = new Map<string, { id: string, entry: Entry }>()
    for (const candidate of candidates) {
      const seen = newest.get(candidate.entry.s)
      if (seen === undefined || candidate.entry.i > seen.entry.i) newest.set(candidate.entry.s, candidate)
    }
    const unique = candidates.filter((candidate) => {
      if (newest.get(candidate.entry.s) === candidate) return true
      drop.push(candidate.id)
      return false
    })
    // Each session's record and token set in one read (one hash slot); on a single Redis concurrent reads share one MGET.
    const reads = await Promise.all(unique.map(({ entry }) => this.#kv.getMany([this.#keys.session(entry.s), this.#keys.tokens(entry.s)])))
    const listed: Listed[] = []
    const reseal: Array<{ id: string, entry: Entry }> = []
    unique.forEach(({ id, entry, sealed: sealedEntry }, index) => {
      const [json, tokens] = reads[index] ?? []
      const state = this.#state(json ?? null, tokens ?? null, entry, now)
      if (state === 'pending') {
        if (pending) listed.push({ id, sid: entry.s, indexedAt: entry.i, createdAt: entry.c, lastSeenAt: entry.c, userAgent: entry.a })
      } else if (state === 'gone') {
        drop.push(id)
        ended.push(entry.s)
      } else {
        listed.push({ id, sid: entry.s, indexedAt: entry.i, createdAt: entry.c, lastSeenAt: state.lastSeenAt, userAgent: entry.a })
      }
      if (state !== 'gone' && !this.#ring.sealedWithPrimary(sealedEntry)) reseal.push({ id, entry })
    })
    await Promise.all(ended.map(sid => this.#end(sid)))
    await this.#kv.hashDelete(key, drop)
    // Sealed again with the current key: once the older key leaves the ring (after the longest a session lives),
    // nothing of a live session still needs it.
    await Promise.all(reseal.map(({ id, entry }) => this.#kv.hashSet(key, id, this.#seal(userId, id, entry), Math.max(1, entry.e - now))))
    return listed.sort((a, b) => b.createdAt - a.createdAt || b.indexedAt - a.indexedAt)
  }

  /** Whether an entry's session lives, as token-store's own cookie path would accept it (and when it was last seen). */
  #state (json: string | null, sealed: string | null, entry: Entry, now: number): 'pending' | 'gone' | { lastSeenAt: number } {
    // Indexed, and its record or its token set not stored yet: a sign-in in progress, for a while. The record may come
    // first: @fastify/session's regenerate() stores the new, still empty session at once, and a callback of an
    // earlier version indexes the session before it stores the token set.
    if (json === null || sealed === null) return Math.abs(now - (entry.w ?? entry.i)) < PENDING_SIGN_IN_MS ? 'pending' : 'gone'
    const session = parseSession(json)
    if (session === null || cookieExpired(session, now)) return 'gone'
    for (const check of this.#checks) {
      if (check(session, now) === 'end') return 'gone'
    }
    const seen = this.#lastSeen?.(session)
    return { lastSeenAt: typeof seen === 'number' && Number.isFinite(seen) && seen >= entry.c ? seen : entry.c }
  }

  /** Beyond the cap: ends the oldest sessions of `listed` (never `keep`, the one just added). */
  async #trim (userId: string, keep: string, listed: readonly Listed[]): Promise<void> {
    const excess = listed.length - this.#max
    if (excess <= 0) return
    const oldest = listed.filter(l => l.id !== keep).reverse().slice(0, excess)
    await Promise.all(oldest.map(l => this.#end(l.sid)))
    await this.#kv.hashDelete(this.#keys.userSessions(userId), oldest.map(l => l.id))
  }

  #seal (userId: string, id: string, entry: Entry): string {
    return this.#ring.seal(JSON.stringify(entry), entryContext(userId, id))
  }

  /**
   * The entry; null when it does not open under this user and handle or is not an entry (logged at warn: the caller
   * drops it); UNKNOWN_KEY when it was sealed with a key that is not in the ring (logged at error, rate-limited: the
   * caller keeps it).
   */
  #open (userId: string, id: string, sealed: string): Entry | null | typeof UNKNOWN_KEY {
    try {
      const entry = JSON.parse(this.#ring.unseal(sealed, entryContext(userId, id))) as Partial<Entry> | null
      if (typeof entry?.s === 'string' && typeof entry.c === 'number' && typeof entry.i === 'number' &&
        typeof entry.e === 'number' && typeof entry.a === 'string' && (entry.w === undefined || typeof entry.w === 'number')) return entry as Entry
    } catch (err) {
      const keyId = unknownKeyIdOf(err)
      if (keyId !== undefined) {
        this.#unknownKeys.report(keyId, 'a user session entry')
        return UNKNOWN_KEY
      }
      this.#log.warn({ err }, 'token-store: dropped a user session entry that could not be opened')
      return null
    }
    this.#log.warn('token-store: dropped a user session entry that is not one')
    return null
  }
}

/** The User-Agent as stored: control characters become spaces, trimmed, at most MAX_USER_AGENT_LENGTH long. */
export function clipUserAgent (value: unknown): string {
  if (typeof value !== 'string') return ''
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim().slice(0, MAX_USER_AGENT_LENGTH)
}

function parseLink (json: string | null): SessionOwner | null {
  if (json === null) return null
  try {
    const link = JSON.parse(json) as { u?: unknown, h?: unknown } | null
    if (typeof link?.u === 'string' && typeof link.h === 'string' && HANDLE.test(link.h)) {
      assertUserId(link.u)
      return { userId: link.u, id: link.h }
    }
  } catch {}
  return null
}

/** Additional data of a sealed entry: it opens only in its own user's index, under its own handle. */
function entryContext (userId: string, id: string): string {
  return 'usr:' + userId + ':' + id
}
