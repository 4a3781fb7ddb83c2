import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { login, refresh, startProvider, userinfo, type Answer } from '../helpers/mock-client.js'

function assertInvalidGrant (t: Test, answer: Answer, name: string): void {
  t.equal(answer.status, 400, `${name}: status`)
  t.equal(answer.json().error, 'invalid_grant', `${name}: error`)
}

t.test('rotation: each refresh answers a new refresh token and kills the old one', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  const answer = await refresh(provider, app, tokens.refresh_token)
  t.equal(answer.status, 200)
  t.equal(answer.headers['cache-control'], 'no-store')
  const next = answer.json()
  t.same(Object.keys(next), ['access_token', 'token_type', 'expires_in', 'refresh_token', 'scope'])
  t.not(next.access_token, tokens.access_token)
  t.not(next.refresh_token, tokens.refresh_token)
  t.match(next, { token_type: 'Bearer', expires_in: 7200, scope: 'profile balance' })
  t.equal((await userinfo(provider, next.access_token)).status, 200)
  t.equal((await userinfo(provider, tokens.access_token)).status, 200, 'the older access token lives until it expires')

  const third = (await refresh(provider, app, next.refresh_token)).json()
  t.match(third.refresh_token, /^rt_mock_/)
  t.same(provider.counts().grants, { authorization_code: 1, refresh_token: 2 })
})

t.test('reusing a rotated refresh token: invalid_grant and the whole grant revoked', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  const next = (await refresh(provider, app, tokens.refresh_token)).json()

  assertInvalidGrant(t, await refresh(provider, app, tokens.refresh_token), 'reuse')
  assertInvalidGrant(t, await refresh(provider, app, next.refresh_token), 'the newest refresh token died with the family')
  t.equal((await userinfo(provider, next.access_token)).status, 401, 'the newest access token too')
  t.equal((await userinfo(provider, tokens.access_token)).status, 401, 'and the first')

  const other = await login(provider, app)
  t.equal((await refresh(provider, app, other.refresh_token)).status, 200, 'another grant is untouched')
  t.equal(provider.counts().refreshTokenReuses, 1, 'one reuse counted (the newest token was refused as revoked, not reused)')
  assertInvalidGrant(t, await refresh(provider, app, tokens.refresh_token), 'reuse again')
  t.equal(provider.counts().refreshTokenReuses, 2, 'a reuse on a revoked grant still counts')
})

t.test('refreshReuseRevokes: false: reuse is refused, the family lives', async (t) => {
  const { provider, app } = await startProvider(t, { refreshReuseRevokes: false })
  const tokens = await login(provider, app)
  const next = (await refresh(provider, app, tokens.refresh_token)).json()
  assertInvalidGrant(t, await refresh(provider, app, tokens.refresh_token), 'reuse')
  t.equal((await userinfo(provider, next.access_token)).status, 200)
  t.equal((await refresh(provider, app, next.refresh_token)).status, 200)
})

t.test('rotation off: no refresh_token in the answer, the same one keeps working', async (t) => {
  const { provider, app } = await startProvider(t, { rotateRefreshTokens: false })
  const tokens = await login(provider, app)
  t.match(tokens.refresh_token, /^rt_mock_/, 'the code exchange still gives one')
  for (const round of [1, 2]) {
    const answer = await refresh(provider, app, tokens.refresh_token)
    t.equal(answer.status, 200, `round ${round}`)
    const body = answer.json()
    t.same(Object.keys(body), ['access_token', 'token_type', 'expires_in', 'scope'], `round ${round}: no refresh_token`)
    t.equal((await userinfo(provider, body.access_token)).status, 200)
  }
  t.equal(provider.issued().refreshTokens.length, 1)
})

