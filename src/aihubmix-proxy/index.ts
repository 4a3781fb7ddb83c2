import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createAihubmixClient, type AihubmixClient } from './client.js'
import { createCallAsUser } from './call-as-user.js'
import { resolveOptions, type ProxyOptionsInput } from './options.js'
import { proxyRoutes } from './routes.js'
import type { Topup, UserInfo } from './schemas.js'

export * from './errors.js'
export * from './options.js'
export * from './schemas.js'
export { createAihubmixClient } from './client.js'
export type { AihubmixClient, AuthorizeUrlParams, CodeExchangeParams, UpstreamSignal } from './client.js'
export { publicErrorOf, sendPublicError } from './routes.js'
export type { PublicError } from './routes.js'
export type { CallAsUser } from './call-as-user.js'
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
  fastify.addHook('onClose', async () => { await client.close() })

  await fastify.register(proxyRoutes, { prefix: options.prefix, options, client, callAsUser })
}

export const aihubmixProxyPlugin = fp(aihubmixProxy, {
  fastify: '5.x',
  name: '@fastify-aihubmix/aihubmix-proxy',
  decorators: { request: ['tokens'] },
  dependencies: ['@fastify-aihubmix/token-store']
})

export { aihubmixProxyPlugin as aihubmixProxy }
export default aihubmixProxyPlugin
