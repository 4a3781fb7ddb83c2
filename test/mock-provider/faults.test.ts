import t from 'tap'
import { OVERSIZE_BYTES, REDIRECT_TARGET } from '@fastify-aihubmix/mock-provider'
import { MOCK_FAULTS } from '../../src/mock-provider/options.js'
import { authorize, call, exchange, getCode, login, refresh, startProvider, userinfo } from '../helpers/mock-client.js'

t.test('http500, http503, http429: error statuses with JSON bodies', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  const expected = [
    ['http500', 500, 'server_error', undefined],
    ['http503', 503, 'temporarily_unavailable', '1'],
    ['http429', 429, 'rate_limited', '1']
  ] as const
  for (const [fault, status, error, retryAfter] of expected) {
    provider.setFault('userinfo', fault)
    const answer = await userinfo(provider, tokens.access_token)
    t.equal(answer.status, status, fault)
    t.equal(answer.json().error, error, fault)
    t.equal(answer.headers['retry-after'], retryAfter, `${fault}: retry-after`)
  }
})

t.test('http401: a live token refused, with the bearer challenge', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setFault('userinfo', 'http401', { times: 1 })
  const refused = await userinfo(provider, tokens.access_token)
  t.equal(refused.status, 401)
  t.equal(refused.headers['www-authenticate'], 'Bearer realm="aihubmix", error="invalid_token"')
  t.equal(refused.json().error, 'invalid_token')
  t.equal((await userinfo(provider, tokens.access_token)).status, 200, 'the token itself is fine')
})

t.test('invalid_client: the token endpoint refuses the app\'s credentials, as for a wrong secret; the grant is untouched', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setFault('token', 'invalid_client', { times: 1 })
  const refused = await refresh(provider, app, tokens.refresh_token)
  t.equal(refused.status, 401)
  t.equal(refused.json().error, 'invalid_client')
  const wrongSecret = await refresh(provider, app, tokens.refresh_token, { client_secret: 'not-the-secret' })
  t.same([wrongSecret.status, wrongSecret.json().error], [refused.status, refused.json().error], 'the answer a wrong client_secret gets')
  const after = await refresh(provider, app, tokens.refresh_token)
  t.equal(after.status, 200, 'the refresh token was not used up by the refusals')
})

t.test('non_json and truncated: 200 answers that do not parse', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)

  provider.setFault('userinfo', 'non_json')
  const html = await userinfo(provider, tokens.access_token)
  t.equal(html.status, 200)
  t.match(html.headers['content-type'], /^text\/html/)
  t.throws(() => html.json())

  provider.setFault('userinfo', 'truncated')
  const cut = await userinfo(provider, tokens.access_token)
  t.equal(cut.status, 200)
  t.match(cut.headers['content-type'], /^application\/json/)
  t.match(cut.text, /^\{"id":12345,/, 'starts like the real answer')
  t.throws(() => cut.json(), SyntaxError)
  t.equal(Number(cut.headers['content-length']), Buffer.byteLength(cut.text), 'a complete HTTP message: the JSON is what is cut')
})

t.test('wrong_types: 200 JSON whose fields have the wrong types, enveloped in envelope mode', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  const code = await getCode(provider, app)

  provider.setFault('token', 'wrong_types')
  const token = await exchange(provider, app, code)
  t.equal(token.status, 200)
  const body = token.json()
  t.type(body.access_token, 'number')
  t.type(body.expires_in, 'string')

  provider.setFault('userinfo', 'wrong_types')
  const info = (await userinfo(provider, tokens.access_token)).json()
  t.type(info.id, 'string')
  t.type(info.username, 'number')

  provider.setEnvelope(true)
  const wrapped = (await userinfo(provider, tokens.access_token)).json()
  t.equal(wrapped.success, true)
  t.type(wrapped.data.id, 'string')

  provider.setFault('token', null)
  t.equal((await exchange(provider, app, code)).status, 200, 'a faulted call never reached the endpoint: the code is unused')
})

