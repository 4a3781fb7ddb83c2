import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { Redis } from 'ioredis'
import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { publicErrorOf, sendPublicError, type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, {
  loggerOptions as redactingLoggerOptions,
  redactUrl,
  type OAuthRoutesOptions,
  type RedactingLoggerOptions
} from '@fastify-aihubmix/oauth-routes'
import type { ExampleConfig, ProviderConfig } from 'aihubmix-oauth'
import { pageRoutes } from './page.js'
import { useLazyRequestLoggers } from './request-logger.js'

export interface BuildOptions {
  config: ExampleConfig
  /** The provider to talk to: the real one from the config, or the embedded mock's demo app. */
  provider: ProviderConfig
  /** Pino options or `false`; defaults to the config's level with redaction. Tests pass a stream. */
  logger?: FastifyServerOptions['logger'] | undefined
  /** An existing ioredis client to use instead of REDIS_URL (tests). Not closed by the app. */
  redis?: Redis | undefined
  /** Extra aihubmix-proxy options (tests shorten `timeoutMs`). */
  proxy?: Partial<AihubmixProxyOptions> | undefined
  /** Extra token-store options (hooks, refresh skew, key prefix). */
  tokenStore?: Partial<TokenStoreOptions> | undefined
  /** Extra oauth-routes options (hooks, state lifetime). */
  oauth?: Partial<OAuthRoutesOptions> | undefined
}

/** Request logs redact `code`, `state`, `returnTo`, cookies and `Authorization` (oauth-routes' `loggerOptions`). */
export function loggerOptions (level: string): RedactingLoggerOptions {
  return redactingLoggerOptions({ level })
}
export { redactUrl }

export async function buildApp (opts: BuildOptions): Promise<FastifyInstance> {
  const { config, provider } = opts
  const app = Fastify({
    logger: opts.logger ?? loggerOptions(config.logLevel),
    trustProxy: config.trustProxy,
    // Never let a body or a URL grow without bound.
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 200 }
  })
  // No per-request child logger unless a request writes a line at an enabled level.
  useLazyRequestLoggers(app)

  // Set first, so every plugin's routes inherit it: outside /api too (/auth/*, the page),
  // errors answer the same `{error, message}` JSON, a fixed code and words, never an internal message.
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    if (publicErrorOf(err).statusCode >= 500) request.log.error({ err: { code: err.code, message: err.message } }, 'request failed')
    return sendPublicError(reply, err)
  })
  // Fastify's own 404 body quotes the method and URL (a callback's code and state with it): the same
  // `{error, message}` as everywhere else instead, naming nothing of the request.
  app.setNotFoundHandler(async (_request, reply) => {
    return await reply.code(404).send({ error: 'not_found', message: 'No such route.' })
  })

  const secure = config.publicUrl.startsWith('https:')
  // `__Host-` pins the cookie to this exact origin (Secure, Path=/, no Domain).
  const cookieName = secure ? '__Host-sid' : 'sid'

  await app.register(fastifyCookie)

  const redisClient = opts.redis ?? (config.redisUrl === undefined ? undefined : await redisInBackground(app, config.redisUrl))
  const useRedis = redisClient !== undefined

  await app.register(tokenStore, {
    encryptionKeys: config.tokenEncryptionKeys,
    ...(useRedis ? { backend: 'redis' as const } : {}),
    ...(redisClient !== undefined ? { redis: redisClient } : {}),
    // REDIS_CLIENT_CACHE=on: steady-state requests answered without a Redis round trip (see token-store's README).
    ...(useRedis && config.redisClientCache ? { redisClientCache: true } : {}),
    // The proxy's routes are registered outside @fastify/session's scope (below): there token-store reads the
    // session from the signed cookie itself, one store read per request and nothing built or written back.
    sessionCookie: { name: cookieName, secret: config.sessionSecret },
    ...opts.tokenStore
  })

  await app.register(aihubmixProxy, {
    baseUrl: provider.baseUrl,
    clientId: provider.clientId,
    clientSecret: provider.clientSecret,
    redirectUri: config.redirectUri,
    scope: config.scope,
    allowInsecureHttp: !config.production,
    ...opts.proxy
  })

  // Everything that writes sessions (sign-in, sign-out) and the page: with @fastify/session.
  await app.register(async function withSessions (scope) {
    await scope.register(fastifySession, {
      secret: config.sessionSecret,
      cookieName,
      store: scope.tokenStore.sessionStore,
      // Only a changed session is saved.
      saveUninitialized: false,
      rolling: false,
      cookie: {
        path: '/',
        httpOnly: true,
        sameSite: 'lax',
        secure,
        maxAge: 7 * 24 * 3600 * 1000
      }
    })

    await scope.register(oauthRoutes, {
      publicUrl: config.publicUrl,
      cookieName,
      ...opts.oauth
    })

    await scope.register(pageRoutes, { providerOrigin: new URL(provider.baseUrl).origin })
  })

  return app
}

/**
 * The ioredis client for REDIS_URL, made here rather than by @fastify/redis: @fastify/redis holds the start until
 * Redis is 'ready', so a Redis that is down at start became "Plugin did not start in time: '@fastify/redis'" after
 * avvio's timeout. This one waits for the first attempt only (no 503 at start while Redis is up), and then the
 * server starts either way: while Redis is down every route that needs the store answers 503 store_unavailable
 * (no offline queue: commands fail at once) and ioredis keeps reconnecting, so the server heals by itself. One
 * warning names REDIS_URL (without its password) when Redis is unreachable, one line says when it is back.
 * Decorated as `fastify.redis`, as @fastify/redis would, for token-store and the app's own routes.
 */
async function redisInBackground (app: FastifyInstance, url: string): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    // Fail fast while Redis is down (503s), reconnect on its own when it is back.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    // Commands of concurrent requests issued in the same tick go out in one write (one syscall).
    enableAutoPipelining: true
  })
  const shown = redisUrlForLogs(url)
  let unreachable = false
  client.on('error', (err: Error & { code?: string }) => {
    if (unreachable) return
    unreachable = true
    app.log.warn(`REDIS_URL ${shown} is unreachable (${err.code ?? err.message}): answering 503 store_unavailable until it is; reconnecting in the background`)
  })
  client.on('ready', () => {
    if (!unreachable) return
    unreachable = false
    app.log.info(`REDIS_URL ${shown} is reachable again`)
  })
  const firstAttempt = new Promise<void>((resolve) => {
    client.once('ready', resolve)
    client.once('error', () => resolve())
  })
  client.connect().catch(() => {}) // failures are 'error' events, reconnection is ioredis' own
  await firstAttempt
  app.decorate('redis', client as never) // typed by @fastify/redis where it is loaded
  app.addHook('onClose', async () => {
    client.disconnect()
  })
  return client
}

/** REDIS_URL without its credentials. */
function redisUrlForLogs (url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    return parsed.href
  } catch {
    return '(unparsable)'
  }
}
