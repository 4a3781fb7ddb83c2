import type { Test } from 'tap'
import type { MemoryStore } from '../../src/token-store/memory-store.js'
import { startStack, type Stack, type StackOptions } from './stack.js'
import { cleanupPrefix, connectRedis, scanKeys, uniquePrefix } from './redis.js'
import { kvOf } from './token-store.js'

/** The example stack on the memory store or on Redis (its own key prefix), and every key it has stored. */
export interface KeyedStack {
  stack: Stack
  /** Every key stored, sorted. */
  keys: () => Promise<string[]>
  /** A key's remaining life in ms. */
  pttl: (key: string) => Promise<number>
}

export async function keyedStack (t: Test, backend: 'memory' | 'redis', opts: StackOptions = {}): Promise<KeyedStack | undefined> {
  if (backend === 'memory') {
    const stack = await startStack(opts)
    t.teardown(() => stack.close())
    const kv = kvOf(stack.app.tokenStore) as unknown as MemoryStore & { pttl: (key: string) => number }
    return { stack, keys: async () => kv.keys().sort(), pttl: async (key) => kv.pttl(key) }
  }
  const redis = await connectRedis(t)
  if (redis === undefined) return undefined
  const prefix = uniquePrefix('keyed')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ ...opts, redis, tokenStore: { keyPrefix: prefix, ...opts.tokenStore } })
  t.teardown(() => stack.close())
  return { stack, keys: () => scanKeys(redis, prefix), pttl: (key) => redis.pttl(key) }
}
