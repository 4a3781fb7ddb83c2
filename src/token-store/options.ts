import { Type } from '@sinclair/typebox'
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { EncryptionKeyInput, KeyRing } from './crypto.js'
import { createKeyRing, untrimmed } from './crypto.js'
import { TokenStoreOptionsError } from './errors.js'
import { firstOptionProblem } from './option-errors.js'
import type { RedisClient } from './redis-store.js'
import type { TokenSet } from './token-set.js'

export const DEFAULT_BACKEND = 'memory'
export const DEFAULT_KEY_PREFIX = 'aihubmix:'
export const DEFAULT_REFRESH_SKEW_MS = 5 * 60 * 1000
export const DEFAULT_REFRESH_TOKEN_TTL_MS = 30 * 24 * 60 * 60 * 1000
export const DEFAULT_SESSION_TTL_MS = 24 * 60 * 60 * 1000
export const DEFAULT_LOCK_LEASE_MS = 10 * 1000
export const DEFAULT_LOCK_WAIT_MS = 12 * 1000
export const DEFAULT_REFRESH_BACKOFF_MS = 1000
export const DEFAULT_REFRESH_BACKOFF_MAX_MS = 30 * 1000
export const DEFAULT_FORCED_REFRESH_INTERVAL_MS = 30 * 1000
export const DEFAULT_REFRESH_FENCE_MS = 60 * 1000
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2000
export const DEFAULT_OPENED_CACHE_SIZE = 10_000
export const DEFAULT_CLIENT_CACHE_ENTRIES = 20_000
export const DEFAULT_CLIENT_CACHE_MAX_AGE_MS = 30_000
export const DEFAULT_MAX_SESSIONS_PER_USER = 50

/** Hook events. They carry the session id and (onRefresh) the token set: server-side code only, never log them. */
export interface RefreshEvent { sid: string, set: TokenSet }
export interface RefreshFailedEvent { sid: string, error: unknown }
export interface RevokedEvent { sid: string, error: unknown }

export interface TokenStoreHooks {
  /** After a refresh was saved (before the waiting callers get the set). */
  onRefresh?: ((event: RefreshEvent) => void | Promise<void>) | undefined
  /** The refresher failed transiently; the token set is kept and the error is rethrown to the caller. */
  onRefreshFailed?: ((event: RefreshFailedEvent) => void | Promise<void>) | undefined
  /** The refresher threw RefreshRejectedError; the token set has been deleted. */
  onRevoked?: ((event: RevokedEvent) => void | Promise<void>) | undefined
}

