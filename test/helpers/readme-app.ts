import { Writable } from 'node:stream'
import { freePort } from './free-port.js'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { loggerOptions } from '@fastify-aihubmix/oauth-routes'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'

export interface ReadmeApp {
  /** http://127.0.0.1:PORT */
  url: string
  app: FastifyInstance
  mock: MockProvider
  /** Every log line the app wrote (JSON strings), through oauth-routes' `loggerOptions()`. */
  logs: string[]
}

export interface ReadmeAppOptions {
  /** @fastify/session's cookieName (and token-store's, oauth-routes'). */
  cookieName: string
  /** @fastify/session's cookie.secure. */
  secure: boolean | 'auto'
  /** publicUrl from the app's own URL (default: that URL). */
  publicUrl?: (url: string) => string
}

/**
 * An app composed as the README's snippets compose one (token-store with `sessionCookie`, the proxy, and
 * @fastify/session around oauth-routes), listening on plain http at 127.0.0.1, against a mock provider, with
 * Fastify's own request logging through oauth-routes' `loggerOptions()`. Closed at teardown.
 */
export async function startReadmeApp (t: { teardown: (fn: () => unknown) => void }, options: ReadmeAppOptions): Promise<ReadmeApp> {
  const mock = await startMockProvider({ tokenPrefix: 'leakcanary' })
  t.teardown(() => mock.close())
  const logs: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { logs.push(chunk.toString()); cb() } })
  const secret = 's'.repeat(40)
  const app = Fastify({ logger: { ...loggerOptions({ level: 'info' }), stream }, trustProxy: 'loopback' })
  t.teardown(() => app.close())
  // The URLs need the port before the plugins are registered.
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const publicUrl = options.publicUrl === undefined ? url : options.publicUrl(url)
  const demo = mock.createApp({ name: 'readme app', redirectUri: `${publicUrl}/auth/callback` })
  const { cookieName } = options
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: secret, sessionCookie: { name: cookieName, secret } })
  await app.register(aihubmixProxy, { baseUrl: mock.url, clientId: demo.clientId, clientSecret: demo.clientSecret, redirectUri: demo.redirectUri })
  await app.register(async (scope) => {
    await scope.register(fastifySession, {
      secret,
      cookieName,
      store: scope.tokenStore.sessionStore,
      saveUninitialized: false,
      rolling: false,
      cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: options.secure }
    })
    await scope.register(oauthRoutes, { publicUrl, cookieName })
  })
  await app.listen({ port, host: '127.0.0.1' })
  return { url, app, mock, logs }
}
