import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import {
  call,
  exchange,
  getCode,
  pkcePair,
  refresh,
  startProvider,
  tokenCall,
  userinfo,
  type Answer
} from '../helpers/mock-client.js'

function assertTokenError (t: Test, answer: Answer, status: number, error: string, name: string): void {
  t.equal(answer.status, status, `${name}: status`)
  t.equal(answer.headers['cache-control'], 'no-store', `${name}: no-store`)
  const body = answer.json()
  t.same(Object.keys(body), ['error', 'error_description'], `${name}: RFC 6749 body`)
  t.equal(body.error, error, `${name}: error`)
}

t.test('a code exchanged for tokens: RFC 6749 answer, no-store', async (t) => {
  const { provider, app } = await startProvider(t)
  const answer = await exchange(provider, app, await getCode(provider, app))
  t.equal(answer.status, 200)
  t.equal(answer.headers['cache-control'], 'no-store')
  t.equal(answer.headers.pragma, 'no-cache')
  t.match(answer.headers['content-type'], /^application\/json/)
  const body = answer.json()
  t.same(Object.keys(body), ['access_token', 'token_type', 'expires_in', 'refresh_token', 'scope'])
  t.match(body, { token_type: 'Bearer', expires_in: 7200, scope: 'profile balance' })
  t.match(body.access_token, /^at_mock_[A-Za-z0-9_-]{32}$/)
  t.match(body.refresh_token, /^rt_mock_[A-Za-z0-9_-]{32}$/)
  t.same(provider.issued().accessTokens, [body.access_token])
  t.same(provider.issued().refreshTokens, [body.refresh_token])
  t.equal((await userinfo(provider, body.access_token)).status, 200)
  t.same(provider.counts().grants, { authorization_code: 1, refresh_token: 0 })
})

t.test('TTL and prefix options show in the answer', async (t) => {
  const { provider, app } = await startProvider(t, { accessTokenTtlSeconds: 60, tokenPrefix: 'sweep' })
  const body = (await exchange(provider, app, await getCode(provider, app))).json()
  t.equal(body.expires_in, 60)
  t.match(body.access_token, /^at_sweep_/)
  t.match(body.refresh_token, /^rt_sweep_/)
})

t.test('only form-encoded bodies: JSON and others are invalid_request', async (t) => {
  const { provider, app } = await startProvider(t)
  const code = await getCode(provider, app)
  const form = { grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, client_id: app.clientId, client_secret: app.clientSecret }
  const url = `${provider.url}/api/oauth2/token`
  assertTokenError(t, await call(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(form) }), 400, 'invalid_request', 'JSON')
  assertTokenError(t, await call(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: new URLSearchParams(form).toString() }), 400, 'invalid_request', 'text/plain')
  assertTokenError(t, await call(url, { method: 'POST' }), 400, 'invalid_request', 'no body')
  assertTokenError(t, await call(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `x=${'a'.repeat(100_000)}` }), 400, 'invalid_request', 'over the body limit')
  // the code survived all of that
  const ok = await call(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }, body: new URLSearchParams(form).toString() })
  t.equal(ok.status, 200, 'a charset parameter is fine')
})

