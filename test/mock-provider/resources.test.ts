import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { bearerGet, call, login, startProvider, userinfo, type Answer } from '../helpers/mock-client.js'

function assertInvalidToken (t: Test, answer: Answer, name: string): void {
  t.equal(answer.status, 401, `${name}: status`)
  t.equal(answer.headers['www-authenticate'], 'Bearer realm="aihubmix", error="invalid_token"', `${name}: challenge`)
  t.equal(answer.json().error, 'invalid_token', `${name}: error`)
}

t.test('userinfo with both scopes: every field, exactly as the guide shows', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  const answer = await userinfo(provider, tokens.access_token)
  t.equal(answer.status, 200)
  t.equal(answer.headers['cache-control'], 'no-store')
  t.same(answer.json(), {
    id: 12345,
    username: 'user123',
    email: 'user@example.com',
    quota: 1000000,
    used_quota: 250000,
    balance_formatted: '750.00',
    created_time: 1640995200,
    status: 1
  })
  t.equal(provider.counts().userinfo, 1)
})

t.test('userinfo is filtered by the granted scopes', async (t) => {
  const { provider, app } = await startProvider(t)
  const profile = (await userinfo(provider, (await login(provider, app, { scope: 'profile' })).access_token)).json()
  t.same(profile, { id: 12345, username: 'user123', email: 'user@example.com', created_time: 1640995200, status: 1 })
  const balance = (await userinfo(provider, (await login(provider, app, { scope: 'balance' })).access_token)).json()
  t.same(balance, { id: 12345, quota: 1000000, used_quota: 250000, balance_formatted: '750.00', created_time: 1640995200, status: 1 })
})

t.test('the user option and setUser() change what userinfo answers', async (t) => {
  const { provider, app } = await startProvider(t, { user: { username: 'alice', quota: 5000 } })
  const tokens = await login(provider, app)
  t.match((await userinfo(provider, tokens.access_token)).json(), { username: 'alice', quota: 5000, used_quota: 250000, balance_formatted: '-245.00' })
  provider.setUser({ quota: 2_000_000, used_quota: 1234 })
  t.same(provider.user, { id: 12345, username: 'alice', email: 'user@example.com', quota: 2_000_000, used_quota: 1234, created_time: 1640995200, status: 1 })
  t.match((await userinfo(provider, tokens.access_token)).json(), { quota: 2_000_000, used_quota: 1234, balance_formatted: '1998.77' })

  t.throws(() => provider.setUser({ quota: 1.5 }), { code: 'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT', message: /"user\.quota"/ })
  t.throws(() => provider.setUser({ email: 5 as never }), { message: /"user\.email"/ })
  t.throws(() => provider.setUser({ balance: 1 } as never), { message: /"user\.balance"/ })
  t.equal(provider.user.quota, 2_000_000, 'a refused patch changes nothing')
  const copy = provider.user
  copy.quota = 0
  t.equal(provider.user.quota, 2_000_000, 'user is a copy')
})

t.test('signIn(): another user signs in at the provider; tokens already issued keep their own user', async (t) => {
  const { provider, app } = await startProvider(t)
  const first = await login(provider, app)
  provider.signIn({ id: 777, username: 'bob', email: 'bob@example.com' })
  t.same(provider.user, { id: 777, username: 'bob', email: 'bob@example.com', quota: 1000000, used_quota: 250000, created_time: 1640995200, status: 1 })
  const second = await login(provider, app)
  t.match((await userinfo(provider, second.access_token)).json(), { id: 777, username: 'bob' })
  t.match((await userinfo(provider, first.access_token)).json(), { id: 12345, username: 'user123' }, 'the first user\'s token is still theirs')
  provider.setUser({ used_quota: 0 })
  t.match((await userinfo(provider, second.access_token)).json(), { used_quota: 0 }, 'setUser() patches the signed-in user')
  t.match((await userinfo(provider, first.access_token)).json(), { used_quota: 250000 }, 'and no other')
  t.throws(() => provider.signIn({ username: 'nobody' } as never), { code: 'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT', message: /"user\.id"/ })
  t.throws(() => provider.signIn({ id: 0 }), { message: /"user\.id"/ })
  t.equal(provider.user.id, 777, 'a refused sign-in changes nothing')
})

