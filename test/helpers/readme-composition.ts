import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession, { type FastifySessionOptions } from '@fastify/session'
import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { loggerOptions, type OAuthRoutesOptions } from '@fastify-aihubmix/oauth-routes'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import type { Redis } from 'ioredis'
import { TestBrowser, type Answer } from './browser.js'
import { freePort } from './free-port.js'

// The app as the root README composes it: token-store with sessionCookie, the proxy outside @fastify/session's scope,
// @fastify/session (rolling: false, saveUninitialized: false, token-store's store) around oauth-routes, on plain http
// at 127.0.0.1. Each option below composes one part differently, mostly to get it wrong on purpose.

export interface ComposedReadmeAppOptions {
  port: number
  provider: { baseUrl: string, clientId: string, clientSecret: string }
  /** @fastify/session's and token-store's sessionCookie secret(s), as the root README passes them (a list, newest first). */
  secret: string | string[]
  encryptionKeys?: string | string[]
  redis?: Redis
  keyPrefix?: string
  /** @fastify/session's cookieName (default 'sid'). */
  cookieName?: string
  /** token-store's sessionCookie.name (default: @fastify/session's); null: no sessionCookie at all. */
  tokenStoreCookie?: string | null
  /** oauth-routes' cookieName (default: @fastify/session's). */
  routesCookie?: string
  /** Give @fastify/session token-store's store (default true); false: its own MemoryStore. */
  tokenStoreSessions?: boolean
  /** @fastify/session's cookie.secure (default false). */
  secure?: boolean | 'auto'
  /** oauth-routes' publicUrl (default: the app's own http://127.0.0.1:port). */
  publicUrl?: string
  /** Fastify's trustProxy (default: none). */
  trustProxy?: boolean | string
  oauth?: Partial<OAuthRoutesOptions>
  tokenStore?: Partial<TokenStoreOptions>
  proxy?: Partial<AihubmixProxyOptions>
  /** More (or other) @fastify/session options: `{ saveUninitialized: true }`. */
  session?: Partial<FastifySessionOptions>
  /** Routes of the user's own inside @fastify/session's scope, after oauth-routes. */
  sessionScope?: (scope: FastifyInstance) => void | Promise<void>
  /** Collects every log line (JSON strings), written through oauth-routes' `loggerOptions()` at info. */
  logs?: string[]
  /** Fastify's own logger options instead of `loggerOptions()` (as `logger: true` is), still at info into `logs`. */
  plainLogger?: boolean
  /** Called on the root instance before any plugin (hooks added here run on every route). */
  root?: (app: FastifyInstance) => void
}

export async function composeReadmeApp (o: ComposedReadmeAppOptions): Promise<FastifyInstance> {
  const url = `http://127.0.0.1:${o.port}`
  const publicUrl = o.publicUrl ?? url
  const cookieName = o.cookieName ?? 'sid'
  const tokenStoreCookie = o.tokenStoreCookie === undefined ? cookieName : o.tokenStoreCookie
  const logs = o.logs
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { logs?.push(chunk.toString()); cb() } })
  const app = Fastify({
    logger: logs === undefined ? false : o.plainLogger === true ? { level: 'info', stream } : { ...loggerOptions({ level: 'info' }), stream },
    ...(o.trustProxy === undefined ? {} : { trustProxy: o.trustProxy })
  })
  o.root?.(app)
  await app.register(fastifyCookie)
  await app.register(tokenStore, {
    encryptionKeys: o.encryptionKeys ?? ['k'.repeat(40)],
    ...(o.redis === undefined ? {} : { redis: o.redis, keyPrefix: o.keyPrefix }),
    ...o.tokenStore,
    ...(tokenStoreCookie === null ? {} : { sessionCookie: { name: tokenStoreCookie, secret: o.secret } })
  })
  await app.register(aihubmixProxy, {
    baseUrl: o.provider.baseUrl,
    clientId: o.provider.clientId,
    clientSecret: o.provider.clientSecret,
    redirectUri: `${publicUrl}/auth/callback`,
    ...o.proxy
  })
  await app.register(async (scope) => {
    await scope.register(fastifySession, {
      secret: o.secret,
      cookieName,
      ...(o.tokenStoreSessions === false ? {} : { store: scope.tokenStore.sessionStore }),
      saveUninitialized: false,
      rolling: false,
      cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: o.secure ?? false },
      ...o.session
    })
    await scope.register(oauthRoutes, { publicUrl, cookieName: o.routesCookie ?? cookieName, ...o.oauth })
    if (o.sessionScope !== undefined) await o.sessionScope(scope)
  })
  await app.listen({ port: o.port, host: '127.0.0.1' })
  return app
}

/** A mock provider (tokens prefixed `leakcanary`, closed at teardown) with an app for a free port's callback. */
export async function providerForPort (t: { teardown: (fn: () => unknown) => void }, name: string): Promise<{
  mock: MockProvider
  port: number
  url: string
  provider: ComposedReadmeAppOptions['provider']
}> {
  const mock = await startMockProvider({ tokenPrefix: 'leakcanary' })
  t.teardown(() => mock.close())
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const demo = mock.createApp({ name, redirectUri: `${url}/auth/callback` })
  return { mock, port, url, provider: { baseUrl: mock.url, clientId: demo.clientId, clientSecret: demo.clientSecret } }
}

export interface ComposedApp {
  /** http://127.0.0.1:PORT */
  url: string
  app: FastifyInstance
  mock: MockProvider
  /** Every log line the app wrote, as written (JSON strings). */
  lines: string[]
  /** Every log line the app wrote, parsed. */
  logs: () => Array<{ level: number, msg: string }>
  /** A redirect-mode sign-in: the callback's answer. */
  signIn: (browser: TestBrowser) => Promise<Answer>
}

export type Composition = Omit<ComposedReadmeAppOptions, 'port' | 'provider' | 'secret' | 'encryptionKeys' | 'logs' | 'publicUrl'> & {
  /** The client secret given to aihubmix-proxy (default: the mock app's own). */
  clientSecret?: string
  /** oauth-routes' publicUrl from the app's own URL (default: that URL). */
  publicUrl?: (url: string) => string
}

/**
 * composeReadmeApp on a free port against a mock provider of its own (tokens prefixed `leakcanary`), logging at info
 * through `loggerOptions()`, default secure 'auto'. Both are closed at teardown.
 */
export async function startComposedApp (t: { teardown: (fn: () => unknown) => void }, c: Composition = {}): Promise<ComposedApp> {
  const mock = await startMockProvider({ tokenPrefix: 'leakcanary' })
  t.teardown(() => mock.close())
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const publicUrl = c.publicUrl === undefined ? url : c.publicUrl(url)
  const demo = mock.createApp({ name: 'composed app', redirectUri: `${publicUrl}/auth/callback` })
  const secret = 's'.repeat(40)
  const lines: string[] = []
  const { clientSecret, ...composition } = c
  const app = await composeReadmeApp({
    secure: 'auto',
    ...composition,
    port,
    provider: { baseUrl: mock.url, clientId: demo.clientId, clientSecret: clientSecret ?? demo.clientSecret },
    secret,
    encryptionKeys: secret,
    logs: lines,
    publicUrl
  })
  t.teardown(() => app.close())
  return {
    url,
    app,
    mock,
    lines,
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
