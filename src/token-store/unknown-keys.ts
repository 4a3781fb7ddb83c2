import type { FastifyBaseLogger } from 'fastify'
import type { KeyRing } from './crypto.js'

/** How often the same unknown key id is logged at most. */
export const UNKNOWN_KEY_LOG_INTERVAL_MS = 60_000
/**
 * Distinct unknown key ids logged per interval at most: a misconfiguration shows one or two, so this only bounds
 * what made-up values (a forged login cookie with a random key id) can write to the log.
 */
export const UNKNOWN_KEY_LOG_MAX_IDS = 8

/**
 * Reports values sealed with a key that is not in this instance's key ring: a configuration problem (the value is
 * probably fine, and it is never deleted for it), so it is logged at error with the fix, once per key id per
 * UNKNOWN_KEY_LOG_INTERVAL_MS, whatever the number of requests that meet it. State per token store, not per module.
 * Logs the key id (4 bytes of SHA-256 of the key, not secret) and this ring's key ids; never a value or a key.
 */
export class UnknownKeyLog {
  readonly #log: FastifyBaseLogger
  readonly #ring: KeyRing
  readonly #now: () => number
  /** Key id -> when it was last logged. */
  readonly #logged = new Map<string, number>()

  constructor (log: FastifyBaseLogger, ring: KeyRing, now: () => number = Date.now) {
    this.#log = log
    this.#ring = ring
    this.#now = now
  }

  /**
   * `what`: what was not opened (a token set, a one-time record, a user session entry); `browser`: it came from the
   * browser (a login cookie), not from the store.
   */
  report (keyId: string, what: string, browser = false): void {
    const now = this.#now()
    for (const [id, at] of this.#logged) {
      if (now - at >= UNKNOWN_KEY_LOG_INTERVAL_MS) this.#logged.delete(id)
    }
    if (this.#logged.has(keyId) || this.#logged.size >= UNKNOWN_KEY_LOG_MAX_IDS) return
    this.#logged.set(keyId, now)
    const where = browser ? 'a value from the browser' : 'a stored value'
    const outcome = browser ? 'it was refused here' : 'nothing was deleted; it reads as absent here until then'
    this.#log.error(
      { keyId, keyIds: this.#ring.keyIds, sealed: what },
      `token-store: ${where} (${what}) was sealed with a key this instance does not have (key id ${keyId}): ` +
      `add that key to encryptionKeys (a list: new key first, then the old ones) — ${outcome} (logged once a minute per key id)`
    )
  }
}
