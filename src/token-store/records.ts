import type { FastifyBaseLogger } from 'fastify'
import type { KeyRing } from './crypto.js'
import type { KVStore } from './kv-store.js'
import type { KeyLayout } from './keys.js'
import { assertId, assertTtl } from './keys.js'
import { TokenStoreArgumentError } from './errors.js'

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

  constructor (kv: KVStore, ring: KeyRing, keys: KeyLayout, log: FastifyBaseLogger) {
    this.#kv = kv
    this.#ring = ring
    this.#keys = keys
    this.#log = log
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

  /** The record's value, once; null when absent, expired, already taken, or unreadable (then logged at warn). */
  async take (key: string): Promise<unknown> {
    assertId(key, 'key')
    const sealed = await this.#kv.take(this.#keys.record(key))
    if (sealed === null) return null
    try {
      const parsed = JSON.parse(this.#ring.unseal(sealed, context(key))) as { v?: unknown }
      return parsed.v ?? null
    } catch (err) {
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

function context (key: string): string {
  return 'rec:' + key
}
