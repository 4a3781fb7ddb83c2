import t from 'tap'
import { call, formBody, login, refresh, startProvider, userinfo } from '../helpers/mock-client.js'
import { startStack } from '../helpers/stack.js'

// The provider's guide documents no revocation endpoint; aihubmix-proxy calls one at sign-out when `revocationUrl` is
// set. `revocationEndpoint: true` gives the mock RFC 7009's, so that call can be tested against it.

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

t.test('off by default: no revocation endpoint, as in the guide', async (t) => {
  const { provider } = await startProvider(t)
  t.equal((await call(`${provider.url}/api/oauth2/revoke`, { method: 'POST', headers: FORM, body: 'token=x' })).status, 404)
})

t.test('on: a refresh token revokes its grant; an access token only itself; unknown or other clients\' tokens change nothing', async (t) => {
  const { provider, app } = await startProvider(t, { revocationEndpoint: true })
  const other = provider.createApp({ name: 'Other app', redirectUri: app.redirectUri })
  const revoke = async (token: string, client = app): Promise<number> => (await call(`${provider.url}/api/oauth2/revoke`, {
    method: 'POST',
    headers: FORM,
    body: formBody({ token, token_type_hint: 'refresh_token', client_id: client.clientId, client_secret: client.clientSecret })
  })).status

  const first = await login(provider, app)
  const second = await login(provider, app)
  t.equal(await revoke(first.refresh_token, other), 200, 'another client\'s token: 200 all the same (RFC 7009 2.2)')
  t.equal((await userinfo(provider, first.access_token)).status, 200, '...and nothing revoked')
  t.equal(await revoke('rt_never_issued'), 200, 'an unknown token: 200')

  t.equal(await revoke(second.access_token), 200, 'an access token')
  t.equal((await userinfo(provider, second.access_token)).status, 401, 'that access token is dead')
  t.equal((await refresh(provider, app, second.refresh_token)).status, 200, 'its grant lives on')

  t.equal(await revoke(first.refresh_token), 200, 'a refresh token')
  t.equal((await userinfo(provider, first.access_token)).status, 401, 'the grant\'s access token is dead')
  t.equal((await refresh(provider, app, first.refresh_token)).json().error, 'invalid_grant', 'the refresh token is refused')
  t.same(provider.counts().revocations, { refresh_token: 1, access_token: 1, unknown: 2 })
  t.equal(provider.counts().token, 4, 'not counted as token calls (two sign-ins and two refreshes are)')
})

// RFC 7009 2.2: a token already invalid is answered 200 and changes nothing; the mock counts it `unknown`, as a token
// it never issued. Before, a dead token of the client's own was counted by its kind (and a rotated-away refresh token
// revoked the grant the rotation had moved on).
t.test('on: tokens already dead (revoked, rotated away, expired) and another client\'s access token count as unknown and change nothing', async (t) => {
  const { provider, app } = await startProvider(t, { revocationEndpoint: true })
  const other = provider.createApp({ name: 'Other app', redirectUri: app.redirectUri })
  const revoke = async (token: string, client = app): Promise<number> => (await call(`${provider.url}/api/oauth2/revoke`, {
    method: 'POST',
    headers: FORM,
    body: formBody({ token, client_id: client.clientId, client_secret: client.clientSecret })
  })).status

  const first = await login(provider, app)
  t.equal(await revoke(first.access_token, other), 200, 'another client\'s access token: 200')
  t.equal((await userinfo(provider, first.access_token)).status, 200, '...and it lives')
  t.same(provider.counts().revocations, { refresh_token: 0, access_token: 0, unknown: 1 }, 'counted unknown')

  t.equal(await revoke(first.refresh_token), 200)
  t.equal(await revoke(first.refresh_token), 200, 'the same refresh token again, now revoked')
  t.equal(await revoke(first.access_token), 200, 'an access token of the revoked grant')
  t.same(provider.counts().revocations, { refresh_token: 1, access_token: 0, unknown: 3 }, 'one revocation; the dead tokens unknown')

  provider.resetCounts()
  const second = await login(provider, app)
  const rotated = (await refresh(provider, app, second.refresh_token)).json()
  t.equal(await revoke(second.refresh_token), 200, 'a refresh token the rotation used')
  t.same(provider.counts().revocations, { refresh_token: 0, access_token: 0, unknown: 1 }, 'counted unknown')
  t.equal((await userinfo(provider, rotated.access_token)).status, 200, 'the grant lives on')
  const third = await refresh(provider, app, rotated.refresh_token)
  t.equal(third.status, 200, 'its current refresh token still refreshes')

  t.equal(await revoke(rotated.access_token), 200)
  t.equal(await revoke(rotated.access_token), 200, 'the same access token again')
  provider.expireAccessTokens()
  provider.expireRefreshTokens()
  t.equal(await revoke(third.json().access_token), 200, 'an expired access token')
  t.equal(await revoke(third.json().refresh_token), 200, 'an expired refresh token')
  t.same(provider.counts().revocations, { refresh_token: 0, access_token: 1, unknown: 4 }, 'one access token revoked; the dead ones unknown')
})

t.test('on: the client must authenticate, and name a token, in a form', async (t) => {
  const { provider, app } = await startProvider(t, { revocationEndpoint: true })
  const tokens = await login(provider, app)
  const post = async (body: string, headers: Record<string, string> = FORM): Promise<{ status: number, error: unknown }> => {
    const answer = await call(`${provider.url}/api/oauth2/revoke`, { method: 'POST', headers, body })
    return { status: answer.status, error: answer.text === '' ? undefined : answer.json().error }
  }
  t.same(await post(formBody({ token: tokens.refresh_token, client_id: app.clientId, client_secret: 'wrong' })), { status: 401, error: 'invalid_client' })
  t.same(await post(formBody({ client_id: app.clientId, client_secret: app.clientSecret })), { status: 400, error: 'invalid_request' })
  t.same(await post(JSON.stringify({ token: tokens.refresh_token }), { 'content-type': 'application/json' }), { status: 400, error: 'invalid_request' })
  t.equal((await refresh(provider, app, tokens.refresh_token)).status, 200, 'nothing was revoked')
})

t.test('aihubmix-proxy\'s revocationUrl at the mock: sign-out revokes the grant at the provider', async (t) => {
  const stack = await startStack({ mock: { revocationEndpoint: true }, proxy: (mock) => ({ revocationUrl: `${mock.url}/api/oauth2/revoke` }) })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const live = stack.mock.issued().refreshTokens.at(-1) as string
  t.equal((await browser.post(`${stack.url}/auth/logout`, { 'x-csrf': '1' })).status, 204, 'signed out')
  const deadline = Date.now() + 3000
  while (stack.mock.counts().revocations.refresh_token === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(stack.mock.counts().revocations.refresh_token, 1, 'the refresh token was revoked')
  const app = stack.mock.apps[0]
  if (app === undefined) throw new Error('no app')
  t.equal((await refresh(stack.mock, app, live)).json().error, 'invalid_grant', 'the provider refuses it now')
})
