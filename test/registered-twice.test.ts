import t from 'tap'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes from '@fastify-aihubmix/oauth-routes'
import { TokenStoreRegisteredTwiceError } from '@fastify-aihubmix/token-store'
import { ProxyRegisteredTwiceError } from '@fastify-aihubmix/aihubmix-proxy'
import { OAuthRoutesRegisteredTwiceError } from '@fastify-aihubmix/oauth-routes'
import { MetricsRegisteredTwiceError } from '@fastify-aihubmix/metrics'
import { cookie, metrics, proxy, routes, scope, session, startWith, tokens, type Step } from './helpers/registration-steps.js'

// A plugin registered twice stops the start with one line naming the plugin and the fix, instead of Fastify's
// "The decorator 'tokenStore' has already been added!" or "Method 'GET' already declared for route '/auth/login'".

const ONCE = 'register it once, in a scope every plugin and route that uses it shares (the root app)'
const cases: Array<[string, Step[], string, string, abstract new (...args: never[]) => Error]> = [
  ['token-store twice', [tokens, tokens], `@fastify-aihubmix/token-store is registered twice (app.tokenStore already exists in this scope): ${ONCE}`, 'FST_AIHUBMIX_TOKEN_STORE_REGISTERED_TWICE', TokenStoreRegisteredTwiceError],
  ['token-store again in a child scope', [tokens, scope(tokens)], `@fastify-aihubmix/token-store is registered twice (app.tokenStore already exists in this scope): ${ONCE}`, 'FST_AIHUBMIX_TOKEN_STORE_REGISTERED_TWICE', TokenStoreRegisteredTwiceError],
  ['aihubmix-proxy twice', [tokens, proxy, proxy], `@fastify-aihubmix/aihubmix-proxy is registered twice (app.aihubmix already exists in this scope): ${ONCE}`, 'FST_AIHUBMIX_PROXY_REGISTERED_TWICE', ProxyRegisteredTwiceError],
  ['metrics twice', [tokens, proxy, metrics, metrics], '@fastify-aihubmix/metrics is registered twice (app.aihubmixMetrics already exists in this scope): register it once (metricsRoute serves it wherever it is registered)', 'FST_AIHUBMIX_METRICS_REGISTERED_TWICE', MetricsRegisteredTwiceError],
  ['oauth-routes twice in one scope', [cookie, tokens, proxy, scope(session, routes, routes)], '@fastify-aihubmix/oauth-routes is registered twice (in this scope): register it once, in the scope of @fastify/session', 'FST_AIHUBMIX_OAUTH_ROUTES_REGISTERED_TWICE', OAuthRoutesRegisteredTwiceError],
  ['oauth-routes again in a child scope', [cookie, tokens, proxy, scope(session, routes, scope(routes))], '@fastify-aihubmix/oauth-routes is registered twice (GET /auth/login is already declared): register it once, in the scope of @fastify/session', 'FST_AIHUBMIX_OAUTH_ROUTES_REGISTERED_TWICE', OAuthRoutesRegisteredTwiceError]
]

for (const [what, steps, message, code, ErrorClass] of cases) {
  t.test(`${what}: one line naming the plugin and the fix`, async (t) => {
    const err = await startWith(steps)
    t.equal(err?.message, message)
    t.equal(err?.code, code)
    t.ok(err instanceof ErrorClass, 'exported')
  })
}

t.test('control: each registered once starts', async (t) => {
  t.equal(await startWith([cookie, tokens, proxy, metrics, scope(session, routes)]), undefined)
})

// Two plugins at one prefix: each answers the unknown routes under its prefix, and Fastify refused the second
// not-found handler with an uncaught `Method 'ACL' already declared for route '/auth/*'`, naming neither plugin.
t.test('aihubmix-proxy and oauth-routes at one prefix: one line naming both and the fix', async (t) => {
  // The redirect URI is where each case's oauth-routes has its callback, so that this check is the one that speaks.
  const proxyAt = (prefix: string, callback: string, routes?: false): Step => async (app) => app.register(aihubmixProxy,
    { baseUrl: 'https://aihubmix.example', clientId: 'c', clientSecret: 'x', redirectUri: `https://app.example${callback}`, prefix, ...(routes === false ? { routes } : {}) })
  const routesAt = (prefix: string): Step => async (app) => app.register(oauthRoutes, { publicUrl: 'https://app.example', prefix })
  const message = (base: string): string => `Invalid oauth-routes option prefix: aihubmix-proxy's routes are under ${base} too: give the two ` +
    'plugins different prefixes (oauth-routes\' prefix, aihubmix-proxy\'s prefix: \'/api\' by default)'
  for (const [what, steps, base] of [
    ['oauth-routes at the proxy\'s default /api', [cookie, tokens, proxyAt('/api', '/api/callback'), scope(session, routesAt('/api'))], '/api'],
    ['the proxy at /auth', [cookie, tokens, proxyAt('/auth', '/auth/callback'), scope(session, routesAt('/auth'))], '/auth']
  ] as const) {
    const err = await startWith([...steps])
    t.equal(err?.message, message(base), what)
    t.equal(err?.code, 'FST_AIHUBMIX_OAUTH_ROUTES_OPTIONS', what)
  }
  // Other prefixes, or the proxy without routes, start.
  t.equal(await startWith([cookie, tokens, proxyAt('/api', '/api/auth/callback'), scope(session, routesAt('/api/auth'))]), undefined, 'nested, not equal')
  t.equal(await startWith([cookie, tokens, proxyAt('/api', '/api/callback', false), scope(session, routesAt('/api'))]), undefined, 'the proxy without routes')
})