export interface TokenStoreOptions {
  /**
   * Required. One key or a list: the first seals, every one opens (rotation: put the new key first, keep the
   * old ones until their values expired). A key is a 32-byte Buffer, `base64:<32 bytes>`, `hex:<64 hex digits>`,
   * or a passphrase of at least 32 characters (stretched with HKDF-SHA256).
   */
  encryptionKeys: EncryptionKeyInput | EncryptionKeyInput[]
  /** `'memory'` (one process) or `'redis'`. Default: `'redis'` when `redis` is given, else `'memory'`. */
  backend?: 'memory' | 'redis' | undefined
  /**
   * An ioredis client (Redis or Cluster), or a `redis://` / `rediss://` URL from which the plugin makes its own client
   * (ioredis must be installed): the app starts while Redis is down, answering 503 store_unavailable until it is up,
   * and one line (the URL without its password) says when it is unavailable and when it is back. Without it,
   * `backend: 'redis'` uses `fastify.redis` (@fastify/redis).
   */
  redis?: RedisClient | string | undefined
  /** Prefix of every key and channel; must not contain `{` or `}` (they delimit the Redis Cluster hash tag). */
  keyPrefix?: string | undefined
  /**
   * Refresh when less than this remains of the access token's life, or less than half of its whole life
   * (`expiresAt - obtainedAt`) when that is shorter.
   */
  refreshSkewMs?: number | undefined
  /** TTL of a stored token set that has a refresh token (reset by every save). */
  refreshTokenTtlMs?: number | undefined
  /** TTL of a session when its cookie has no expiry (session store). */
  sessionTtlMs?: number | undefined
  /**
   * Lease of the distributed refresh lock; renewed every third of it while the refresh runs and until its result
   * is stored. A lock left by a process that died frees after at most this long.
   */
  lockLeaseMs?: number | undefined
  /** How long a caller waits for another instance's refresh before RefreshBusyError (503). */
  lockWaitMs?: number | undefined
  /**
   * After a transient refresh failure (the refresher threw anything but RefreshRejectedError), how long this
   * session does not call the refresher again, on any instance; a `retryAfterMs` on the refresher's error (the
   * provider's Retry-After) lengthens it, up to `refreshBackoffMaxMs`, and never shortens it.
   */
  refreshBackoffMs?: number | undefined
  /** Upper bound of a backoff asked for through `retryAfterMs`, and of one read from another instance. */
  refreshBackoffMaxMs?: number | undefined
  /**
   * After a provider refused an access token (getFresh with `force`), a set that a refresh stored less than this
   * long ago is returned as it is instead of refreshed again: the provider refuses tokens it has just issued, and
   * another refresh would only rotate the refresh token once more. 0 turns it off.
   */
  forcedRefreshIntervalMs?: number | undefined
  /**
   * How long another instance does not present a refresh token that a refresh has presented and not settled yet
   * (the set is marked in the store before the provider call): its lock's lease can run out while Redis is down or
   * stalled for everyone, with the provider's answer already in that instance's hands. Past it, the token is
   * presented again (the presenting process died, or the outage lasted longer). 0 turns the mark off (one
   * compare-and-set less per refresh).
   */
  refreshFenceMs?: number | undefined
  /** Upper bound of one Redis command (0: none). Turns a Redis outage into a 503 instead of a hang. */
  redisCommandTimeoutMs?: number | undefined
  /**
   * How many opened token sets this process keeps, by session, so that reading the same sealed value again (the
   * steady state) skips AES-GCM and validation. The sets are in this process's memory, as the keys that open them
   * are. 0 turns it off.
   */
  openedCacheSize?: number | undefined
  /**
   * Redis backend, single Redis (not a Cluster), Redis >= 6: keep the session records and sealed token sets read
   * on the hot path in this process, and let Redis announce every change to them (server-assisted client-side
   * caching, `CLIENT TRACKING ... BCAST` on a connection of the store's own). A steady-state request then makes no
   * Redis round trip. Off by default. A change completed on another instance (a sign-out, a refresh) is never
   * served from the value before it: the cache serves only while a PING on its tracking connection sent less than
   * 50 ms ago has been answered (after every announcement before it), and every write that replaces or deletes a
   * session record or a token set completes 50 ms after Redis answered it. The price: one more connection, about
   * 100 PINGs a second while busy, 50 ms more for a sign-in, a sign-out, a refresh. Turn it on on every instance
   * sharing the Redis: one without it does not wait after its writes. `true`: the defaults (20,000 entries, two per
   * session; 30 s). Nothing is cached while the tracking connection is down, or on another Redis server than the
   * store's client (after a failover: see the README's "Redis failover").
   */
  redisClientCache?: boolean | RedisClientCacheOptions | undefined
  /**
   * The session cookie, as @fastify/session is given it (`cookieName`, `secret`). With it, `request.tokens` also
   * works on routes registered OUTSIDE @fastify/session's scope: it reads the session itself from the signed
   * cookie, with one store read and nothing built, hashed or written per request. That is the fast path for the
   * aihubmix-proxy routes (see the README). Without it, `request.tokens` needs `request.session`.
   */
  sessionCookie?: SessionCookieOptions | undefined
  /**
   * Most sessions one user keeps in its index (`addUserSession`, oauth-routes at sign-in); a sign-in beyond it
   * ends the user's oldest sessions.
   */
  maxSessionsPerUser?: number | undefined
  /**
   * When one session's refresh token is refused for good (`invalid_grant`: the user revoked the app at the
   * provider), end every session of that user, not only that one. Off by default.
   */
  endUserSessionsOnRevoked?: boolean | undefined
  hooks?: TokenStoreHooks | undefined
}

