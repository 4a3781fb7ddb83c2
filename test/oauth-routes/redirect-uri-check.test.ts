import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { RedirectUriMismatchError, type OAuthRoutesOptions } from '@fastify-aihubmix/oauth-routes'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// Issue 16, item 4: the provider sends users back to aihubmix-proxy's redirectUri; when oauth-routes' callback
// route is somewhere else, the app refuses to start, in one line naming both. And no answer ever echoes a
// callback's query (Fastify's default 404 body does: `Route GET:/x?code=... not found`).

const SECRET = 's'.repeat(40)

/** The plugins registered as the README shows; resolves with the error that stopped the start, if any. */
async function compose (app: FastifyInstance, redirectUri: string, routes: OAuthRoutesOptions, scopePrefix = ''): Promise<unknown> {
  try {
    await register(app, redirectUri, routes, scopePrefix)
    await app.ready()
    return undefined
  } catch (err) {
    return err
  }
}

async function register (app: FastifyInstance, redirectUri: string, routes: OAuthRoutesOptions, scopePrefix: string): Promise<void> {
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: SECRET })
  await app.register(aihubmixProxy, { baseUrl: 'https://aihubmix.example', clientId: 'c', clientSecret: 'x', redirectUri })
  await app.register(async (scope) => {
    await scope.register(fastifySession, { secret: SECRET, store: scope.tokenStore.sessionStore, saveUninitialized: false, cookie: { secure: 'auto' } })
    await scope.register(oauthRoutes, routes)
  }, { prefix: scopePrefix })
}

t.test('a redirectUri that is not the callback route stops the start with one line naming both', async (t) => {
  const cases: Array<[string, string, OAuthRoutesOptions, string, string]> = [
    ['another prefix', 'https://app.example/auth/callback', { publicUrl: 'https://app.example', prefix: '/login' }, 'https://app.example/auth/callback', 'https://app.example/login/callback'],
    ['another route name', 'https://app.example/auth/callback', { publicUrl: 'https://app.example', routes: { callback: '/done' } }, 'https://app.example/auth/callback', 'https://app.example/auth/done'],
    ['a trailing slash', 'https://app.example/auth/callback/', { publicUrl: 'https://app.example' }, 'https://app.example/auth/callback/', 'https://app.example/auth/callback'],
    ['another origin', 'http://localhost:3000/auth/callback', { publicUrl: 'http://127.0.0.1:3000' }, 'http://localhost:3000/auth/callback', 'http://127.0.0.1:3000/auth/callback']
  ]
  for (const [what, redirectUri, routes, named, served] of cases) {
    const app = Fastify()
    const err = await compose(app, redirectUri, routes) as Error & { code?: string } | undefined
    await app.close().catch(() => {})
    t.ok(err instanceof RedirectUriMismatchError, `${what}: refused`)
    t.equal(err?.code, 'FST_AIHUBMIX_REDIRECT_URI_MISMATCH')
    t.equal(err?.message, `aihubmix-proxy's redirectUri ${named} is not oauth-routes' callback route ${served}: make them the same ` +
      '(publicUrl, prefix, routes.callback), or set oauth-routes\' checkRedirectUri: false if a proxy in front rewrites the path', what)
  }
})

t.test('a publicUrl with a path: the message says publicUrl must be an origin, and where the path goes', async (t) => {
  // PUBLIC_URL=http://localhost:3000/app gave only "redirectUri .../app/auth/callback is not oauth-routes' callback
  // route http://localhost:3000/auth/callback", never why the /app was gone.
  const cases: Array<[string, string, string]> = [
    ['http://localhost:3000/app', 'http://localhost:3000/app/auth/callback', '/app'],
    ['http://localhost:3000/app/', 'http://localhost:3000/app/auth/callback', '/app/'],
    ['https://app.example/?x=1', 'https://app.example/x/auth/callback', '/?x=1']
  ]
  for (const [publicUrl, redirectUri, beyond] of cases) {
    const app = Fastify()
    const err = await compose(app, redirectUri, { publicUrl }) as Error | undefined
    await app.close().catch(() => {})
    const origin = new URL(publicUrl).origin
    t.ok(err instanceof RedirectUriMismatchError, `${publicUrl}: refused`)
    t.equal(err?.message, `aihubmix-proxy's redirectUri ${redirectUri} is not oauth-routes' callback route ${origin}/auth/callback ` +
      `(publicUrl must be an origin, without a path: ${origin}, not ${origin}${beyond}; an app under a path registers oauth-routes under that prefix): ` +
      'make them the same (publicUrl, prefix, routes.callback), or set oauth-routes\' checkRedirectUri: false if a proxy in front rewrites the path')
  }
  // A password in publicUrl is never part of it.
  const app = Fastify()
  const err = await compose(app, 'http://localhost:3000/app/auth/callback', { publicUrl: 'http://user:pw-not-shown@localhost:3000/app' }) as Error | undefined
  await app.close().catch(() => {})
  t.match(err?.message, /not http:\/\/localhost:3000\/app;/)
  t.notMatch(err?.message, 'pw-not-shown')
})

t.test('the prefix of the scope oauth-routes is registered in counts; checkRedirectUri: false turns the check off', async (t) => {
  const scoped = Fastify()
  t.teardown(() => scoped.close())
  t.equal(await compose(scoped, 'https://app.example/app/auth/callback', { publicUrl: 'https://app.example' }, '/app'), undefined)
  t.ok(scoped.hasRoute({ method: 'GET', url: '/app/auth/callback' }), 'starts: /app + /auth + /callback is the redirect URI')

  // Behind a proxy that maps https://app.example/app/* to this app's /*: the paths differ on purpose.
  const rewritten = Fastify()
  t.teardown(() => rewritten.close())
  t.equal(await compose(rewritten, 'https://app.example/app/auth/callback', { publicUrl: 'https://app.example', checkRedirectUri: false }), undefined)
  t.ok(rewritten.hasRoute({ method: 'GET', url: '/auth/callback' }))
})

t.test('no answer echoes a callback\'s query: a mistyped callback path, under the prefix or elsewhere', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login`)
  const back = new URL(TestBrowser.location(await browser.get(TestBrowser.location(start))))
  const code = back.searchParams.get('code') as string
  const state = back.searchParams.get('state') as string
  for (const path of ['/auth/callback/', '/auth/calback', '/callback', '/oauth/callback']) {
    const res = await browser.get(`${stack.url}${path}${back.search}`)
    t.equal(res.status, 404, path)
    t.same(JSON.parse(res.body), { error: 'not_found', message: 'No such route.' }, `${path}: a fixed body`)
    t.notMatch(JSON.stringify(res.headers) + res.body, code, `${path}: no code`)
    t.notMatch(JSON.stringify(res.headers) + res.body, state, `${path}: no state`)
  }
  t.notOk(stack.logs.some((line) => line.includes(code) || line.includes(state)), 'nor in a log line')
})