t.test('client authentication: wrong client, wrong or missing secret are 401 invalid_client', async (t) => {
  const { provider, app } = await startProvider(t)
  const other = provider.createApp({ name: 'Other', redirectUri: app.redirectUri })
  const code = await getCode(provider, app)
  assertTokenError(t, await exchange(provider, app, code, { client_secret: other.clientSecret }), 401, 'invalid_client', 'another app\'s secret')
  assertTokenError(t, await exchange(provider, app, code, { client_secret: `${app.clientSecret}x` }), 401, 'invalid_client', 'wrong secret')
  assertTokenError(t, await exchange(provider, app, code, { client_secret: undefined }), 401, 'invalid_client', 'no secret')
  assertTokenError(t, await exchange(provider, app, code, { client_id: 'client_unknown' }), 401, 'invalid_client', 'unknown client')
  assertTokenError(t, await exchange(provider, app, code, { client_id: undefined }), 401, 'invalid_client', 'no client_id')
  // HTTP Basic is not read: the guide only ever sends the secret in the body
  const basic = await call(`${provider.url}/api/oauth2/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${app.clientId}:${app.clientSecret}`).toString('base64')}`
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: app.redirectUri }).toString()
  })
  assertTokenError(t, basic, 401, 'invalid_client', 'HTTP Basic')
  t.equal((await exchange(provider, app, code)).status, 200, 'failed client authentication does not burn the code')
})

t.test('a code is bound to its client and its redirect_uri', async (t) => {
  const { provider, app } = await startProvider(t)
  const other = provider.createApp({ name: 'Other', redirectUri: 'http://localhost:4000/cb' })
  const code = await getCode(provider, app)
  assertTokenError(t, await exchange(provider, other, code, { redirect_uri: app.redirectUri }), 400, 'invalid_grant', 'another client')
  assertTokenError(t, await exchange(provider, app, code, { redirect_uri: `${app.redirectUri}/` }), 400, 'invalid_grant', 'another redirect_uri')
  assertTokenError(t, await exchange(provider, app, code, { redirect_uri: undefined }), 400, 'invalid_request', 'no redirect_uri')
  assertTokenError(t, await exchange(provider, app, 'code_mock_unknown'), 400, 'invalid_grant', 'unknown code')
  assertTokenError(t, await exchange(provider, app, code, { code: undefined }), 400, 'invalid_request', 'no code')
})

t.test('a reused code is invalid_grant and revokes every token it gave (RFC 6749 4.1.2)', async (t) => {
  const { provider, app } = await startProvider(t)
  const code = await getCode(provider, app)
  const first = (await exchange(provider, app, code)).json()
  t.equal((await userinfo(provider, first.access_token)).status, 200)
  const refreshed = (await refresh(provider, app, first.refresh_token)).json()

  assertTokenError(t, await exchange(provider, app, code), 400, 'invalid_grant', 'second use')
  t.equal((await userinfo(provider, first.access_token)).status, 401, 'first access token revoked')
  t.equal((await userinfo(provider, refreshed.access_token)).status, 401, 'tokens refreshed from it revoked too')
  assertTokenError(t, await refresh(provider, app, refreshed.refresh_token), 400, 'invalid_grant', 'refresh after revocation')

  // another login is untouched
  const fresh = (await exchange(provider, app, await getCode(provider, app))).json()
  t.equal((await userinfo(provider, fresh.access_token)).status, 200)
})

t.test('an expired code is invalid_grant', async (t) => {
  const { provider, app } = await startProvider(t, { codeTtlSeconds: 0.2 })
  const code = await getCode(provider, app)
  await sleep(400)
  assertTokenError(t, await exchange(provider, app, code), 400, 'invalid_grant', 'expired')
  t.same(provider.issued().accessTokens, [])
})

t.test('PKCE S256: verified when a challenge was recorded', async (t) => {
  const { provider, app } = await startProvider(t)
  const { verifier, challenge } = pkcePair()
  const withChallenge = async (): Promise<string> => getCode(provider, app, { code_challenge: challenge, code_challenge_method: 'S256' })

  const code = await withChallenge()
  assertTokenError(t, await exchange(provider, app, code), 400, 'invalid_grant', 'no verifier')
  assertTokenError(t, await exchange(provider, app, code, { code_verifier: pkcePair().verifier }), 400, 'invalid_grant', 'another verifier')
  assertTokenError(t, await exchange(provider, app, code, { code_verifier: challenge }), 400, 'invalid_grant', 'the challenge itself')
  assertTokenError(t, await exchange(provider, app, code, { code_verifier: 'short' }), 400, 'invalid_grant', 'malformed verifier')
  t.equal((await exchange(provider, app, code, { code_verifier: verifier })).status, 200, 'the right verifier')

  const plain = await getCode(provider, app)
  // A PKCE downgrade (the challenge stripped from the authorization request, the code then sent with the client's
  // verifier) is refused, as RFC 9700 2.1.1 asks; the code is not burnt by it.
  assertTokenError(t, await exchange(provider, app, plain, { code_verifier: verifier }), 400, 'invalid_grant', 'a verifier for a code without a challenge')
  t.equal((await exchange(provider, app, plain)).status, 200, 'the same code without a verifier')
})

t.test('grant_type and repeated parameters', async (t) => {
  const { provider, app } = await startProvider(t)
  const code = await getCode(provider, app)
  assertTokenError(t, await exchange(provider, app, code, { grant_type: undefined }), 400, 'invalid_request', 'no grant_type')
  assertTokenError(t, await exchange(provider, app, code, { grant_type: 'password' }), 400, 'unsupported_grant_type', 'password')
  assertTokenError(t, await exchange(provider, app, code, { grant_type: 'client_credentials' }), 400, 'unsupported_grant_type', 'client_credentials')
  const repeated = await call(`${provider.url}/api/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `${new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: app.redirectUri, client_id: app.clientId, client_secret: app.clientSecret }).toString()}&code=${code}`
  })
  assertTokenError(t, repeated, 400, 'invalid_request', 'repeated code')
  t.same(provider.counts().grants, { authorization_code: 1, refresh_token: 0 }, 'only well-formed grant types are counted by type')
  t.equal(provider.counts().token, 4)
})

t.test('envelope mode: errors are {success:false, message, error} with RFC status codes', async (t) => {
  const { provider, app } = await startProvider(t, { envelope: true })
  const wrong = await tokenCall(provider, { grant_type: 'authorization_code', code: 'x', redirect_uri: app.redirectUri, client_id: app.clientId, client_secret: 'nope' })
  t.equal(wrong.status, 401)
  t.same(wrong.json(), { success: false, message: 'client authentication failed', error: 'invalid_client' })
  const ok = await exchange(provider, app, await getCode(provider, app))
  t.equal(ok.status, 200)
  const body = ok.json()
  t.same(Object.keys(body), ['success', 'message', 'data'])
  t.match(body, { success: true, message: '', data: { token_type: 'Bearer', scope: 'profile balance' } })
  t.match(body.data.access_token, /^at_mock_/)
})