export interface RedisClientCacheOptions {
  /** Entries kept (two per session: the session record and the sealed token set); the oldest go first. */
  maxEntries?: number | undefined
  /** Longest time an entry is served without reading Redis again, whatever the announcements say. */
  maxAgeMs?: number | undefined
}

export interface SessionCookieOptions {
  /** @fastify/session's `cookieName` (its default is `sessionId`). */
  name: string
  /** @fastify/session's `secret`: one of at least 32 characters, or a list (the first signs, all verify). */
  secret: string | string[]
}

export interface ResolvedTokenStoreOptions {
  /** Lines the store logs at start: options it takes as they are but that may not be what was meant. */
  warnings: readonly string[]
  keyRing: KeyRing
  backend: 'memory' | 'redis'
  /** The client given, or (by the plugin) the one made from `redisUrl`. */
  redis: RedisClient | undefined
  /** `redis` given as a URL: the plugin makes the client. */
  redisUrl: string | undefined
  keyPrefix: string
  refreshSkewMs: number
  refreshTokenTtlMs: number
  sessionTtlMs: number
  lockLeaseMs: number
  lockWaitMs: number
  refreshBackoffMs: number
  refreshBackoffMaxMs: number
  forcedRefreshIntervalMs: number
  refreshFenceMs: number
  redisCommandTimeoutMs: number
  openedCacheSize: number
  redisClientCache: { maxEntries: number, maxAgeMs: number } | undefined
  sessionCookie: { name: string, secrets: readonly string[] } | undefined
  maxSessionsPerUser: number
  endUserSessionsOnRevoked: boolean
  hooks: Readonly<TokenStoreHooks>
}

const KeyInput = Type.Union([
  Type.String({ description: 'base64:<32 bytes>, hex:<64 hex digits>, or a passphrase of >= 32 characters' }),
  Type.Uint8Array({ minByteLength: 32, maxByteLength: 32 })
])
const Ms = (minimum: number, description: string): TSchema => Type.Optional(Type.Integer({ minimum, description }))
const Hook = Type.Optional(Type.Function([Type.Any()], Type.Any()))

const ClientCacheObject = Type.Object({
  maxEntries: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'entries kept, two per session' })),
  maxAgeMs: Ms(1, 'longest time an entry is served without reading Redis')
}, { additionalProperties: false })
const clientCacheChecker = TypeCompiler.Compile(ClientCacheObject)

