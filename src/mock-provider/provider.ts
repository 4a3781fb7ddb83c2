import { setMaxListeners } from 'node:events'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { AddressInfo } from 'node:net'
import { AppRegistry, type MockApp, type NewMockApp } from './apps.js'
import { authorizeRoutes } from './authorize.js'
import type { ProviderContext } from './context.js'
import { controlApiRoutes } from './control-api.js'
import { GrantBook } from './grants.js'
import { oauthAppsRoutes } from './oauth-apps.js'
import { MockInvalidArgumentError } from './errors.js'
import {
  DEFAULT_USER,
  checkUserPatchArgument,
  resolveOptions,
  type MockEndpoint,
  type MockFault,
  type MockProviderOptions,
  type MockUser
} from './options.js'
import { resourceRoutes } from './resources.js'
import { Switches, type MockCounts } from './switches.js'
import { tokenRoutes } from './token.js'

/** Everything secret the provider ever issued or knows, for leak sweeps. */
export interface MockIssued {
  accessTokens: string[]
  refreshTokens: string[]
  codes: string[]
  clientSecrets: string[]
  developerTokens: string[]
}

/** A running mock provider. Every instance is independent; `close()` always returns promptly. */
export interface MockProvider {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string
  /** The first accepted developer token. */
  readonly developerToken: string
  /** Registers an app in process (no HTTP call, not counted). */
  createApp (app: NewMockApp): MockApp
  /** Copies of the registered apps, secrets included. */
  readonly apps: MockApp[]
  /** Patches the signed-in user, e.g. the balance (`quota`, `used_quota`). */
  setUser (patch: Partial<MockUser>): void
  /**
   * Another user signs in at the provider (the default user with `user`'s fields, `id` required): sign-ins from
   * now on are theirs; tokens already issued keep answering for the user they were issued to.
   */
  signIn (user: Partial<MockUser> & { id: number }): void
  readonly user: MockUser
  /** Every access token issued so far now answers 401 `invalid_token`. */
  expireAccessTokens (): void
  /** Every refresh token issued so far now answers `invalid_grant`. */
  expireRefreshTokens (): void
  /** The user revokes every app: their tokens answer 401, refreshes `invalid_grant`. */
  revokeGrants (): void
  /** Delays calls of one endpoint (or all) by `ms` before anything else happens. */
  setLatency (endpoint: MockEndpoint | 'all', ms: number): void
  /** Arms a fault on one endpoint, for good or for the next `times` calls; `null` disarms. */
  setFault (endpoint: MockEndpoint, fault: MockFault | null, opts?: { times?: number }): void
  /** The envelope on or off; `errorCodes: false`: its errors are `{success: false, message}`, with no `error`. */
  setEnvelope (on: boolean, opts?: { errorCodes?: boolean }): void
  setRotation (opts: { rotate?: boolean, reuseRevokes?: boolean }): void
  /** Calls per endpoint, faulted ones included, and token calls per grant type. */
  counts (): MockCounts
  resetCounts (): void
  issued (): MockIssued
  /** Faults, latency, counts, envelope and rotation back to the start options; apps, tokens and user kept. */
  reset (): void
  close (): Promise<void>
}

/** The Fastify logger, when on: no headers, and no query string (codes, states) in request URLs. */
function loggerOptions (on: boolean): NonNullable<FastifyServerOptions['logger']> {
  if (!on) return false
  return {
    level: 'info',
    serializers: {
      req (request: { method: string, url: string }) {
        const query = request.url.indexOf('?')
        return { method: request.method, url: query === -1 ? request.url : `${request.url.slice(0, query)}?[redacted]` }
      }
    }
  }
}

function originOf (host: string, port: number): string {
  const loopback = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return `http://${loopback.includes(':') ? `[${loopback}]` : loopback}:${port}`
}

/**
 * Starts a mock AIHubMix OAuth2 provider on a real HTTP server (by default 127.0.0.1, a free
 * port). Throws `MockInvalidOptionError` naming the bad option.
 */
export async function startMockProvider (opts?: MockProviderOptions): Promise<MockProvider> {
  const options = resolveOptions(opts)
  const closing = new AbortController()
  // Every delayed or hanging request listens for it: dozens at once are normal, not a leak.
  setMaxListeners(0, closing.signal)
  const switches = new Switches({
    envelope: options.envelope,
    envelopeErrorCodes: options.envelopeErrorCodes,
    rotate: options.rotateRefreshTokens,
    reuseRevokes: options.refreshReuseRevokes
  })
  const ctx: ProviderContext = {
    options,
    apps: new AppRegistry(options.tokenPrefix),
    grants: new GrantBook(options),
    switches,
    user: { ...options.user },
    closing: closing.signal,
    baseUrl: ''
  }

  const app: FastifyInstance = Fastify({
    logger: loggerOptions(options.logger),
    // keep-alive sockets and hanging requests must not hold close() up
    forceCloseConnections: true,
    // a HEAD of /authorize must not issue a code
    exposeHeadRoutes: false
  })
  // Fastify's default 404 logs the URL with its query string
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not_found', message: 'no such endpoint' }))
  app.setErrorHandler((err: { statusCode?: number }, _request, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
    return reply.code(status).send({ error: status === 500 ? 'server_error' : 'invalid_request', message: 'the request failed' })
  })

  let closed: Promise<void> | undefined
  const provider: MockProvider = {
    get url () { return ctx.baseUrl },
    developerToken: options.developerTokens[0] as string,
    createApp: (input) => ctx.apps.create(input),
    get apps () { return ctx.apps.list() },
    setUser (patch) {
      checkUserPatchArgument(patch)
      Object.assign(ctx.user, patch)
    },
    signIn (user) {
      checkUserPatchArgument(user)
      if (user.id === undefined) throw new MockInvalidArgumentError('user.id', 'is required: each user has an id of their own')
      ctx.user = { ...DEFAULT_USER, ...user }
    },
    get user () { return { ...ctx.user } },
    expireAccessTokens: () => { ctx.grants.expireAccessTokens() },
    expireRefreshTokens: () => { ctx.grants.expireRefreshTokens() },
    revokeGrants: () => { ctx.grants.revokeAll() },
    setLatency: (endpoint, ms) => { switches.setLatency(endpoint, ms) },
    setFault: (endpoint, fault, faultOpts) => { switches.setFault(endpoint, fault, faultOpts) },
    setEnvelope: (on, envelopeOpts) => { switches.setEnvelope(on, envelopeOpts) },
    setRotation: (rotation) => { switches.setRotation(rotation) },
    counts: () => switches.counts(),
    resetCounts: () => { switches.resetCounts() },
    issued: () => ({
      ...ctx.grants.issued(),
      clientSecrets: ctx.apps.secrets(),
      developerTokens: [...options.developerTokens]
    }),
    reset: () => { switches.reset() },
    close () {
      closed ??= (async () => {
        closing.abort()
        await app.close()
      })()
      return closed
    }
  }

  await app.register(oauthAppsRoutes, { ctx })
  await app.register(authorizeRoutes, { ctx })
  await app.register(tokenRoutes, { ctx })
  await app.register(resourceRoutes, { ctx })
  // Browsers ask for it on the consent and top-up pages; answer quietly instead of a 404.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send())
  if (options.controlApi !== null) {
    await app.register(controlApiRoutes, { prefix: options.controlApi.prefix, provider })
  }

  try {
    await app.listen({ host: options.host, port: options.port })
  } catch (err) {
    await provider.close()
    throw err
  }
  ctx.baseUrl = originOf(options.host, (app.server.address() as AddressInfo).port)
  return provider
}