t.test('oversize: the real answer padded past 2 MiB, still valid JSON', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setFault('userinfo', 'oversize')
  const answer = await userinfo(provider, tokens.access_token)
  t.equal(answer.status, 200)
  t.ok(answer.text.length > OVERSIZE_BYTES, `${answer.text.length} bytes`)
  const body = answer.json()
  t.equal(body.padding.length, OVERSIZE_BYTES)
  t.match(body, { id: 12345, username: 'user123', balance_formatted: '750.00' })

  provider.setFault('token', 'oversize')
  const token = (await exchange(provider, app, await getCode(provider, app))).json()
  t.ok(provider.issued().accessTokens.includes(token.access_token), 'a real, issued token inside the oversize answer')
})

t.test('null_body and error_in_200', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)

  provider.setFault('userinfo', 'null_body')
  const empty = await userinfo(provider, tokens.access_token)
  t.equal(empty.status, 200)
  t.equal(empty.text, 'null')

  provider.setFault('userinfo', 'error_in_200')
  const bare = await userinfo(provider, tokens.access_token)
  t.equal(bare.status, 200)
  t.same(bare.json(), { error: 'server_error', error_description: 'mock fault: an error in a 200 answer' })

  provider.setEnvelope(true)
  const enveloped = await userinfo(provider, tokens.access_token)
  t.equal(enveloped.status, 200)
  t.same(enveloped.json(), { success: false, message: 'mock fault: an error in a 200 answer', error: 'server_error' })
  provider.setEnvelope(true, { errorCodes: false })
  t.same((await userinfo(provider, tokens.access_token)).json(), { success: false, message: 'mock fault: an error in a 200 answer' }, 'without the code')
  provider.setEnvelope(true, { errorCodes: true })

  provider.setFault('oauth_apps', 'error_in_200')
  const register = await call(`${provider.url}/api/oauth_apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${provider.developerToken}` },
    body: JSON.stringify({ name: 'x', redirect_uri: 'https://a.example/cb' })
  })
  t.equal(register.status, 200)
  t.same(register.json(), { success: false, message: 'mock fault: an error in a 200 answer' })
  t.equal(provider.apps.length, 1, 'nothing registered')
})

t.test('redirect: 302 to another host, without the query', async (t) => {
  const { provider, app } = await startProvider(t)
  provider.setFault('token', 'redirect')
  const answer = await exchange(provider, app, await getCode(provider, app))
  t.equal(answer.status, 302)
  t.equal(answer.headers.location, `${REDIRECT_TARGET}/api/oauth2/token`)
  provider.setFault('authorize', 'redirect')
  const auth = await authorize(provider, app)
  t.equal(auth.headers.location, `${REDIRECT_TARGET}/api/oauth2/authorize`)
  t.same(provider.issued().codes.length, 1, 'the faulted authorize issued no code')
})

t.test('set_cookie: the normal answer plus a Set-Cookie header', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  t.equal((await userinfo(provider, tokens.access_token)).headers['set-cookie'], undefined)
  provider.setFault('userinfo', 'set_cookie')
  const answer = await userinfo(provider, tokens.access_token)
  t.equal(answer.status, 200)
  t.match(answer.headers['set-cookie'], /^aihubmix_mock_session=/)
  t.equal(answer.json().id, 12345)
})

t.test('hang: no answer until close(), and close() does not wait for it', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setFault('userinfo', 'hang')
  let settled = false
  const hanging = userinfo(provider, tokens.access_token).finally(() => { settled = true })
  // another endpoint answers while userinfo hangs
  t.equal((await call(`${provider.url}/api/oauth2/topup`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status, 200)
  t.equal(settled, false, 'still hanging')
  t.equal(provider.counts().userinfo, 1, 'counted on arrival')
  await provider.close()
  await t.rejects(hanging, 'the client sees the connection close')
})

t.test('times: only the next N calls are faulted, then normal', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setFault('userinfo', 'http503', { times: 2 })
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await userinfo(provider, tokens.access_token)).status)
  t.same(statuses, [503, 503, 200, 200])
  t.throws(() => provider.setFault('userinfo', 'http503', { times: 0 }), { message: /"opts\.times"/ })
})

