import type { FastifyBaseLogger } from 'fastify'
import type { KeyRing } from './crypto.js'

/** How often the same unknown key id is logged at most. */
export const UNKNOWN_KEY_LOG_INTERVAL_MS = 60_000
/**
 * Distinct unknown key ids logged per interval at most, for stored values and for values from the browser each: a
 * misconfiguration shows one or two, so this only bounds what made-up values (a forged login cookie with a random key
 * id) can write to the log. Two budgets: with one, eight forged cookies a minute used it up, and the line for a stored
 * token set sealed with a key this instance lacks (a half-done key rotation, users silently signed out) was never said.
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
  /** Key id -> when it was last logged: stored values. */
  readonly #logged = new Map<string, number>()
  /** The same for values from the browser, which anyone can make up. */
  readonly #loggedBrowser = new Map<string, number>()

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
    const logged = browser ? this.#loggedBrowser : this.#logged
    for (const [id, at] of logged) {
      if (now - at >= UNKNOWN_KEY_LOG_INTERVAL_MS) logged.delete(id)
    }
    if (logged.has(keyId) || logged.size >= UNKNOWN_KEY_LOG_MAX_IDS) return
    logged.set(keyId, now)
    const fields = { keyId, keyIds: this.#ring.keyIds, sealed: what }
    if (browser) {
      // Anyone can send a made-up one: a warning, and the fix only if another instance does have that key.
      this.#log.warn(fields, `token-store: a value from the browser (${what}) was sealed with a key this instance does not ` +
        `have (key id ${keyId}); it was refused here. If another instance of this app has that key (a key rotation under ` +
        'way), add it to encryptionKeys here (a list: new key first, then the old ones); if none has, the value was made ' +
        'up (a forged cookie) and there is nothing to do (logged once a minute per key id)')
      return
    }
    this.#log.error(fields,
      `token-store: a stored value (${what}) was sealed with a key this instance does not have (key id ${keyId}): ` +
      'add that key to encryptionKeys (a list: new key first, then the old ones) — nothing was deleted; it reads as ' +
      'absent here until then (logged once a minute per key id)'
    )
  }
}
