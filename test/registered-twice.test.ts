import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore, { TokenStoreRegisteredTwiceError } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { ProxyRegisteredTwiceError } from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { OAuthRoutesRegisteredTwiceError } from '@fastify-aihubmix/oauth-routes'
import aihubmixMetrics, { MetricsRegisteredTwiceError } from '@fastify-aihubmix/metrics'

// A plugin registered twice stops the start with one line naming the plugin and the fix, instead of Fastify's
// "The decorator 'tokenStore' has already been added!" or "Method 'GET' already declared for route '/auth/login'".

const SECRET = 's'.repeat(40)
const PROXY = { baseUrl: 'https://aihubmix.example', clientId: 'c', clientSecret: 'x', redirectUri: 'https://app.example/auth/callback' }
const ROUTES = { publicUrl: 'https://app.example' }

type Step = (app: FastifyInstance) => Promise<unknown>
const cookie: Step = async (app) => app.register(fastifyCookie)
const tokens: Step = async (app) => app.register(tokenStore, { encryptionKeys: SECRET })
const proxy: Step = async (app) => app.register(aihubmixProxy, PROXY)
const session: Step = async (app) => app.register(fastifySession, { secret: SECRET, store: app.tokenStore.sessionStore, saveUninitialized: false })
const routes: Step = async (app) => app.register(oauthRoutes, ROUTES)
const metrics: Step = async (app) => app.register(aihubmixMetrics)
const scope = (...steps: Step[]): Step => async (app) => app.register(async (inner) => { for (const step of steps) await step(inner) })

async function startWith (steps: Step[]): Promise<(Error & { code?: string }) | undefined> {
  const app = Fastify()
  try {
    for (const step of steps) await step(app)
    await app.ready()
    return undefined
  } catch (err) {
    return err as Error & { code?: string }
  } finally {
    await app.close().catch(() => {})
  }
}

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
