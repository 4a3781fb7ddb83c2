import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { type OAuthRoutesOptions } from '@fastify-aihubmix/oauth-routes'
import type { Redis } from 'ioredis'

export interface ComposedReadmeAppOptions {
  port: number
  provider: { baseUrl: string, clientId: string, clientSecret: string }
  /** @fastify/session's and token-store's sessionCookie secret(s), as the root README passes them (a list, newest first). */
  secret: string | string[]
  encryptionKeys?: string[]
  redis?: Redis
  keyPrefix?: string
  cookieName?: string
  oauth?: Partial<OAuthRoutesOptions>
  tokenStore?: Partial<TokenStoreOptions>
  /** Extra routes inside @fastify/session's scope. */
  sessionScope?: (scope: FastifyInstance) => void | Promise<void>
  logs?: string[]
  /** Called on the root instance before any plugin (hooks added here run on every route). */
  root?: (app: FastifyInstance) => void
}

/**
 * The app as the root README composes it (token-store with sessionCookie, the proxy outside @fastify/session's
 * scope, @fastify/session with rolling: false and saveUninitialized: false around oauth-routes), on plain http.
 */
export async function composeReadmeApp (o: ComposedReadmeAppOptions): Promise<FastifyInstance> {
  const url = `http://127.0.0.1:${o.port}`
  const cookieName = o.cookieName ?? 'sid'
  const logs = o.logs
  const app = Fastify({
    logger: logs === undefined ? false : { level: 'info', stream: { write: (line: string) => { logs.push(line) } } }
  })
  o.root?.(app)
  await app.register(fastifyCookie)
  await app.register(tokenStore, {
    encryptionKeys: o.encryptionKeys ?? ['k'.repeat(40)],
    ...(o.redis === undefined ? {} : { backend: 'redis' as const, redis: o.redis, keyPrefix: o.keyPrefix }),
    sessionCookie: { name: cookieName, secret: o.secret },
    ...o.tokenStore
  })
  await app.register(aihubmixProxy, {
    baseUrl: o.provider.baseUrl,
    clientId: o.provider.clientId,
    clientSecret: o.provider.clientSecret,
    redirectUri: `${url}/auth/callback`
  })
  await app.register(async (scope) => {
    await scope.register(fastifySession, {
      secret: o.secret,
      cookieName,
      store: scope.tokenStore.sessionStore,
      saveUninitialized: false,
      rolling: false,
      cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false }
    })
    await scope.register(oauthRoutes, { publicUrl: url, cookieName, ...o.oauth })
    if (o.sessionScope !== undefined) await o.sessionScope(scope)
  })
  await app.listen({ port: o.port, host: '127.0.0.1' })
  return app
}
