import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyRateLimit from '@fastify/rate-limit'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes from '@fastify-aihubmix/oauth-routes'
import { providerForPort } from '../helpers/readme-composition.js'
import { TestBrowser } from '../helpers/browser.js'

// The root README's advice for an app open to the internet: @fastify/rate-limit in oauth-routes' scope, before it,
// on /auth/login only. A refusal answers as every error of these routes does ({error, message}), its Retry-After
// kept. The callback is not limited (a browser expects its redirect, or the popup its message): each callback needs a
// cookie minted at /auth/login, and a replayed one is spent (invalid_state, no token call). /api is untouched.

const SECRET = 's'.repeat(40)

t.test('@fastify/rate-limit on /auth/login: 429 too_many_requests with Retry-After; the callback and /api are not limited', async (t) => {
  const { mock, port, url, provider } = await providerForPort(t, 'rate-limited')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: 'k'.repeat(40), sessionCookie: { name: 'sid', secret: SECRET } })
  await app.register(aihubmixProxy, { ...provider, redirectUri: `${url}/auth/callback` })
  await app.register(async (scope) => {
    await scope.register(fastifyRateLimit, { max: 3, timeWindow: '1 minute', allowList: (request) => request.routeOptions.url !== '/auth/login' })
    await scope.register(fastifySession, { secret: SECRET, cookieName: 'sid', store: scope.tokenStore.sessionStore, saveUninitialized: false, cookie: { secure: false } })
    await scope.register(oauthRoutes, { publicUrl: url })
  })
  await app.listen({ port, host: '127.0.0.1' })

  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  t.equal(start.status, 302, 'a sign-in starts')
  const state = new URL(TestBrowser.location(start)).searchParams.get('state') as string
  const bogus = await browser.get(`${url}/auth/callback?code=made-up&state=${state}`)
  t.equal(bogus.status, 302, 'a made-up code is refused as before')
  t.equal((await browser.get(`${url}/auth/login`)).status, 302, 'the second sign-in of the minute')
  t.equal((await browser.get(`${url}/auth/login`)).status, 302, 'the third')

  const limited = await browser.get(`${url}/auth/login`)
  t.equal(limited.status, 429, 'the fourth: over the limit')
  t.same(JSON.parse(limited.body), { error: 'too_many_requests', message: 'Too many requests; try again later.' })
  t.match(limited.headers['retry-after'], /^\d+$/, 'Retry-After kept')
  t.equal(limited.headers['cache-control'], 'no-store')
  const tokenCalls = mock.counts().token
  const replayed = await browser.get(`${url}/auth/callback?code=made-up&state=${state}`)
  t.equal(replayed.status, 302, 'the callback is not limited: a replayed one still redirects')
  t.match(TestBrowser.location(replayed), /\?error=invalid_state$/, 'spent: invalid_state')
  t.equal(mock.counts().token, tokenCalls, 'and no token call')
  const api = await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })
  t.equal(api.status, 401, '/api is outside the limited scope')
})
