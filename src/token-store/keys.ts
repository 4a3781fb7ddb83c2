import { TokenStoreArgumentError } from './errors.js'

/**
 * Key layout (all under `keyPrefix`, default `aihubmix:`):
 *
 *     <prefix>{<sid>}:sess   the @fastify/session data (JSON)
 *     <prefix>{<sid>}:tok    the sealed token set
 *     <prefix>{<sid>}:lock   the refresh lock (value: a random owner id)
 *     <prefix>{<sid>}:backoff  after a transient refresh failure: until when nobody refreshes (epoch ms)
 *     <prefix>rec:<key>      sealed one-time records (login states)
 *     <prefix>lock-released  the pub/sub channel that announces released refresh locks (not a key)
 *
 * The `{<sid>}` hash tag puts a session's keys in one Redis Cluster slot, so the session store can read the
 * session and the token set with one MGET, and delete both with one DEL. A prefix must therefore not contain
 * `{` or `}` (resolveOptions enforces it).
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

  record (key: string): string {
    return this.prefix + 'rec:' + key
  }
}

const MAX_ID_LENGTH = 512

/** A session id or record key: a non-empty string of reasonable length. */
export function assertId (value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new TokenStoreArgumentError(name, `must be a non-empty string of at most ${MAX_ID_LENGTH} characters`)
  }
}

/** A TTL in ms: a positive integer (every key has a TTL). */
export function assertTtl (value: unknown, name = 'ttlMs'): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TokenStoreArgumentError(name, 'must be a positive integer number of milliseconds')
  }
}
