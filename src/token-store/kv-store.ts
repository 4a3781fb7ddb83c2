/**
 * The minimal key-value store the token store is built on. Two implementations: `MemoryStore`
 * (memory-store.ts, one process) and `RedisStore` (redis-store.ts, shared by every instance).
 *
 * Rules every implementation keeps:
 * - Values are strings (sealed blobs or JSON), or hashes of strings; every key is written with a TTL in ms (an
 *   integer > 0).
 * - Every operation is atomic on its own. Operations that take several keys (`getMany`, `delete`) are only ever
 *   given keys of one session, which share a Redis Cluster hash slot (see keys.ts).
 * - Backend failures reject with `StoreUnavailableError` (503), never hang forever and never crash the process.
 */
export interface KVStore {
  /** The value, or null when absent or expired. */
  get (key: string): Promise<string | null>
  /** Several values in ONE round trip (Redis MGET). The keys must share a hash slot. */
  getMany (keys: readonly string[]): Promise<Array<string | null>>
  /**
   * What `getMany` would answer, when it is known without waiting (the memory store; the Redis store's client-side
   * cache, every key cached): the same values, no promise. undefined: not known now, call `getMany`.
   */
  getManyNow? (keys: readonly string[]): Array<string | null> | undefined
  /** Writes (creates or overwrites) with a TTL. */
  set (key: string, value: string, ttlMs: number): Promise<void>
  /** Overwrites only if the key exists (Redis `SET XX`); false when it did not exist (nothing written). */
  replace (key: string, value: string, ttlMs: number): Promise<boolean>
  /**
   * Overwrites only if the current value is exactly `expected`. 'missing' when the key is gone, 'changed' when
   * it holds another value; nothing is written in either case.
   */
  compareAndSet (key: string, expected: string, value: string, ttlMs: number): Promise<CompareAndSetResult>
  /**
   * Deletes the key only if its value is exactly `expected`: 'ok' when deleted, 'missing' when it was already gone,
   * 'changed' when it holds another value (left untouched).
   */
  compareAndDelete (key: string, expected: string): Promise<CompareAndSetResult>
  /**
   * The key's remaining time to live in ms (Redis `PTTL`, measured by the store's own clock), or null when it is
   * absent (or has no TTL). For values whose meaning is "until when": the store's clock is the one every instance
   * shares, so no instance has to trust another one's.
   */
  remainingTtl (key: string): Promise<number | null>
  /** Deletes the keys (absent keys are fine). */
  delete (keys: string | readonly string[]): Promise<void>
  /** Atomic read-and-delete (Redis GETDEL): of concurrent callers, exactly one gets the value. */
  take (key: string): Promise<string | null>
  /** Takes a lock (`SET NX PX`): true when `owner` now holds it for `leaseMs`. */
  lock (key: string, owner: string, leaseMs: number): Promise<boolean>
  /** Releases a lock if (and only if) `owner` holds it, and wakes `waitForUnlock` callers. */
  unlock (key: string, owner: string): Promise<boolean>
  /** Renews the lease if (and only if) `owner` holds the lock. */
  extendLock (key: string, owner: string, leaseMs: number): Promise<boolean>
  /**
   * Resolves when the lock `key` is released or expires, or after `timeoutMs` at the latest, whichever comes
   * first. It may resolve early: callers re-check (try `lock` again).
   */
  waitForUnlock (key: string, timeoutMs: number): Promise<void>
  /**
   * Hashes (a user's index of sessions): writes one field, and makes the key live at least `ttlMs` from now (a
   * longer TTL is kept). Returns how many fields the hash has now.
   */
  hashSet (key: string, field: string, value: string, ttlMs: number): Promise<number>
  /** Every field of a hash, `{}` when it is absent. */
  hashGetAll (key: string): Promise<Record<string, string>>
  /** Deletes fields of a hash (absent ones are fine); a hash left empty is gone. */
  hashDelete (key: string, fields: readonly string[]): Promise<void>
  /**
   * Calls `listener` each time the store is reachable (the Redis client's connection is ready), until close;
   * `reconnected` is true when it was reachable before and then was not (the connection closed since), false for a
   * first connection. Absent where the store is always reachable (memory).
   */
  onAvailable? (listener: (reconnected: boolean) => void): void
  /**
   * The store's clock, ms since the epoch, for times every instance compares (a refresh's presented mark, when a
   * forced refresh stored a set): one clock for all, whatever each machine's own says. Absent: `Date.now()` (the
   * memory store, one process).
   */
  now? (): number
  /** Releases what the store created (timers, subscriber connections); never a client it was given. */
  close (): Promise<void>
}

export type CompareAndSetResult = 'ok' | 'missing' | 'changed'
