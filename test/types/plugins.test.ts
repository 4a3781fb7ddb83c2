/**
 * Type tests for aihubmix-proxy and oauth-routes: checked by `npx tsc -p test/tsconfig.json`
 * (part of `npm test`; a `@ts-expect-error` that stops erroring fails the type check). The
 * run-time part registers the plugins with the typed options, so the file also proves they run.
 */
import t from 'tap'
import Fastify, { type FastifyServerOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy, { type AihubmixProxyOptions, type AihubmixClient, type UserInfo, type Topup } from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { loggerOptions, type OAuthRoutesOptions, type LoginEvent } from '@fastify-aihubmix/oauth-routes'

const proxyOptions: AihubmixProxyOptions = {
  baseUrl: 'https://aihubmix.example',
  clientId: 'client_x',
  clientSecret: 'secret_x',
  redirectUri: 'https://app.example/auth/callback',
  scope: ['profile'],
  timeoutMs: 1000,
  routes: { userInfo: '/me' },
  prefix: '/api'
}
// @ts-expect-error clientSecret is required
const missingSecret: AihubmixProxyOptions = { baseUrl: 'https://a.example', clientId: 'c', redirectUri: 'https://b.example/cb' }
// @ts-expect-error timeoutMs is a number
const badTimeout: AihubmixProxyOptions = { ...proxyOptions, timeoutMs: '10s' }
const noRoutes: AihubmixProxyOptions = { ...proxyOptions, routes: false }

const seen: LoginEvent[] = []
const routeOptions: OAuthRoutesOptions = {
  publicUrl: 'https://app.example',
  prefix: '/auth',
  idleTimeoutMs: 60_000,
  routes: { sessions: '/devices' },
  onLogin: (event) => { seen.push(event); event.request.log.info({ user: event.userinfo.id }, 'the userinfo is always there') },
  onLogout: async ({ request }) => { request.log.info('bye') }
}
// @ts-expect-error publicUrl is required
const noPublicUrl: OAuthRoutesOptions = { prefix: '/auth' }
const rewritingProxy: OAuthRoutesOptions = { publicUrl: 'https://app.example', checkRedirectUri: false }
// @ts-expect-error checkRedirectUri is a boolean
const badCheck: OAuthRoutesOptions = { publicUrl: 'https://app.example', checkRedirectUri: 'no' }
// loggerOptions() is what Fastify's `logger` option takes, as it is or spread with options of one's own.
const logger: FastifyServerOptions['logger'] = { ...loggerOptions({ level: 'warn' }), messageKey: 'message' }

t.test('the plugins register with typed options and expose typed decorators', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: 'p'.repeat(32) })
  await app.register(fastifySession, { secret: 's'.repeat(32), store: app.tokenStore.sessionStore, cookie: { secure: false } })
  await app.register(aihubmixProxy, proxyOptions)
  await app.register(oauthRoutes, routeOptions)
  app.get('/typed', async (request) => {
    const info: UserInfo = await request.aihubmix.userinfo()
    const topup: Topup = await request.aihubmix.topup()
    const custom: number = await request.aihubmix.call(async (accessToken: string) => accessToken.length)
    // @ts-expect-error the request decorator gives no access to tokens
    const leaked: unknown = request.aihubmix.accessToken
    return { info, topup, custom, leaked }
  })
  await app.ready()
  const client: AihubmixClient = app.aihubmix
  t.match(client.authorizeUrl({ state: 's', codeChallenge: 'c' }), /^https:\/\/aihubmix\.example\/api\/oauth2\/authorize\?/)
  t.equal(client.origin, 'https://aihubmix.example')
  t.same([missingSecret, badTimeout, noRoutes, noPublicUrl, rewritingProxy, badCheck, logger].length, 7)
  t.same(seen, [])
})
