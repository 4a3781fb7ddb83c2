import type { CompareAndSetResult, KVStore } from './kv-store.js'
import { assertTtl } from './keys.js'

interface Entry {
  /** A string, or the fields of a hash. */
  value: string | Map<string, string>
  expiresAt: number
}

export interface MemoryStoreOptions {
  /** How often expired entries are swept (besides lazily on access). Default 60 s. The timer is unref'ed. */
  sweepIntervalMs?: number
}

export const DEFAULT_SWEEP_INTERVAL_MS = 60_000

/**
 * The in-process KV store: a Map with expiry, for one instance (the default backend). Same semantics as the
 * Redis store: TTL on every key, atomic take, owner-checked locks. Lock waiters are woken by promises; a lock
 * that expires wakes them through a timer set to its lease.
 */
export class MemoryStore implements KVStore {
  readonly #entries = new Map<string, Entry>()
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #sweeper: NodeJS.Timeout

  constructor (options: MemoryStoreOptions = {}) {
    const interval = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
    this.#sweeper = setInterval(() => this.sweep(), interval)
    this.#sweeper.unref()
  }

  /** Number of live entries (after a sweep). For tests and metrics. */
  get size (): number {
    this.sweep()
    return this.#entries.size
  }

  /** Deletes every expired entry. */
  sweep (): void {
    const now = Date.now()
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#remove(key)
    }
  }

  /** The live keys (after a sweep). For tests and diagnostics. */
  keys (): string[] {
    this.sweep()
    return [...this.#entries.keys()]
  }

  /** Remaining TTL in ms, -2 when absent (like Redis PTTL). */
  pttl (key: string): number {
    const entry = this.#read(key)
    return entry === undefined ? -2 : entry.expiresAt - Date.now()
  }

  async get (key: string): Promise<string | null> {
    return this.#string(key)
  }

  async getMany (keys: readonly string[]): Promise<Array<string | null>> {
    return this.getManyNow(keys)
  }

  getManyNow (keys: readonly string[]): Array<string | null> {
    return keys.map(key => this.#string(key))
  }

  async set (key: string, value: string, ttlMs: number): Promise<void> {
    assertTtl(ttlMs)
    this.#write(key, value, ttlMs)
  }

  async replace (key: string, value: string, ttlMs: number): Promise<boolean> {
    assertTtl(ttlMs)
    if (this.#read(key) === undefined) return false
    this.#write(key, value, ttlMs)
    return true
  }

  async compareAndSet (key: string, expected: string, value: string, ttlMs: number): Promise<CompareAndSetResult> {
    assertTtl(ttlMs)
    const entry = this.#read(key)
    if (entry === undefined) return 'missing'
    if (entry.value !== expected) return 'changed'
    this.#write(key, value, ttlMs)
    return 'ok'
  }

  async compareAndDelete (key: string, expected: string): Promise<CompareAndSetResult> {
    const entry = this.#read(key)
    if (entry === undefined) return 'missing'
    if (entry.value !== expected) return 'changed'
    this.#remove(key)
    return 'ok'
  }

  async remainingTtl (key: string): Promise<number | null> {
    const entry = this.#read(key)
    return entry === undefined ? null : entry.expiresAt - Date.now()
  }

  async delete (keys: string | readonly string[]): Promise<void> {
    if (typeof keys === 'string') this.#remove(keys)
    else for (const key of keys) this.#remove(key)
  }

  async take (key: string): Promise<string | null> {
    const value = this.#string(key)
    if (value !== null) this.#remove(key)
    return value
  }

  async lock (key: string, owner: string, leaseMs: number): Promise<boolean> {
    assertTtl(leaseMs, 'leaseMs')
    if (this.#read(key) !== undefined) return false
    this.#write(key, owner, leaseMs)
    return true
  }

  async unlock (key: string, owner: string): Promise<boolean> {
    if (this.#read(key)?.value !== owner) return false
    this.#remove(key)
    return true
  }

  async extendLock (key: string, owner: string, leaseMs: number): Promise<boolean> {
    assertTtl(leaseMs, 'leaseMs')
    const entry = this.#read(key)
    if (entry?.value !== owner) return false
    entry.expiresAt = Date.now() + leaseMs
    return true
  }

  async hashSet (key: string, field: string, value: string, ttlMs: number): Promise<number> {
    assertTtl(ttlMs)
    const entry = this.#read(key)
    const fields = entry?.value instanceof Map ? entry.value : new Map<string, string>()
    fields.set(field, value)
    const expiresAt = Math.max(entry?.value instanceof Map ? entry.expiresAt : 0, Date.now() + ttlMs)
    this.#entries.set(key, { value: fields, expiresAt })
    return fields.size
  }

  async hashGetAll (key: string): Promise<Record<string, string>> {
    const value = this.#read(key)?.value
    return value instanceof Map ? Object.fromEntries(value) : {}
  }

  async hashDelete (key: string, fields: readonly string[]): Promise<void> {
    const value = this.#read(key)?.value
    if (!(value instanceof Map)) return
    for (const field of fields) value.delete(field)
    if (value.size === 0) this.#remove(key)
  }

  waitForUnlock (key: string, timeoutMs: number): Promise<void> {
    const entry = this.#read(key)
    if (entry === undefined) return Promise.resolve()
    // Wake at the lease's end too: an expired lock is released without anyone calling unlock.
    const wait = Math.max(0, Math.min(timeoutMs, entry.expiresAt - Date.now()))
    return new Promise<void>(resolve => {
      let waiters = this.#waiters.get(key)
      if (waiters === undefined) {
        waiters = new Set()
        this.#waiters.set(key, waiters)
      }
      const set = waiters
      const wake = (): void => {
        clearTimeout(timer)
        set.delete(wake)
        if (set.size === 0 && this.#waiters.get(key) === set) this.#waiters.delete(key)
        resolve()
      }
      const timer = setTimeout(wake, wait)
      set.add(wake)
    })
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    for (const key of [...this.#waiters.keys()]) this.#wake(key)
    this.#entries.clear()
  }

  /** A string value. A hash reads as absent (Redis would refuse the read; nothing reads a hash so). */
  #string (key: string): string | null {
    const value = this.#read(key)?.value
    return typeof value === 'string' ? value : null
  }

  #read (key: string): Entry | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#remove(key)
      return undefined
    }
    return entry
  }

  #write (key: string, value: string, ttlMs: number): void {
    this.#entries.set(key, { value, expiresAt: Date.now() + ttlMs })
  }

  #remove (key: string): void {
    this.#entries.delete(key)
    this.#wake(key)
  }

  #wake (key: string): void {
    const waiters = this.#waiters.get(key)
    if (waiters === undefined) return
    this.#waiters.delete(key)
    for (const wake of waiters) wake()
  }
}
