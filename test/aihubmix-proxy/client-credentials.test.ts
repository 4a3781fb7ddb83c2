import t from 'tap'
import Fastify from 'fastify'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { aihubmixProxy, TokenEndpointError } from '@fastify-aihubmix/aihubmix-proxy'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'

// A newcomer's mistake: a wrong client secret (or id). The provider answers invalid_client at the code exchange;
// the error, which is what the sign-in logs, names what to check, and never the secret.

t.test('a wrong client secret: invalid_client, with the options to check named', async (t) => {
  const mock = await startMockProvider()
  t.teardown(() => mock.close())
  const demo = mock.createApp({ name: 'wrong secret', redirectUri: 'http://localhost:3000/auth/callback' })
  const wrong = `${demo.clientSecret}-not-it`
  for (const [what, clientId, clientSecret] of [['secret', demo.clientId, wrong], ['id', 'client_unknown', demo.clientSecret]] as const) {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    await app.register(tokenStore, { encryptionKeys: 'hex:' + 'c3'.repeat(32) })
    await app.register(aihubmixProxy, { baseUrl: mock.url, clientId, clientSecret, redirectUri: demo.redirectUri })
    const err = await app.aihubmix.exchangeCode({ code: 'code_mock_whatever', codeVerifier: 'v'.repeat(43) }).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof TokenEndpointError, `a wrong client ${what}: TokenEndpointError`)
    t.equal((err as TokenEndpointError).oauthError, 'invalid_client')
    t.equal((err as TokenEndpointError).clientRefused, true, 'clientRefused: the app\'s credentials, not the grant')
    t.match((err as Error).message, /: invalid_client \(check the clientId and clientSecret given to aihubmix-proxy/, 'the message names the options')
    t.notMatch((err as Error).message, demo.clientSecret, 'and not the secret')
  }
})