/** The options' schema (validated once, at registration, by resolveOptions). */
export const TokenStoreOptionsSchema = Type.Object({
  encryptionKeys: Type.Union([KeyInput, Type.Array(KeyInput, { minItems: 1 })]),
  backend: Type.Optional(Type.Union([Type.Literal('memory'), Type.Literal('redis')])),
  redis: Type.Optional(Type.Union([Type.Object({}), Type.String({ minLength: 1, maxLength: 4096 })], { expected: 'an ioredis client (Redis or Cluster) or a redis:// URL' })),
  keyPrefix: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[^{}]*$', expected: 'a string of 1 to 256 characters without { or }' })),
  refreshSkewMs: Ms(0, 'refresh when less than this remains'),
  refreshTokenTtlMs: Ms(1, 'TTL of a token set with a refresh token'),
  sessionTtlMs: Ms(1, 'session TTL when the cookie has no expiry'),
  lockLeaseMs: Ms(100, 'refresh lock lease'),
  lockWaitMs: Ms(0, 'maximum wait for another instance\'s refresh'),
  refreshBackoffMs: Ms(0, 'pause after a transient refresh failure'),
  refreshBackoffMaxMs: Ms(0, 'longest pause a Retry-After may ask for'),
  forcedRefreshIntervalMs: Ms(0, 'a set refreshed less than this long ago is not refreshed again after a provider 401'),
  refreshFenceMs: Ms(0, 'how long a refresh token another instance presented is not presented again'),
  redisCommandTimeoutMs: Ms(0, 'upper bound of one Redis command, 0 for none'),
  openedCacheSize: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'opened token sets kept in memory, 0 for none' })),
  redisClientCache: Type.Optional(Type.Union([Type.Boolean(), ClientCacheObject])),
  sessionCookie: Type.Optional(Type.Object({
    name: Type.String({ minLength: 1, maxLength: 256, pattern: '^[!#$%&\'*+\\-.^_`|~0-9A-Za-z]+$', description: 'a cookie name', expected: 'a cookie name (letters, digits and !#$%&\'*+-.^_`|~)' }),
    secret: Type.Union([
      Type.String({ minLength: 32 }),
      Type.Array(Type.String({ minLength: 32 }), { minItems: 1 })
    ], { description: 'a secret of at least 32 characters, or a list of them' })
  }, { additionalProperties: false })),
  maxSessionsPerUser: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'most sessions one user keeps' })),
  endUserSessionsOnRevoked: Type.Optional(Type.Boolean()),
  hooks: Type.Optional(Type.Object({
    onRefresh: Hook,
    onRefreshFailed: Hook,
    onRevoked: Hook
  }, { additionalProperties: false }))
}, { additionalProperties: false })

const checker = TypeCompiler.Compile(TokenStoreOptionsSchema)

/** Options Fastify's `register` may pass along that are not ours. */
const REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

/**
 * Validates the options once and returns a new, complete object (the caller's is never mutated).
 * Throws TokenStoreOptionsError naming the bad option's path (`encryptionKeys[1]`, `hooks.onRefresh`, ...).
 */
