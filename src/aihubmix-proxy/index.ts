import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createAihubmixClient, type AihubmixClient } from './client.js'
import { createCallAsUser } from './call-as-user.js'
import { resolveOptions, type ProxyOptionsInput } from './options.js'
import { proxyRoutes } from './routes.js'
import type { Topup, UserInfo } from './schemas.js'
import { ProxyRegisteredTwiceError, ProxyRegistrationError } from './errors.js'

// The public surface, named one by one (test/packaging.test.ts holds the list): the plugin, the error classes,
// the public error bodies, the diagnostics channel, and the types of the options, decorators and answers. The
// client's construction, option resolution and the provider's schemas and their compiled checkers stay inside.
export {
  UpstreamError,
  UpstreamStatusError,
  UpstreamInvalidResponseError,
  UpstreamBodyTooLargeError,
  UpstreamUnreachableError,
  UpstreamBusyError,
  UpstreamTimeoutError,
  UpstreamUnauthorizedError,
  InsufficientScopeError,
  TokenEndpointError,
  CsrfHeaderRequiredError,
  ProxyOptionsError,
  ProxyRegisteredTwiceError,
  ProxyRegistrationError
} from './errors.js'
export type { UserInfo, Topup } from './schemas.js'
export type { AihubmixClient, AuthorizeUrlParams, CodeExchangeParams, UpstreamSignal } from './client.js'
export { publicErrorOf, sendPublicError } from './routes.js'
export type { PublicError } from './routes.js'
export { UPSTREAM_CHANNEL } from './diagnostics.js'
export type { UpstreamTraceContext, UpstreamEndpoint, UpstreamStatus } from './diagnostics.js'

export type AihubmixProxyOptions = ProxyOptionsInput

/** What a host app's own routes can do as the signed-in user. */
export interface RequestAihubmix {
  userinfo (): Promise<UserInfo>
  topup (): Promise<Topup>
  /** Any provider call with the user's access token, with refresh-before-use and one retry after a 401. */
  call<T> (fn: (accessToken: string) => Promise<T>): Promise<T>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The AIHubMix provider client (token endpoint, userinfo, top-up). */
    aihubmix: AihubmixClient
  }
  interface FastifyRequest {
    /** Calls to the provider as the signed-in user; tokens never leave the server. */
    aihubmix: RequestAihubmix
  }
}

async function aihubmixProxy (fastify: FastifyInstance, opts: AihubmixProxyOptions): Promise<void> {
  // Before anything is made (a connection pool): Fastify's own refusal comes at the decorator, and names only it.
  if (fastify.hasDecorator('aihubmix')) throw new ProxyRegisteredTwiceError()
  if (!fastify.hasDecorator('tokenStore') || !fastify.hasRequestDecorator('tokens')) {
    throw new ProxyRegistrationError('@fastify-aihubmix/token-store registered before it (app.tokenStore is missing)')
  }
  const options = resolveOptions(opts)
  const client = createAihubmixClient(options)
  const callAsUser = createCallAsUser(client)

  fastify.decorate('aihubmix', client)
  fastify.decorateRequest('aihubmix', {
    getter (this: FastifyRequest): RequestAihubmix {
      const request = this
      return {
        userinfo: () => callAsUser(request, client.userinfo),
        topup: () => callAsUser(request, client.topup),
        call: (fn) => callAsUser(request, fn)
      }
    }
  })
  fastify.addHook('onClose', async () => {
    // Said, so that an operator knows why a close takes this long: the process is waiting for a rotated refresh token.
    const waiting = client.pendingRefreshAnswers()
    if (waiting > 0) {
      fastify.log.info(`aihubmix-proxy: closing once ${waiting === 1 ? 'a refresh answer' : `${waiting} refresh answers`} still on the way ` +
        `${waiting === 1 ? 'has' : 'have'} come (at most refreshGraceMs, ${options.refreshGraceMs} ms): each holds a refresh token the provider has rotated`)
    }
    await client.close()
  })
  if (options.routes !== false) {
    // The routes read the session through token-store: from the signed cookie (its `sessionCookie`), or from
    // @fastify/session where it runs. With neither where the routes are (@fastify/session registered in a scope of
    // its own, as the sign-in's), every call answered 401 while the sign-in worked: said once, at start.
    fastify.addHook('onReady', async () => {
      if (fastify.hasRequestDecorator('session') || fastify.tokenStore.sessionCookieName !== undefined) return
      fastify.log.warn('aihubmix-proxy: its routes can see no session, so each answers 401: token-store has no sessionCookie, ' +
        'and @fastify/session is not registered where the proxy is. Fix: give token-store sessionCookie: { name, secret } ' +
        '(@fastify/session\'s cookieName and secret), or register @fastify/session before aihubmix-proxy, in the same scope')
    })
  }

  if (options.routes !== false) {
    // Where the routes end up, for oauth-routes to refuse the same prefix in words (two not-found handlers under
    // one prefix make Fastify throw, uncaught, `Method 'ACL' already declared for route '/api/*'`).
    fastify.decorate(PROXY_ROUTES_BASE, fastify.prefix.replace(/\/$/, '') + options.prefix)
  }
  await fastify.register(proxyRoutes, { prefix: options.prefix, options, client, callAsUser })
}

/** Where this plugin's routes are, read by oauth-routes (`Symbol.for`: two installed copies agree on it). */
const PROXY_ROUTES_BASE = Symbol.for('@fastify-aihubmix/aihubmix-proxy.routes-base')

const aihubmixProxyPlugin = fp(aihubmixProxy, {
  fastify: '5.x',
  name: '@fastify-aihubmix/aihubmix-proxy'
  // No `dependencies`, no `decorators`: token-store is checked by the plugin itself (ProxyRegistrationError), whose
  // message names the order. fastify-plugin's said "The dependency ... is not registered" to an app that registered
  // it after the proxy, and a missing decorator's ("The decorator 'tokens' required by ...") named no plugin.
})

export { aihubmixProxyPlugin as aihubmixProxy }
export default aihubmixProxyPlugin
