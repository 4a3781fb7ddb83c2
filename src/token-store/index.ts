import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { KVStore } from './kv-store.js'
import type { RequestTokens } from './request-tokens.js'
import type { TokenStore } from './token-store.js'
import type { TokenStoreOptions } from './options.js'
import type { ResolvedTokenStoreOptions } from './options.js'
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, isRedisClient, resolveOptions } from './options.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import { RequestTokensImpl } from './request-tokens.js'
import { TokenStoreCore } from './token-store.js'
import { KeyLayout } from './keys.js'
import { TokenStoreOptionsError, TokenStoreRegisteredTwiceError } from './errors.js'
import { logConnectionErrors } from './connection-errors.js'
import { keyListInOneString, missingKeyPrefix, unknownKeyPrefix } from './crypto.js'
import { connectRedisUrl, warnReadonlyReplies } from './redis-url.js'
import { warnIfRedisEvicts, warnWhenRedisIsFull } from './redis-memory.js'

// The public surface, named one by one (test/packaging.test.ts holds the list): the plugin, createTokenStore,
// the option defaults and schema, the error classes, the diagnostics channels, and the types of all of these.
// The store's parts (KV backends, key layout, key ring, client-side cache, option resolution) stay inside.
export type { TokenSet, Refresher, GetFreshOptions } from './token-set.js'
export { refreshWindowMs } from './token-set.js'
export type { TokenStore } from './token-store.js'
export type { RequestTokens } from './request-tokens.js'
export type { SessionStoreLike, SessionData } from './session-store.js'
export type { SessionCheck, SessionVerdict } from './cookie-sessions.js'
export type { UserSession, UserSessionInfo, SessionOwner, LastSeenReader } from './user-sessions.js'
export { MAX_USER_AGENT_LENGTH } from './user-sessions.js'
export type {
  TokenStoreOptions,
  SessionCookieOptions,
  RedisClientCacheOptions,
  TokenStoreHooks,
  RefreshEvent,
  RefreshFailedEvent,
  RevokedEvent
} from './options.js'
export {
  TokenStoreOptionsSchema,
  DEFAULT_BACKEND,
  DEFAULT_KEY_PREFIX,
  DEFAULT_REFRESH_SKEW_MS,
  DEFAULT_REFRESH_TOKEN_TTL_MS,
  DEFAULT_SESSION_TTL_MS,
  DEFAULT_LOCK_LEASE_MS,
  DEFAULT_LOCK_WAIT_MS,
  DEFAULT_REFRESH_BACKOFF_MS,
  DEFAULT_REFRESH_BACKOFF_MAX_MS,
  DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  DEFAULT_OPENED_CACHE_SIZE,
  DEFAULT_CLIENT_CACHE_ENTRIES,
  DEFAULT_CLIENT_CACHE_MAX_AGE_MS,
  DEFAULT_MAX_SESSIONS_PER_USER
} from './options.js'
export type { EncryptionKeyInput } from './crypto.js'
export type { RedisClient } from './redis-store.js'
export { isUserId } from './keys.js'
export { REFRESH_CHANNEL, REFRESH_LOCK_WAIT_CHANNEL, STORE_ERROR_CHANNEL } from './diagnostics.js'
export type { RefreshTraceContext, RefreshOutcome, RefreshLockWaitMessage, StoreErrorMessage } from './diagnostics.js'
export {
  UnauthenticatedError,
  ReauthRequiredError,
  RefreshRejectedError,
  StoreUnavailableError,
  RefreshBusyError,
  RefreshBackoffError,
  TokenStoreOptionsError,
  TokenStoreRegisteredTwiceError,
  UnsealFailedError,
  TokenStoreArgumentError,
  NoSessionError,
  InsecureSessionCookieError,
  errorInfo,
  errorLogFields
} from './errors.js'
export type { UnsealFailure } from './errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The token store (@fastify-aihubmix/token-store). */
    tokenStore: TokenStore
  }
  interface FastifyRequest {
    /**
     * The token store bound to this request's session: @fastify/session's `request.session.sessionId`, or, on
     * routes outside @fastify/session's scope, the session read from the signed cookie (`sessionCookie` option).
     */
    tokens: RequestTokens
  }
}

/** A TokenStore that owns its KV store: `close()` releases what it created (never a redis client it was given). */
export interface StandaloneTokenStore extends TokenStore {
  close (): Promise<void>
}

export interface CreateTokenStoreExtras {
  /** Where warnings go (unreadable values, hook errors, Redis trouble). Default: nowhere. */
  logger?: FastifyBaseLogger | undefined
}

/**
 * A token store without Fastify (scripts, tests of other packages). `backend: 'redis'` needs the `redis` option here.
 */
export function createTokenStore (options: TokenStoreOptions, extras: CreateTokenStoreExtras = {}): StandaloneTokenStore {
  const resolved = resolveOptions(options)
  if (resolved.redisUrl !== undefined) {
    throw new TokenStoreOptionsError('redis', 'a URL is for the plugin, which makes its client; createTokenStore needs an ioredis client')
  }
  if (resolved.backend === 'redis' && resolved.redis === undefined) {
    throw new TokenStoreOptionsError('redis', 'backend "redis" needs a `redis` client')
  }
  const log = extras.logger ?? silentLogger()
  const kv = createKV(resolved, log)
  const core = new TokenStoreCore({ kv, options: resolved, log })
  const closeCore = core.close.bind(core)
  return Object.assign(core, {
    close: async () => {
      await closeCore()
      await kv.close()
    }
  })
}

