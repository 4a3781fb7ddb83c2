import type { FastifyBaseLogger } from 'fastify'
import type { KeyRing } from './crypto.js'
import type { KVStore } from './kv-store.js'
import type { KeyLayout } from './keys.js'
import { assertId, assertTtl } from './keys.js'
import { TokenStoreArgumentError, unknownKeyIdOf } from './errors.js'
import type { UnknownKeyLog } from './unknown-keys.js'

/**
 * Sealed one-time records (e.g. login states: state, PKCE verifier, returnTo). The value is JSON, sealed with the
 * record's key as additional data, stored with a TTL, and handed out once: `take` is an atomic read-and-delete
 * (Redis GETDEL), so of any number of concurrent takers, on any number of instances, exactly one gets it.
 */
export class Records {
  readonly #kv: KVStore
  readonly #ring: KeyRing
  readonly #keys: KeyLayout
  readonly #log: FastifyBaseLogger
  readonly #unknownKeys: UnknownKeyLog

  constructor (kv: KVStore, ring: KeyRing, keys: KeyLayout, log: FastifyBaseLogger, unknownKeys: UnknownKeyLog) {
    this.#kv = kv
    this.#ring = ring
    this.#keys = keys
    this.#log = log
    this.#unknownKeys = unknownKeys
  }

  async put (key: string, value: unknown, ttlMs: number): Promise<void> {
    assertId(key, 'key')
    assertTtl(ttlMs)
    let json: string
    try {
      json = JSON.stringify({ v: value })
    } catch (err) {
      throw new TokenStoreArgumentError('value', 'must be JSON-serialisable', { cause: err })
    }
    await this.#kv.set(this.#keys.record(key), this.#ring.seal(json, context(key)), ttlMs)
  }

  /**
   * The record's value, once; null when absent, expired, already taken, or unreadable (then logged at warn). A record
   * sealed with a key that is not in the ring is null too but is NOT taken: it is looked at first (one GET, no
   * decryption) and left in the store, so that an instance that lacks a key does not consume what another instance
   * (or this one, once the key is added) can open; logged at error once a minute per key id.
   */
  async take (key: string): Promise<unknown> {
    assertId(key, 'key')
    const storageKey = this.#keys.record(key)
    const peeked = await this.#kv.get(storageKey)
    if (peeked === null) return null
    const unknown = this.#ring.unknownKeyOf(peeked)
    if (unknown !== undefined) {
      this.#unknownKeys.report(unknown, 'a one-time record')
      return null
    }
    const sealed = await this.#kv.take(storageKey)
    if (sealed === null) return null
    try {
      const parsed = JSON.parse(this.#ring.unseal(sealed, context(key))) as { v?: unknown }
      return parsed.v ?? null
    } catch (err) {
      const keyId = unknownKeyIdOf(err)
      if (keyId !== undefined) {
        // Replaced between the look and the take by one sealed with a key this ring lacks (a race no caller of this
        // module makes: records are written once): put back, unless something new is there, for a TTL of its own.
        await this.#kv.lock(storageKey, sealed, RESTORED_RECORD_TTL_MS).catch(() => false)
        this.#unknownKeys.report(keyId, 'a one-time record')
        return null
      }
      this.#log.warn({ err }, 'token-store: discarded a one-time record that could not be opened')
      return null
    }
  }

  /**
   * Writes a marker under `key` only if nothing is there (Redis `SET NX PX`): true for exactly one caller of any
   * number, on any number of instances, until the marker expires or is deleted. The marker holds no data.
   */
  async claim (key: string, ttlMs: number): Promise<boolean> {
    assertId(key, 'key')
    assertTtl(ttlMs)
    return await this.#kv.lock(this.#keys.record(key), '1', ttlMs)
  }

  async delete (key: string): Promise<void> {
    assertId(key, 'key')
    await this.#kv.delete(this.#keys.record(key))
  }
}

/** TTL of a record put back after a take found it sealed with an unknown key (a race: see take). */
const RESTORED_RECORD_TTL_MS = 10 * 60 * 1000

function context (key: string): string {
  return 'rec:' + key
}
