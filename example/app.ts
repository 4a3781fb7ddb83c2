import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import type { Redis } from 'ioredis'
import tokenStore, { errorLogFields, type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { publicErrorOf, sendPublicError, type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, {
  loggerOptions as redactingLoggerOptions,
  redactUrl,
  type OAuthRoutesOptions,
  type RedactingLoggerOptions
} from '@fastify-aihubmix/oauth-routes'
import type { ExampleConfig, ProviderConfig } from 'aihubmix-oauth'
import { redirectOtherLoopbackNames } from './loopback.js'
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
    routerOptions: { maxParamLength: 200 },
    // A URL the router cannot take (bad percent-encoding, a parameter over maxParamLength) answers the same
    // {error, message} as everything else: Fastify's own body quotes the URL, and a callback's carries the code.
    frameworkErrors: (err, _request, reply) => {
      sendPublicError(reply, err)
    }
  })
  // No per-request child logger unless a request writes a line at an enabled level.
  useLazyRequestLoggers(app)

  // Set first, so every plugin's routes inherit it: outside /api too (/auth/*, the page),
  // errors answer the same `{error, message}` JSON, a fixed code and words, never an internal message.
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    if (publicErrorOf(err).statusCode >= 500) request.log.error({ err: errorLogFields(err) }, 'request failed')
    return sendPublicError(reply, err)
  })
  // Fastify's own 404 body quotes the method and URL (a callback's code and state with it): the same
  // `{error, message}` as everywhere else instead, naming nothing of the request.
  app.setNotFoundHandler(async (_request, reply) => {
    return await reply.code(404).send({ error: 'not_found', message: 'No such route.' })
  })

  // The page opened under the other loopback name (localhost for 127.0.0.1, or the other way round): to PUBLIC_URL
  // first, where a sign-in can finish.
  redirectOtherLoopbackNames(app, config.publicUrl)

  const secure = config.publicUrl.startsWith('https:')
  // `__Host-` pins the cookie to this exact origin (Secure, Path=/, no Domain).
  const cookieName = secure ? '__Host-sid' : 'sid'

  await app.register(fastifyCookie)

  // REDIS_URL as it is: token-store makes the client, and the server starts while Redis is down (503 until it is up).
  const redis = opts.redis ?? config.redisUrl
  const useRedis = redis !== undefined

  await app.register(tokenStore, {
    encryptionKeys: config.tokenEncryptionKeys,
    ...(useRedis ? { backend: 'redis' as const, redis } : {}),
    // REDIS_CLIENT_CACHE=on: steady-state requests answered without a Redis round trip (see token-store's README).
    ...(useRedis && config.redisClientCache ? { redisClientCache: true } : {}),
    // The proxy's routes are registered outside @fastify/session's scope (below): there token-store reads the
    // session from the signed cookie itself, one store read per request and nothing built or written back.
    sessionCookie: { name: cookieName, secret: config.sessionSecrets },
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

  // The page and its assets need no session: outside @fastify/session's scope, a signed-in browser's page and
  // script cost no store read, and they load while Redis is down (the page then says what is wrong).
  await app.register(pageRoutes, { providerOrigin: new URL(provider.baseUrl).origin })

  // Everything that writes sessions (sign-in, sign-out): with @fastify/session.
  await app.register(async function withSessions (scope) {
    await scope.register(fastifySession, {
      secret: config.sessionSecrets,
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
  })

  return app
}
