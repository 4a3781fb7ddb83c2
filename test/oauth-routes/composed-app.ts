import { Writable } from 'node:stream'
import { freePort } from '../helpers/free-port.js'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { loggerOptions } from '@fastify-aihubmix/oauth-routes'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { TestBrowser, type Answer } from '../helpers/browser.js'

// The README's composition (token-store with sessionCookie, the proxy, @fastify/session around oauth-routes) on
// plain http at 127.0.0.1 against a mock provider, with one thing or another composed wrong on purpose.

export interface ComposedApp {
  url: string
  app: FastifyInstance
  mock: MockProvider
  /** Every log line the app wrote, parsed. */
  logs: () => Array<{ level: number, msg: string }>
  /** A redirect-mode sign-in: the callback's answer. */
  signIn: (browser: TestBrowser) => Promise<Answer>
}

export interface Composition {
  /** @fastify/session's cookieName (default 'sid'). */
  sessionCookie?: string
  /** token-store's sessionCookie.name (default: @fastify/session's); null: no sessionCookie at all. */
  tokenStoreCookie?: string | null
  /** oauth-routes' cookieName (default: @fastify/session's). */
  routesCookie?: string
  /** Give @fastify/session token-store's store (default true); false: its own MemoryStore. */
  tokenStoreSessions?: boolean
  /** The client secret given to aihubmix-proxy (default: the mock app's own). */
  clientSecret?: string
  /** More token-store options (a `redis` client, a `keyPrefix`). */
  tokenStore?: Partial<TokenStoreOptions>
  /** More aihubmix-proxy options (a `revocationUrl`). */
  proxy?: Partial<AihubmixProxyOptions>
  /** Routes of the user's own in the @fastify/session scope, after oauth-routes. */
  scopeRoutes?: (scope: FastifyInstance) => void
}

export async function startComposedApp (t: { teardown: (fn: () => unknown) => void }, c: Composition = {}): Promise<ComposedApp> {
  const mock = await startMockProvider({ tokenPrefix: 'leakcanary' })
  t.teardown(() => mock.close())
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb() } })
  const secret = 's'.repeat(40)
  const app = Fastify({ logger: { ...loggerOptions({ level: 'info' }), stream } })
  t.teardown(() => app.close())
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const demo = mock.createApp({ name: 'composed app', redirectUri: `${url}/auth/callback` })
  const cookieName = c.sessionCookie ?? 'sid'
  const tokenStoreCookie = c.tokenStoreCookie === undefined ? cookieName : c.tokenStoreCookie
  await app.register(fastifyCookie)
  await app.register(tokenStore, {
    encryptionKeys: secret,
    ...c.tokenStore,
    ...(tokenStoreCookie === null ? {} : { sessionCookie: { name: tokenStoreCookie, secret } })
  })
  await app.register(aihubmixProxy, {
    baseUrl: mock.url,
    clientId: demo.clientId,
    clientSecret: c.clientSecret ?? demo.clientSecret,
    redirectUri: demo.redirectUri,
    ...c.proxy
  })
  await app.register(async (scope) => {
    await scope.register(fastifySession, {
      secret,
      cookieName,
      ...(c.tokenStoreSessions === false ? {} : { store: scope.tokenStore.sessionStore }),
      saveUninitialized: false,
      rolling: false,
      cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: 'auto' }
    })
    await scope.register(oauthRoutes, { publicUrl: url, cookieName: c.routesCookie ?? cookieName })
    c.scopeRoutes?.(scope)
  })
  await app.listen({ port, host: '127.0.0.1' })
  return {
    url,
    app,
    mock,
    logs: () => lines.map((l) => JSON.parse(l) as { level: number, msg: string }),
    async signIn (browser) {
      const start = await browser.get(`${url}/auth/login`)
      const authorize = await browser.get(TestBrowser.location(start))
      return await browser.get(TestBrowser.location(authorize))
    }
  }
}

/** The lines at `level` and above (40 warn, 50 error), their messages. */
export function linesAtLeast (logs: Array<{ level: number, msg: string }>, level: number): string[] {
  return logs.filter((l) => l.level >= level).map((l) => l.msg)
}