function createKV (options: ResolvedTokenStoreOptions, log: FastifyBaseLogger): KVStore {
  if (options.backend === 'memory' || options.redis === undefined) return new MemoryStore()
  const keys = new KeyLayout(options.keyPrefix)
  const cache = options.redisClientCache
  return new RedisStore({
    client: options.redis,
    lockChannel: keys.lockChannel,
    commandTimeoutMs: options.redisCommandTimeoutMs,
    // Redis announces changes to every key of a session or a user (`<prefix>{...`, keys.ts); the cache keeps only
    // what the hot path reads through getMany (session records and token sets), and only their writes wait for
    // the fence. Login-state records are outside the prefix.
    clientCache: cache === undefined ? undefined : { prefix: keys.sessionPrefix, cacheable: (key) => keys.isHotRead(key), maxEntries: cache.maxEntries, maxAgeMs: cache.maxAgeMs },
    log,
    // A client given (the one made from a URL has ioredis' socketTimeout): said once when a command times out.
    adviseSocketTimeout: options.redisUrl === undefined
  })
}

/**
 * One info line per key that looks like a raw key without its prefix, one warning per key with a prefix that is no
 * key format (either is used as a passphrase).
 */
function warnKeysWithoutPrefix (input: unknown, log: FastifyBaseLogger): void {
  const list: unknown[] = Array.isArray(input) ? input : [input]
  list.forEach((key, i) => {
    const path = Array.isArray(input) ? `encryptionKeys[${i}]` : 'encryptionKeys'
    const listed = keyListInOneString(key)
    if (listed !== undefined) {
      log.warn(`token-store: ${path} reads like ${listed} keys separated by commas, but a string is one key: the whole ` +
        'value is used as one passphrase. Fix: give a list as an array (e.g. process.env.TOKEN_ENCRYPTION_KEY.split(\',\').map((k) => k.trim())), ' +
        'or keep it as it is if it is one passphrase with commas in it')
      return
    }
    const unknown = unknownKeyPrefix(key)
    if (unknown !== undefined) {
      log.warn(`token-store: ${path} starts with "${unknown}", which is not a key format ("base64:" and "hex:" are; ` +
        '"base64:" reads base64url too): the whole value is used as a passphrase. Fix: write "base64:<key>" or ' +
        '"hex:<key>" before the first start, or keep it as it is once values are sealed with it')
      return
    }
    const prefix = missingKeyPrefix(key)
    if (prefix === undefined) return
    log.info(`token-store: ${path} looks like a ${prefix.slice(0, -1)} key without "${prefix}": it is used as a passphrase ` +
      `(safe, but "${prefix}<it>" would be another key). Keep it as it is once values are sealed with it, or write ` +
      `"${prefix}<key>" before the first start`)
  })
}