t.test('faults apply to the named endpoint only, and null disarms', async (t) => {
  const { provider, app } = await startProvider(t)
  provider.setFault('userinfo', 'http500')
  provider.setFault('topup', 'http500')
  provider.setFault('oauth_apps', 'http500')
  const tokens = await login(provider, app)
  t.equal(tokens.token_type, 'Bearer', 'authorize and token unaffected')
  t.equal((await userinfo(provider, tokens.access_token)).status, 500)
  provider.setFault('userinfo', null)
  t.equal((await userinfo(provider, tokens.access_token)).status, 200)
})

t.test('every fault switch is accepted on every endpoint; bad ones are refused', async (t) => {
  const { provider } = await startProvider(t)
  for (const fault of MOCK_FAULTS) provider.setFault('authorize', fault)
  t.throws(() => provider.setFault('authorize', 'explode' as never), { code: 'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT', message: /"fault"/ })
  t.throws(() => provider.setFault('login' as never, 'http500'), { message: /"endpoint"/ })
  t.throws(() => provider.setLatency('token', -1), { message: /"ms"/ })
  t.throws(() => provider.setLatency('nope' as never, 1), { message: /"endpoint"/ })
})

t.test('counts: every call counted, faulted ones included; token calls by grant type', async (t) => {
  const { provider, app } = await startProvider(t)
  provider.setFault('token', 'http500', { times: 1 })
  const code = await getCode(provider, app)
  t.equal((await exchange(provider, app, code)).status, 500)
  const tokens = (await exchange(provider, app, code)).json()
  await call(`${provider.url}/api/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: app.clientId, client_secret: app.clientSecret }).toString()
  })
  await userinfo(provider, 'at_mock_unknown')
  t.same(provider.counts(), {
    authorize: 1,
    token: 3,
    userinfo: 1,
    topup: 0,
    oauth_apps: 0,
    grants: { authorization_code: 2, refresh_token: 1 },
    refreshTokenReuses: 0,
    revocations: { refresh_token: 0, access_token: 0, unknown: 0 }
  })
  const snapshot = provider.counts()
  snapshot.grants.refresh_token = 99
  t.equal(provider.counts().grants.refresh_token, 1, 'counts() is a copy')
  provider.resetCounts()
  t.same(provider.counts(), { authorize: 0, token: 0, userinfo: 0, topup: 0, oauth_apps: 0, grants: { authorization_code: 0, refresh_token: 0 }, refreshTokenReuses: 0, revocations: { refresh_token: 0, access_token: 0, unknown: 0 } })
})

t.test('latency: the named endpoint waits at least that long, others do not wait for it', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setLatency('userinfo', 300)
  const start = performance.now()
  t.equal((await userinfo(provider, tokens.access_token)).status, 200)
  t.ok(performance.now() - start >= 290, 'delayed by the latency')

  provider.setLatency('token', 60_000)
  let settled = false
  const slow = exchange(provider, app, await getCode(provider, app)).finally(() => { settled = true })
  provider.setLatency('userinfo', 0)
  t.equal((await userinfo(provider, tokens.access_token)).status, 200)
  t.equal(settled, false, 'the slow token call is still waiting')
  t.equal(provider.counts().token, 2, 'counted on arrival, before the wait')
  await provider.close()
  await t.rejects(slow, 'close() cuts the wait short')
})

t.test('latency "all" and reset()', async (t) => {
  const { provider, app } = await startProvider(t)
  const tokens = await login(provider, app)
  provider.setLatency('all', 200)
  provider.setFault('userinfo', 'http500')
  provider.setEnvelope(true)
  const start = performance.now()
  await call(`${provider.url}/api/oauth2/topup`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
  t.ok(performance.now() - start >= 190, 'topup delayed too')

  provider.setLatency('userinfo', 600_000)
  provider.reset()
  t.same(provider.counts().userinfo, 0, 'counts reset')
  // were the latency kept, this call would wait ten minutes and the generous deadline fail it
  const answer = await call(`${provider.url}/api/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` }, signal: AbortSignal.timeout(20_000) })
  t.equal(answer.status, 200, 'fault cleared')
  t.equal(answer.json().id, 12345, 'envelope back to the start option')
  t.equal(provider.apps.length, 1, 'apps kept')
  t.equal(provider.issued().accessTokens.length, 1, 'tokens kept')
})