t.test('setRotation switches at run time, and reset() restores the start options', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setRotation({ rotate: false })
  t.notOk('refresh_token' in (await refresh(provider, app, tokens.refresh_token)).json())
  t.equal((await refresh(provider, app, tokens.refresh_token)).status, 200, 'not rotated, so reusable')
  provider.setRotation({ rotate: true, reuseRevokes: false })
  const next = (await refresh(provider, app, tokens.refresh_token)).json()
  assertInvalidGrant(t, await refresh(provider, app, tokens.refresh_token), 'rotated now')
  t.equal((await userinfo(provider, next.access_token)).status, 200, 'reuse no longer revokes')
  provider.reset()
  const after = (await refresh(provider, app, next.refresh_token)).json()
  assertInvalidGrant(t, await refresh(provider, app, next.refresh_token), 'reuse after reset')
  t.equal((await userinfo(provider, after.access_token)).status, 401, 'reuse revokes again')
  t.throws(() => provider.setRotation({ rotate: 'yes' as never }), { code: 'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT' })
})

t.test('a refresh token is bound to its client', async (t) => {
  const { provider, app } = await startProvider(t)
  const other = provider.createApp({ name: 'Other', redirectUri: app.redirectUri })
  const tokens = await login(provider, app)
  assertInvalidGrant(t, await refresh(provider, other, tokens.refresh_token), 'another client')
  t.equal((await refresh(provider, app, tokens.refresh_token)).status, 200, 'and that attempt did not burn it')
  const wrongSecret = await refresh(provider, app, tokens.refresh_token, { client_secret: other.clientSecret })
  t.equal(wrongSecret.status, 401)
  t.equal(wrongSecret.json().error, 'invalid_client')
})

t.test('unknown, missing and expired refresh tokens', async (t) => {
  const { provider, app } = await startProvider(t)
  assertInvalidGrant(t, await refresh(provider, app, 'rt_mock_unknown'), 'unknown')
  const missing = await refresh(provider, app, '', { refresh_token: undefined })
  t.equal(missing.status, 400)
  t.equal(missing.json().error, 'invalid_request')

  const tokens = await login(provider, app)
  provider.expireRefreshTokens()
  assertInvalidGrant(t, await refresh(provider, app, tokens.refresh_token), 'expireRefreshTokens()')
  t.equal((await userinfo(provider, tokens.access_token)).status, 200, 'access tokens are not touched')
  const later = await login(provider, app)
  t.equal((await refresh(provider, app, later.refresh_token)).status, 200, 'tokens issued afterwards live')
})

t.test('refreshTokenTtlSeconds: a refresh token past its life is invalid_grant', async (t) => {
  const { provider, app } = await startProvider(t, { refreshTokenTtlSeconds: 0.2 })
  const tokens = await login(provider, app)
  await sleep(400)
  assertInvalidGrant(t, await refresh(provider, app, tokens.refresh_token), 'expired')
})

t.test('revoked grant (the user revokes the app): invalid_grant and 401', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.revokeGrants()
  assertInvalidGrant(t, await refresh(provider, app, tokens.refresh_token), 'refresh')
  const info = await userinfo(provider, tokens.access_token)
  t.equal(info.status, 401)
  t.equal(info.json().error, 'invalid_token')
  const again = await login(provider, app)
  t.equal((await userinfo(provider, again.access_token)).status, 200, 'a new login works')
})

t.test('scope on refresh: narrower is granted, wider is invalid_scope', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app, { scope: 'profile' })
  const wider = await refresh(provider, app, tokens.refresh_token, { scope: 'profile balance' })
  t.equal(wider.status, 400)
  t.equal(wider.json().error, 'invalid_scope')
  const unknown = await refresh(provider, app, tokens.refresh_token, { scope: 'admin' })
  t.equal(unknown.json().error, 'invalid_scope')

  const full = await login(provider, app)
  const narrow = (await refresh(provider, app, full.refresh_token, { scope: 'balance' })).json()
  t.equal(narrow.scope, 'balance')
  const info = (await userinfo(provider, narrow.access_token)).json()
  t.notOk('username' in info, 'the narrower access token has no profile')
  const wide = (await refresh(provider, app, narrow.refresh_token)).json()
  t.equal(wide.scope, 'profile balance', 'the refresh token keeps the original grant')
})
