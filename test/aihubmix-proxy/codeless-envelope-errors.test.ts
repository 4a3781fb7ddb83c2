import t from 'tap'
import { MockAgent } from 'undici'
import { createAihubmixClient, type AihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'
import { InsufficientScopeError, TokenEndpointError, UpstreamStatusError } from '../../src/aihubmix-proxy/errors.js'
import { REDIRECT_URI, login, startProvider } from '../helpers/mock-client.js'

// The provider's guide gives two error shapes: RFC 6749's `{error, error_description}`, and its envelope's
// `{success: false, message}`, which carries no code. The mock's envelope errors always carried an `error` code, so
// the second shape was never tried: a top-up refused for its scope (403) then reached the browser as a 502, and a
// refresh refused with a bare 401 was logged as a fact that the app's credentials were wrong. The mock now answers
// that shape with `envelopeErrorCodes: false`, and the client reads the status for it.

function clientFor (t: { teardown: (fn: () => unknown) => void }, baseUrl: string, dispatcher?: MockAgent): AihubmixClient {
  const client = createAihubmixClient(resolveOptions({
    baseUrl, clientId: 'app', clientSecret: 'secret-of-the-app', redirectUri: REDIRECT_URI, ...(dispatcher === undefined ? {} : { dispatcher })
  }))
  t.teardown(() => client.close())
  return client
}

t.test('{success: false, message} from the mock: a top-up refused for its scope is insufficient_scope, an unknown refresh token invalid_grant', async (t) => {
  const { provider, app } = await startProvider(t)
  const narrow = await login(provider, app, { scope: 'profile' })
  provider.setEnvelope(true, { errorCodes: false })
  const client = createAihubmixClient(resolveOptions({ baseUrl: provider.url, clientId: app.clientId, clientSecret: app.clientSecret, redirectUri: REDIRECT_URI }))
  t.teardown(() => client.close())

  const topup = await client.topup(narrow.access_token).catch((err: unknown) => err)
  t.ok(topup instanceof InsufficientScopeError, 'a 403 {success: false, message} on a Bearer call: the scope is missing')

  const refused = await client.refresh('rt_never_issued').catch((err: unknown) => err) as Error
  const cause = refused.cause
  t.ok(cause instanceof TokenEndpointError, 'a token endpoint refusal')
  t.equal((cause as TokenEndpointError).oauthError, 'invalid_grant', 'a 400 with no code: the grant is refused (RFC 6749)')
  t.equal((cause as TokenEndpointError).fromStatus, 400, 'read from the status')
})

t.test('a bare 401 at a refresh reads as invalid_client, and its message says the code was read from the status', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const origin = 'https://provider.example'
  agent.get(origin).intercept({ path: '/api/oauth2/token', method: 'POST' }).reply(401, { success: false, message: 'refresh token expired' }, { headers: { 'content-type': 'application/json' } })
  agent.get(origin).intercept({ path: '/api/oauth2/token', method: 'POST' }).reply(401, { error: 'invalid_client' }, { headers: { 'content-type': 'application/json' } })
  const client = clientFor(t, origin, agent)

  const bare = (await client.refresh('rt').catch((err: unknown) => err) as Error).cause as TokenEndpointError
  t.equal(bare.oauthError, 'invalid_client', 'RFC 6749: a 401 from the token endpoint is the client\'s authentication')
  t.equal(bare.clientRefused, true, 'the session ends as for invalid_client')
  t.equal(bare.fromStatus, 401)
  t.match(bare.message, /invalid_client \(the provider's 401 answer carried no error code; read from its status\) \(check the clientId/)

  const coded = (await client.refresh('rt').catch((err: unknown) => err) as Error).cause as TokenEndpointError
  t.equal(coded.fromStatus, undefined, 'a coded answer is taken as it is')
  t.notMatch(coded.message, /no error code/)
})

t.test('a 403 that is no answer of the provider\'s (a proxy\'s page, JSON of another shape) stays a 502', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const origin = 'https://provider.example'
  agent.get(origin).intercept({ path: '/api/oauth2/topup', method: 'GET' }).reply(403, '<html>Forbidden</html>', { headers: { 'content-type': 'text/html' } })
  agent.get(origin).intercept({ path: '/api/oauth2/topup', method: 'GET' }).reply(403, { message: 'blocked by the firewall' }, { headers: { 'content-type': 'application/json' } })
  agent.get(origin).intercept({ path: '/api/oauth2/topup', method: 'GET' }).reply(403, { error: 'access_denied' }, { headers: { 'content-type': 'application/json' } })
  const client = clientFor(t, origin, agent)
  for (const what of ['an HTML page', 'JSON without success: false', 'another OAuth code']) {
    const err = await client.topup('at').catch((e: unknown) => e)
    t.ok(err instanceof UpstreamStatusError, `${what}: UpstreamStatusError`)
  }
})
