import t from 'tap'
import { OAuthRoutesRegistrationError } from '@fastify-aihubmix/oauth-routes'
import Fastify from 'fastify'
import { cookie, proxy, routes, scope, session, startWith as started, tokens, type Step } from '../helpers/registration-steps.js'

// A plugin missing, or registered after oauth-routes or outside its scope, stops the start with one error that
// names what to register and the whole order, instead of Fastify's "The decorator 'session' required by ... is
// not present in Request".

const ORDER = ': register @fastify/cookie, token-store, aihubmix-proxy, then in one scope @fastify/session and oauth-routes'

/** The error app.ready() rejects with, after the steps in this order. */
async function startWith (steps: Step[]): Promise<Error & { code?: string }> {
  const err = await started(steps)
  if (err === undefined) throw new Error('the app started')
  return err
}

const cases: Array<[string, Step[], string]> = [
  ['no @fastify/session', [cookie, tokens, proxy, scope(routes)], '@fastify/session registered in the same scope before it'],
  ['@fastify/session after oauth-routes', [cookie, tokens, proxy, scope(routes, session)], '@fastify/session registered in the same scope before it'],
  ['@fastify/session in another scope', [cookie, tokens, proxy, scope(session), scope(routes)], '@fastify/session registered in the same scope before it'],
  ['oauth-routes before aihubmix-proxy', [cookie, tokens, scope(session, routes), proxy], '@fastify-aihubmix/aihubmix-proxy registered before it (app.aihubmix is missing)'],
  ['no aihubmix-proxy', [cookie, tokens, scope(session, routes)], '@fastify-aihubmix/aihubmix-proxy registered before it (app.aihubmix is missing)'],
  ['no token-store (nor the proxy, which needs it)', [cookie, scope(routes)], '@fastify-aihubmix/token-store registered before it (app.tokenStore is missing)'],
  ['no @fastify/cookie', [tokens, proxy, scope(routes)], '@fastify/cookie registered before it']
]

for (const [what, steps, needs] of cases) {
  t.test(`${what}: app.ready() rejects naming what to register, and where`, async (t) => {
    const err = await startWith(steps)
    t.equal(err.message, `oauth-routes needs ${needs}${ORDER}`)
    t.equal(err.code, 'FST_AIHUBMIX_OAUTH_ROUTES_REGISTRATION')
    t.ok(err instanceof OAuthRoutesRegistrationError, 'an OAuthRoutesRegistrationError, exported')
    t.notMatch(err.message, /\n/, 'one line')
  })
}

t.test('the README\'s order starts', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  for (const step of [cookie, tokens, proxy, scope(session, routes)]) await step(app)
  await app.ready()
  t.ok(app.hasRoute({ method: 'GET', url: '/auth/callback' }))
})