const plugin: FastifyPluginAsync<TokenStoreOptions> = async function tokenStorePlugin (fastify: FastifyInstance, opts: TokenStoreOptions) {
  // Before anything is made (a second Redis client): Fastify's own refusal comes at the decorator, and names only it.
  if (fastify.hasDecorator('tokenStore')) throw new TokenStoreRegisteredTwiceError()
  const options = resolveOptions(opts)
  if (options.backend === 'redis' && options.redis === undefined && options.redisUrl === undefined) {
    const decorated = fastify.hasDecorator('redis') ? (fastify as unknown as { redis: unknown }).redis : undefined
    if (!isRedisClient(decorated)) {
      throw new TokenStoreOptionsError('redis', 'backend "redis" needs a `redis` client option, or @fastify/redis registered before this plugin')
    }
    options.redis = decorated
  }
  if (options.sessionCookie !== undefined) {
    // Checked once everything is registered, so @fastify/cookie may come before or after this plugin, in its scope or a
    // parent's. One registered in a child scope only (in the same register block as @fastify/session) is not seen here.
    fastify.addHook('onReady', async function checkCookiePlugin () {
      if (!fastify.hasRequestDecorator('cookies')) {
        throw new TokenStoreOptionsError('sessionCookie', 'needs @fastify/cookie where token-store is (it parses the cookie): ' +
          'register @fastify/cookie before token-store, in token-store\'s scope or a parent of it (one registered only in a ' +
          'child scope, such as beside @fastify/session, is not seen there)')
      }
    })
  }
  warnKeysWithoutPrefix(opts.encryptionKeys, fastify.log)
  if (opts.backend === undefined && opts.redis === undefined) {
    // Checked once everything is registered: @fastify/redis may come after this plugin.
    fastify.addHook('onReady', async function checkUnusedRedis () {
      if (fastify.hasDecorator('redis')) {
        fastify.log.warn('token-store: @fastify/redis is registered, but sessions and token sets live in this process\'s memory, ' +
          'so other instances see none of them. Fix: pass backend: \'redis\' to token-store (or backend: \'memory\' if that is meant)')
      } else {
        // Said once, at info (backend: 'memory' says it is meant, and says nothing): an app deployed on several
        // instances without its Redis URL would otherwise sign users out whenever another instance answers.
        fastify.log.info('token-store: sessions and token sets live in this process\'s memory (no redis option): for one ' +
          'instance, and they end when it restarts. For several instances, give token-store redis: a Redis URL or client')
      }
    })
  }
  // Made once every check above has passed, closed at the end of this plugin's onClose (after the store is done).
  const owned = options.redisUrl === undefined
    ? undefined
    : await connectRedisUrl(options.redisUrl, fastify.log, options.redisCommandTimeoutMs)
  if (owned !== undefined) options.redis = owned
  const kv = createKV(options, fastify.log)
  const store = new TokenStoreCore({ kv, options, log: fastify.log })
  if (options.backend === 'redis') {
    const stopLogging = logConnectionErrors(options.redis, fastify.log)
    if (stopLogging !== undefined) fastify.addHook('onClose', async function stopLoggingRedisErrors () { stopLogging() })
    // A client given (not made from a URL, whose client reconnects on READONLY itself): say once what a failover needs.
    const stopWatching = owned === undefined ? warnReadonlyReplies(store, options.redis, fastify.log) : undefined
    if (stopWatching !== undefined) fastify.addHook('onClose', async function stopWatchingReadonly () { stopWatching() })
    // A full Redis: why every request answers 503, once a minute; a Redis that would evict: said once at start.
    const stopWatchingMemory = warnWhenRedisIsFull(store, fastify.log)
    fastify.addHook('onClose', async function stopWatchingRedisMemory () { stopWatchingMemory() })
    const client = options.redis
    fastify.addHook('onReady', async function checkRedisEviction () {
      // Not awaited: Redis down or slow at start delays nothing (the line comes when INFO is answered).
      warnIfRedisEvicts(client, fastify.log).catch(() => {})
    })
  }
  const clientCache = kv instanceof RedisStore ? kv.clientCache : undefined
  if (clientCache !== undefined) {
    // Start with the cache tracking, so that the first requests are already answered from it; Redis being slow
    // or down delays the start by redisCommandTimeoutMs at most (the store then works uncached until it is back).
    fastify.addHook('onReady', async function clientCacheTracking () {
      const live = await clientCache.whenLive(options.redisCommandTimeoutMs > 0 ? options.redisCommandTimeoutMs : DEFAULT_REDIS_COMMAND_TIMEOUT_MS)
      if (!live && !clientCache.refused) {
        fastify.log.warn('token-store: the Redis client-side cache is not tracking yet; reading every value from Redis until it is')
      }
    })
  }

  fastify.decorate('tokenStore', store as TokenStore)

  // One RequestTokens per request, created on first use, kept in a request slot under a symbol of this plugin
  // instance (no module state). Not a WeakMap keyed by the request: a WeakMap entry per request makes work for the
  // garbage collector (ephemerons) that showed in `npm run bench`; a declared slot makes none.
  const slot = Symbol('@fastify-aihubmix/token-store request.tokens')
  fastify.decorateRequest(slot, null)
  fastify.decorateRequest('tokens', {
    getter (this: FastifyRequest): RequestTokens {
      const request = this as FastifyRequest & Record<typeof slot, RequestTokens | null>
      let tokens = request[slot]
      if (tokens === null) {
        tokens = new RequestTokensImpl(store, this)
        request[slot] = tokens
      }
      return tokens
    }
  })

  // Fastify runs this plugin's onClose once its server has closed, and a keep-alive connection answering a request
  // when close() began kept that waiting for the server's keepAliveTimeout (72 s by default) after the answer: an
  // orchestrator's grace period (Kubernetes: 30 s) killed the process before the rotated sets still held here were
  // stored. From preClose on, a connection that has answered is let go (within about a second: Node's own timer).
  fastify.addHook('preClose', async function letKeepAliveConnectionsGo () {
    const server = fastify.server as { keepAliveTimeout?: unknown } | undefined
    if (typeof server?.keepAliveTimeout === 'number') server.keepAliveTimeout = 1
  })
  fastify.addHook('onClose', async () => {
    await store.close()
    await kv.close()
    owned?.disconnect()
  })
}

/**
 * The plugin. Decorates `fastify.tokenStore` and `request.tokens`. Register @fastify/session with
 * `store: fastify.tokenStore.sessionStore` after it (one store round trip per request); with the `sessionCookie`
 * option, routes registered outside @fastify/session's scope read the session from the cookie themselves.
 */
export const tokenStore = fp(plugin, {
  name: '@fastify-aihubmix/token-store',
  fastify: '5.x'
})

export default tokenStore

function silentLogger (): FastifyBaseLogger {
  const noop = (): void => {}
  const logger: FastifyBaseLogger = {
    level: 'silent',
    fatal: noop,
    error: noop,
    warn: noop,
    info: noop,
    debug: noop,
    trace: noop,
    silent: noop,
    child: () => logger
  }
  return logger
}