export function resolveOptions (options: unknown): ResolvedTokenStoreOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TokenStoreOptionsError('(options)', 'must be an object')
  }
  const input: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (!REGISTER_OPTIONS.has(key) && value !== undefined) input[key] = value
  }
  if (input.encryptionKeys === undefined) {
    // A misspelt encryptionKeys (`encryptionKey`) is named as such (the schema's check says which option was meant).
    const problem = firstOptionProblem(checker.Errors(input))
    if (problem !== undefined && problem[0] !== 'encryptionKeys') throw new TokenStoreOptionsError(...problem)
    throw new TokenStoreOptionsError('encryptionKeys', 'is required (a 32-byte key, "base64:...", "hex:..." or a passphrase of >= 32 characters)')
  }
  // The key ring gives precise messages (which key, what is wrong) without echoing key material.
  const keyRing = createKeyRing(input.encryptionKeys, 'encryptionKeys')
  // A union's error says only "expected union value": an object given for redisClientCache is checked on its own,
  // so that the message names the property that is wrong.
  const cacheInput = input.redisClientCache
  const cacheProblem = typeof cacheInput === 'object' && cacheInput !== null ? firstOptionProblem(clientCacheChecker.Errors(cacheInput), 'redisClientCache') : undefined
  if (cacheProblem !== undefined) throw new TokenStoreOptionsError(...cacheProblem)
  const problem = firstOptionProblem(checker.Errors(input))
  if (problem !== undefined) throw new TokenStoreOptionsError(...problem)
  const o = input as unknown as TokenStoreOptions
  const redisUrl = typeof o.redis === 'string' ? checkRedisUrl(o.redis) : undefined
  if (o.redis !== undefined && redisUrl === undefined && !isRedisClient(o.redis)) {
    throw new TokenStoreOptionsError('redis', 'must be an ioredis client (Redis or Cluster) or a redis:// URL')
  }
  if (o.backend === 'memory' && o.redis !== undefined) {
    throw new TokenStoreOptionsError('backend', '"memory" contradicts the given redis option: drop one of them')
  }
  const backend = o.backend ?? (o.redis !== undefined ? 'redis' : DEFAULT_BACKEND)
  const clientCache = o.redisClientCache === undefined || o.redisClientCache === false
    ? undefined
    : {
        maxEntries: (o.redisClientCache === true ? undefined : o.redisClientCache.maxEntries) ?? DEFAULT_CLIENT_CACHE_ENTRIES,
        maxAgeMs: (o.redisClientCache === true ? undefined : o.redisClientCache.maxAgeMs) ?? DEFAULT_CLIENT_CACHE_MAX_AGE_MS
      }
  if (clientCache !== undefined && backend !== 'redis') {
    throw new TokenStoreOptionsError('redisClientCache', 'needs the Redis backend (the memory backend has nothing to cache)')
  }
  const refreshBackoffMs = o.refreshBackoffMs ?? DEFAULT_REFRESH_BACKOFF_MS
  if (o.refreshBackoffMaxMs !== undefined && o.refreshBackoffMaxMs < refreshBackoffMs) {
    throw new TokenStoreOptionsError('refreshBackoffMaxMs', `must be at least refreshBackoffMs (${refreshBackoffMs})`)
  }
  // Said at start (TokenStoreCore), never refused: see untrimmed().
  const warnings: string[] = []
  // `redis: env.REDIS_URL` with the variable unset: the option is there, its value is not. Memory for one instance
  // is fine on purpose; by accident, several instances each keep their own sessions and users are signed out at
  // random. (An empty string is refused as a URL.)
  if (backend === 'memory' && o.backend === undefined && Object.hasOwn(options, 'redis')) {
    warnings.push('token-store: the redis option is given as undefined (an unset REDIS_URL?): sessions and token sets live ' +
      'in this process\'s memory, for one instance only. Fix: set it, or leave the option out (or backend: \'memory\') for memory on purpose')
  }
  const said = (value: unknown, list: boolean, path: string, i: number): void => {
    const edge = untrimmed(value)
    if (edge !== undefined) warnings.push(`token-store: ${list ? `${path}[${i}]` : path} ${edge}`)
  }
  const keys: unknown = input.encryptionKeys
  ;[keys].flat().forEach((key, i) => { said(key, Array.isArray(keys), 'encryptionKeys', i) })
  if (o.sessionCookie !== undefined) {
    const secret = o.sessionCookie.secret
    ;[secret].flat().forEach((s, i) => { said(s, Array.isArray(secret), 'sessionCookie.secret', i) })
  }
  return {
    warnings,
    keyRing,
    backend,
    redis: typeof o.redis === 'string' ? undefined : o.redis,
    redisUrl,
    keyPrefix: o.keyPrefix ?? DEFAULT_KEY_PREFIX,
    refreshSkewMs: o.refreshSkewMs ?? DEFAULT_REFRESH_SKEW_MS,
    refreshTokenTtlMs: o.refreshTokenTtlMs ?? DEFAULT_REFRESH_TOKEN_TTL_MS,
    sessionTtlMs: o.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS,
    lockLeaseMs: o.lockLeaseMs ?? DEFAULT_LOCK_LEASE_MS,
    lockWaitMs: o.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    refreshBackoffMs,
    refreshBackoffMaxMs: o.refreshBackoffMaxMs ?? Math.max(DEFAULT_REFRESH_BACKOFF_MAX_MS, refreshBackoffMs),
    forcedRefreshIntervalMs: o.forcedRefreshIntervalMs ?? DEFAULT_FORCED_REFRESH_INTERVAL_MS,
    refreshFenceMs: o.refreshFenceMs ?? DEFAULT_REFRESH_FENCE_MS,
    redisCommandTimeoutMs: o.redisCommandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    openedCacheSize: o.openedCacheSize ?? DEFAULT_OPENED_CACHE_SIZE,
    redisClientCache: clientCache === undefined ? undefined : Object.freeze(clientCache),
    sessionCookie: o.sessionCookie === undefined
      ? undefined
      : Object.freeze({ name: o.sessionCookie.name, secrets: Object.freeze([o.sessionCookie.secret].flat()) }),
    maxSessionsPerUser: o.maxSessionsPerUser ?? DEFAULT_MAX_SESSIONS_PER_USER,
    endUserSessionsOnRevoked: o.endUserSessionsOnRevoked ?? false,
    hooks: Object.freeze({ ...o.hooks })
  }
}

