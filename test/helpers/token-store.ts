/**
 * Helpers for the token-store tests (test/token-store/*.test.ts).
 * - `forEachBackend`: runs one behaviour test against the memory store and against real Redis.
 * - `buildApp`: a Fastify app with the plugin (closed at teardown), optionally capturing log lines.
 * - `tokenSet`, `deferred`, `countingRefresher`: token sets with recognisable values, and refreshers that count.
 */
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import type { Test } from 'tap'
import { tokenStore } from '@fastify-aihubmix/token-store'
import type { Refresher, TokenSet, TokenStore, TokenStoreOptions } from '@fastify-aihubmix/token-store'
import type { KVStore } from '../../src/token-store/kv-store.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from './redis.js'
import type { IoredisMajor } from './redis.js'

export type T = Test

/** Raw test keys (never used anywhere else). */
export const KEY_A = 'hex:' + 'a1'.repeat(32)
export const KEY_B = 'hex:' + 'b2'.repeat(32)

export interface Backend {
  name: 'memory' | 'redis'
  /** The test's own Redis connection (redis backend only). */
  redis: Redis | undefined
  /** A key prefix unique to this test. */
  prefix: string
  /** Options selecting this backend: spread them into the plugin's options. */
  options: Partial<TokenStoreOptions>
}

/**
 * Declares `<title> [memory]`, `<title> [redis]`, `<title> [redis, ioredis 6]` and `<title> [redis, client cache]`
 * subtests running `fn`. The Redis ones skip/fail per CI.
 */
export function forEachBackend (t: T, title: string, fn: (t: T, backend: Backend) => Promise<void>): void {
  t.test(`${title} [memory]`, async t => {
    const prefix = uniquePrefix('ts')
    await fn(t, { name: 'memory', redis: undefined, prefix, options: { keyPrefix: prefix } })
  })
  // ioredis 5 and 6 (RESP3 by default, pub/sub as push frames): token-store supports both.
  for (const major of [5, 6] satisfies IoredisMajor[]) {
    t.test(`${title} [redis${major === 6 ? ', ioredis 6' : ''}]`, async t => {
      const redis = await connectRedis(t, {}, major)
      if (redis === undefined) return
      const prefix = uniquePrefix('ts')
      cleanupPrefix(t, redis, prefix)
      await fn(t, { name: 'redis', redis, prefix, options: { redis, keyPrefix: prefix } })
    })
  }
  // The same behaviour with the client-side cache on (values read on the hot path kept in the process, dropped
  // when Redis announces a change).
  t.test(`${title} [redis, client cache]`, async t => {
    const redis = await connectRedis(t)
    if (redis === undefined) return
    const prefix = uniquePrefix('ts')
    cleanupPrefix(t, redis, prefix)
    await fn(t, { name: 'redis', redis, prefix, options: { redis, keyPrefix: prefix, redisClientCache: true } })
  })
}

export interface BuildOptions {
  /** Capture the app's log lines (parsed JSON) into this array. */
  logs?: Array<Record<string, unknown>> | undefined
  /** Extra registrations before ready() (e.g. @fastify/cookie + @fastify/session, routes). */
  setup?: (app: FastifyInstance) => void | Promise<void>
}

export async function buildApp (t: T, options: Partial<TokenStoreOptions>, build: BuildOptions = {}): Promise<FastifyInstance> {
  const logs = build.logs
  const app = logs === undefined
    ? Fastify({ logger: false })
    : Fastify({
      logger: {
        level: 'debug',
        stream: new Writable({
          write (chunk: Buffer, _encoding, callback) {
            for (const line of chunk.toString('utf8').split('\n')) {
              if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>)
            }
            callback()
          }
        })
      }
    })
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: KEY_A, ...options })
  await build.setup?.(app)
  await app.ready()
  return app
}

/** A token set with recognisable, unique token values. `expiresInMs` from now (default 1 h). */
export function tokenSet (overrides: Partial<TokenSet> & { expiresInMs?: number } = {}): TokenSet {
  const { expiresInMs = 60 * 60 * 1000, ...rest } = overrides
  const id = randomBytes(8).toString('hex')
  const now = Date.now()
  return {
    accessToken: `AT-SECRET-${id}`,
    refreshToken: `RT-SECRET-${id}`,
    tokenType: 'Bearer',
    expiresAt: now + expiresInMs,
    scope: ['profile', 'balance'],
    obtainedAt: now,
    ...rest
  }
}

export function sid (): string {
  return randomBytes(24).toString('base64url')
}

export interface Deferred<V> {
  promise: Promise<V>
  resolve: (value: V) => void
  reject: (err: unknown) => void
}

export function deferred<V = void> (): Deferred<V> {
  let resolve!: (value: V) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<V>((_resolve, _reject) => { resolve = _resolve; reject = _reject })
  return { promise, resolve, reject }
}

export interface CountingRefresher {
  refresh: Refresher
  /** The refresh tokens it was called with, in order. */
  calls: string[]
}

/**
 * A refresher that records its calls into `calls` (share the array between instances to count across them) and
 * answers with a new set from `answer` (default: a fresh set with a rotated refresh token), after `before` settles.
 */
export function countingRefresher (options: {
  calls?: string[]
  answer?: (refreshToken: string) => TokenSet | Promise<TokenSet>
  before?: () => Promise<unknown>
} = {}): CountingRefresher {
  const calls = options.calls ?? []
  return {
    calls,
    refresh: async (refreshToken: string) => {
      calls.push(refreshToken)
      if (options.before !== undefined) await options.before()
      return options.answer !== undefined ? await options.answer(refreshToken) : tokenSet()
    }
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** The KV store under a token store (TokenStoreCore exposes it as `kv`; not part of the TokenStore interface). */
export function kvOf (store: TokenStore): KVStore & { pttl?: (key: string) => number } {
  return (store as unknown as { kv: KVStore & { pttl?: (key: string) => number } }).kv
}

/** An app with only token-store, its log lines kept (raw JSON, and parsed through `lines`). Closed at teardown. */
export interface LoggedTokenStoreApp { app: FastifyInstance, lines: Array<{ level: number, msg: string }>, raw: string[] }

export async function startLogged (t: { teardown: (fn: () => unknown) => void }, options: Partial<TokenStoreOptions>): Promise<LoggedTokenStoreApp> {
  const raw: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { raw.push(chunk.toString()); cb() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: KEY_A, ...options })
  await app.ready()
  return { app, raw, get lines () { return raw.map((line) => JSON.parse(line) as { level: number, msg: string }) } }
}
