import { TokenStoreArgumentError } from './errors.js'

/**
 * Key layout (all under `keyPrefix`, default `aihubmix:`):
 *
 *     <prefix>{<sid>}:sess   the @fastify/session data (JSON)
 *     <prefix>{<sid>}:tok    the sealed token set
 *     <prefix>{<sid>}:lock   the refresh lock (value: a random owner id)
 *     <prefix>{<sid>}:backoff  after a transient refresh failure: nobody refreshes while it lives (its TTL; the value, the writer's epoch ms, is informative)
 *     <prefix>{<sid>}:user   the session's user and handle, when indexed (JSON `{u, h}`)
 *     <prefix>{u:<user>}:sessions   a user's sessions: a hash of handle -> sealed entry (user-sessions.ts)
 *     <prefix>rec:<key>      sealed one-time records (login states)
 *     <prefix>lock-released  the pub/sub channel that announces released refresh locks (not a key)
 *
 * The `{<sid>}` hash tag puts a session's keys in one Redis Cluster slot, so the session store can read the
 * session and the token set with one MGET, and delete both with one DEL. A prefix must therefore not contain
 * `{` or `}` (resolveOptions enforces it), nor may a user id (assertUserId). A user's index is one key with a tag
 * of its own, ending in `}:sessions`, which no key of a session does. Every key of a session or a user
 * starts with `sessionPrefix`, the prefix the Redis client-side cache tracks: changes to the indexes are announced
 * too, and harmless: they are never read through the cache, so there is nothing to drop.
 */
export class KeyLayout {
  readonly prefix: string
  readonly lockChannel: string

  constructor (prefix: string) {
    this.prefix = prefix
    this.lockChannel = prefix + 'lock-released'
  }

  /** What every key of a session (record, token set, lock) starts with. */
  get sessionPrefix (): string {
    return this.prefix + '{'
  }

  session (sid: string): string {
    return this.prefix + '{' + sid + '}:sess'
  }

  tokens (sid: string): string {
    return this.prefix + '{' + sid + '}:tok'
  }

  lock (sid: string): string {
    return this.prefix + '{' + sid + '}:lock'
  }

  backoff (sid: string): string {
    return this.prefix + '{' + sid + '}:backoff'
  }

  /** A session record or a token set: what a request reads (getMany), and the Redis client-side cache may keep. */
  isHotRead (key: string): boolean {
    return key.startsWith(this.prefix) && (key.endsWith('}:sess') || key.endsWith('}:tok'))
  }

  /** The session's link to its user's index (user-sessions.ts). */
  userLink (sid: string): string {
    return this.prefix + '{' + sid + '}:user'
  }

  /** A user's index of sessions (user-sessions.ts). */
  userSessions (userId: string): string {
    return this.prefix + '{u:' + userId + '}:sessions'
  }

  record (key: string): string {
    return this.prefix + 'rec:' + key
  }
}

const MAX_ID_LENGTH = 512

/** A session id or record key: a non-empty string of reasonable length. */
/** What assertId accepts. */
export function isId (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH
}

export function assertId (value: unknown, name: string): asserts value is string {
  if (!isId(value)) {
    throw new TokenStoreArgumentError(name, `must be a non-empty string of at most ${MAX_ID_LENGTH} characters`)
  }
}

const USER_ID = /^[!-z|~]{1,128}$/

/** Whether `value` can be a user id: 1 to 128 printable ASCII characters, no space, `{` or `}` (hash tags). */
export function isUserId (value: unknown): value is string {
  return typeof value === 'string' && USER_ID.test(value)
}

/** A user id (the provider's), as isUserId says. */
export function assertUserId (value: unknown, name = 'userId'): asserts value is string {
  if (!isUserId(value)) {
    throw new TokenStoreArgumentError(name, 'must be 1 to 128 printable ASCII characters without spaces, "{" or "}"')
  }
}

/** A TTL in ms: a positive integer (every key has a TTL). */
export function assertTtl (value: unknown, name = 'ttlMs'): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TokenStoreArgumentError(name, 'must be a positive integer number of milliseconds')
  }
}