/**
 * The query parameters of a redis URL that token-store passes on, each with what it accepts and its typed value
 * (redis-url.ts: `urlQueryOptions`); ioredis itself would copy any parameter into the client's options as text, over
 * token-store's own.
 */
export const URL_QUERY_OPTIONS: Readonly<Record<string, { accepts: RegExp, expected: string, value: (text: string) => string | number | boolean }>> = {
  connectionName: { accepts: /^/, expected: 'any text', value: (text) => text },
  family: { accepts: /^[46]$/, expected: '4 or 6', value: Number },
  enableOfflineQueue: { accepts: /^(true|false)$/, expected: 'true or false', value: (text) => text === 'true' }
}

/** A `redis:` or `rediss:` URL, as given; the error names the scheme, never the URL (it may hold a password). */
function checkRedisUrl (text: string): string {
  // The URL parser drops spaces and control characters around a URL (and some inside it), ioredis' does not: it
  // threw a TypeError quoting the whole URL, password included. A copy-paste or a quoted env file value keeps them.
  if (text.trim() !== text || /^['"]|['"]$/.test(text)) {
    throw new TokenStoreOptionsError('redis', 'the URL has spaces, line breaks or quotes around it (a copy-paste, or quotes kept from an env file?): remove them, so that the value is the URL alone')
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new TokenStoreOptionsError('redis', 'a string must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379')
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(text)) {
    throw new TokenStoreOptionsError('redis', 'the URL has spaces or control characters in it: remove them (a password with a space is written %20)')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new TokenStoreOptionsError('redis', `a URL must start with redis:// or rediss:// (TLS), not ${url.protocol}//`)
  }
  // ioredis reads the path as the database number, and a path that is not one fails every connection later.
  if (!/^\/?(\d{1,5})?$/.test(url.pathname)) {
    throw new TokenStoreOptionsError('redis', 'the URL\'s path must be a database number (redis://host:6379/0), or nothing')
  }
  // ioredis copies a query's parameters into the client's options as text: `?connectTimeout=300` became the string
  // "300", and the first connection threw an uncaught TypeError that ended the process. Only those it reads as text.
  for (const [name, text] of url.searchParams) {
    const option = Object.hasOwn(URL_QUERY_OPTIONS, name) ? URL_QUERY_OPTIONS[name] : undefined
    if (option === undefined) {
      const shown = /^[A-Za-z][A-Za-z0-9]{0,40}$/.test(name) ? ` ${name}` : ''
      throw new TokenStoreOptionsError('redis', `the URL's query parameter${shown} is not one token-store can pass on (ioredis would take it as text): ` +
        `remove it; only ${Object.keys(URL_QUERY_OPTIONS).join(', ').replace(/, ([^,]*)$/, ' and $1')} are read from the URL (for other client options, pass your own ioredis client)`)
    }
    if (!option.accepts.test(text)) throw new TokenStoreOptionsError('redis', `the URL's ${name} must be ${option.expected}`)
  }
  return text
}

/** Duck-typing an ioredis client (token-store does not import ioredis at run time). */
export function isRedisClient (value: unknown): value is RedisClient {
  const v = value as { call?: unknown, duplicate?: unknown } | null
  return typeof v === 'object' && v !== null && typeof v.call === 'function' && typeof v.duplicate === 'function'
}
