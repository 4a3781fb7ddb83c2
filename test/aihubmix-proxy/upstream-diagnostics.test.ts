import t from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AihubmixClient } from '@fastify-aihubmix/aihubmix-proxy'
import { createAihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'
import { getCode, pkcePair, startProvider } from '../helpers/mock-client.js'
import { reachableStrings, recordDiagnostics, type Recorded } from '../helpers/diagnostics.js'
import { findLeaks } from '../helpers/stack.js'
import { until } from '../helpers/redis-server.js'

// Issue 19: every exchange with the provider is a span of the TracingChannel `aihubmix:upstream`: which endpoint
// (and grant), the HTTP status or why there is none, how long it took; the publishing client, never a header, a
// body, a token or a code.

const UPSTREAM = 'aihubmix:upstream'

function spans (recorded: Recorded[], client: AihubmixClient): Array<Record<string, unknown>> {
  return recorded.filter((r) => r.channel === `${UPSTREAM}:asyncEnd` && r.message.client === client).map((r) => r.snapshot)
}

t.test('every provider call is one span: endpoint, grant, status, duration', async (t) => {
  const recorded = recordDiagnostics(t)
  const { provider, app } = await startProvider(t, { tokenPrefix: 'leakcanary' })
  const client = createAihubmixClient(resolveOptions({
    baseUrl: provider.url,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    redirectUri: app.redirectUri,
    timeoutMs: 200
  }))
  t.teardown(() => client.close())

  const { verifier, challenge } = pkcePair()
  const code = await getCode(provider, app, { code_challenge: challenge, code_challenge_method: 'S256' })
  const set = await client.exchangeCode({ code, codeVerifier: verifier })
  const refreshed = await client.refresh(set.refreshToken as string)
  await client.userinfo(refreshed.accessToken)
  await client.topup(refreshed.accessToken)
  provider.setFault('userinfo', 'http500', { times: 1 })
  await t.rejects(client.userinfo(refreshed.accessToken), { code: 'FST_AIHUBMIX_UPSTREAM_STATUS' })
  await t.rejects(client.userinfo('not-a-token'), { code: 'FST_AIHUBMIX_UPSTREAM_UNAUTHORIZED' })
  provider.setFault('topup', 'hang', { times: 1 })
  await t.rejects(client.topup(refreshed.accessToken), { code: 'FST_AIHUBMIX_UPSTREAM_TIMEOUT' })
  // A 200 whose body fails the schema: the status is what the provider answered.
  provider.setFault('userinfo', 'wrong_types', { times: 1 })
  await t.rejects(client.userinfo(refreshed.accessToken), { code: 'FST_AIHUBMIX_UPSTREAM_INVALID_RESPONSE' })
  await t.rejects(client.exchangeCode({ code: 'code_leakcanary_unknown', codeVerifier: verifier }), { code: 'FST_AIHUBMIX_TOKEN_ENDPOINT' })

  const ended = spans(recorded, client)
  t.same(ended.map((c) => [c.endpoint, c.method, c.grant, c.status]), [
    ['token', 'POST', 'authorization_code', 200],
    ['token', 'POST', 'refresh_token', 200],
    ['userinfo', 'GET', undefined, 200],
    ['topup', 'GET', undefined, 200],
    ['userinfo', 'GET', undefined, 500],
    ['userinfo', 'GET', undefined, 401],
    ['topup', 'GET', undefined, 'timeout'],
    ['userinfo', 'GET', undefined, 200],
    ['token', 'POST', 'authorization_code', 400]
  ])
  for (const context of ended) {
    t.equal(context.client, client, 'the publishing client')
    t.ok(typeof context.durationMs === 'number' && context.durationMs >= 0, 'a duration')
    t.equal(context.result, undefined, 'the answer is never on the context')
    // `grant` on token calls only; Node's own `result` (undefined) or `error`.
    const keys = Object.keys(context).filter((k) => !['grant', 'result', 'error'].includes(k)).sort()
    t.same(keys, ['client', 'durationMs', 'endpoint', 'method', 'status'], 'nothing else')
  }
  const timedOut = ended[6] as Record<string, unknown>
  t.ok((timedOut.durationMs as number) >= 200, 'the timeout lasted the configured time')
  t.match(timedOut.error, { code: 'FST_AIHUBMIX_UPSTREAM_TIMEOUT' }, 'error: what the exchange failed with')
  const errors = recorded.filter((r) => r.channel === `${UPSTREAM}:error` && r.message.client === client)
  t.equal(errors.length, 1, 'only the exchange that got no answer is an error of the span')

  const issued = provider.issued()
  const secrets = [...issued.accessTokens, ...issued.refreshTokens, ...issued.codes, app.clientSecret, verifier, 'code_leakcanary_unknown']
  t.same(findLeaks(secrets, recorded.flatMap((r) => reachableStrings(r.message))), [], 'no token, code, verifier or secret')
})

t.test('no answer at all: status error; a call the browser abandoned: status aborted', async (t) => {
  const recorded = recordDiagnostics(t)
  const closed = createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as { port: number }).port
  await new Promise((resolve) => closed.close(resolve))
  const refused = createAihubmixClient(resolveOptions({
    baseUrl: `http://127.0.0.1:${port}`,
    clientId: 'client_x',
    clientSecret: 'secret_x',
    redirectUri: 'http://127.0.0.1:3000/auth/callback'
  }))
  t.teardown(() => refused.close())
  await t.rejects(refused.userinfo('at_x'), { code: 'FST_AIHUBMIX_UPSTREAM_UNREACHABLE' })
  t.same(spans(recorded, refused).map((c) => c.status), ['error'])

  const { provider, app } = await startProvider(t)
  const client = createAihubmixClient(resolveOptions({ baseUrl: provider.url, clientId: app.clientId, clientSecret: app.clientSecret, redirectUri: app.redirectUri }))
  t.teardown(() => client.close())
  provider.setFault('userinfo', 'hang', { times: 1 })
  const controller = new AbortController()
  const call = client.userinfo('at_x', controller.signal)
  await until(async () => provider.counts().userinfo === 1, 'the call to reach the provider')
  controller.abort()
  await t.rejects(call, { name: 'AbortError' })
  t.same(spans(recorded, client).map((c) => c.status), ['aborted'])
})