t.test('userinfo refuses missing, malformed, unknown, expired and revoked tokens', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  assertInvalidToken(t, await userinfo(provider), 'no header')
  assertInvalidToken(t, await call(`${provider.url}/api/oauth2/userinfo`, { headers: { authorization: `Basic ${tokens.access_token}` } }), 'not Bearer')
  assertInvalidToken(t, await call(`${provider.url}/api/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token} extra` } }), 'trailing junk')
  assertInvalidToken(t, await call(`${provider.url}/api/oauth2/userinfo?access_token=${tokens.access_token}`), 'token in the query')
  assertInvalidToken(t, await userinfo(provider, 'at_mock_unknown'), 'unknown')
  assertInvalidToken(t, await userinfo(provider, tokens.refresh_token), 'a refresh token')
  t.equal((await call(`${provider.url}/api/oauth2/userinfo`, { headers: { authorization: `bearer ${tokens.access_token}` } })).status, 200, 'the scheme is case-insensitive')

  provider.expireAccessTokens()
  assertInvalidToken(t, await userinfo(provider, tokens.access_token), 'expireAccessTokens()')
  const later = await login(provider, app)
  t.equal((await userinfo(provider, later.access_token)).status, 200, 'tokens issued afterwards live')
  provider.revokeGrants()
  assertInvalidToken(t, await userinfo(provider, later.access_token), 'revoked')
})

t.test('an access token past accessTokenTtlSeconds answers 401', async (t) => {
  const { provider, app } = await startProvider(t, { accessTokenTtlSeconds: 1 })
  const tokens = await login(provider, app)
  t.equal(tokens.expires_in, 1)
  await sleep(1300)
  assertInvalidToken(t, await userinfo(provider, tokens.access_token), 'expired')
})

t.test('topup: needs the balance scope, answers the top-up page URL', async (t) => {
  const { provider, app } = await startProvider(t)
  const full = await login(provider, app)
  const answer = await bearerGet(provider, '/api/oauth2/topup', full.access_token)
  t.equal(answer.status, 200)
  t.same(answer.json(), { topup_url: `${provider.url}/topup` })

  const profileOnly = await login(provider, app, { scope: 'profile' })
  const refused = await bearerGet(provider, '/api/oauth2/topup', profileOnly.access_token)
  t.equal(refused.status, 403)
  t.equal(refused.headers['www-authenticate'], 'Bearer realm="aihubmix", error="insufficient_scope", scope="balance"')
  t.equal(refused.json().error, 'insufficient_scope')

  assertInvalidToken(t, await bearerGet(provider, '/api/oauth2/topup'), 'no token')
  assertInvalidToken(t, await bearerGet(provider, '/api/oauth2/topup', 'at_mock_unknown'), 'unknown token')
  t.equal(provider.counts().topup, 4)

  const page = await call(`${provider.url}/topup`)
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.text, 'Top up your AIHubMix balance')
})

t.test('envelope mode wraps userinfo and topup answers and errors', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setEnvelope(true)
  const info = (await userinfo(provider, tokens.access_token)).json()
  t.same(Object.keys(info), ['success', 'message', 'data'])
  t.match(info, { success: true, message: '', data: { id: 12345, balance_formatted: '750.00' } })
  t.same((await bearerGet(provider, '/api/oauth2/topup', tokens.access_token)).json(), { success: true, message: '', data: { topup_url: `${provider.url}/topup` } })
  const refused = await userinfo(provider, 'at_mock_unknown')
  t.equal(refused.status, 401)
  t.match(refused.json(), { success: false, error: 'invalid_token', message: String })
  provider.setEnvelope(false)
  t.equal((await userinfo(provider, tokens.access_token)).json().id, 12345, 'bare again')
  t.throws(() => provider.setEnvelope('yes' as never), { code: 'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT' })
})
