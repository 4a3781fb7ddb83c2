import t from 'tap'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { call, login, startProvider, userinfo, type Answer } from '../helpers/mock-client.js'

async function control (provider: MockProvider, path: string, body?: unknown, prefix = '/__mock'): Promise<Answer> {
  return call(`${provider.url}${prefix}${path}`, body === undefined
    ? { method: 'POST' }
    : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
}

async function get (provider: MockProvider, path: string, prefix = '/__mock'): Promise<Answer> {
  return call(`${provider.url}${prefix}${path}`)
}

t.test('off by default: every control path is a 404', async (t) => {
  const provider = await startMockProvider()
  t.teardown(() => provider.close())
  for (const path of ['/counts', '/issued', '/apps', '/user']) t.equal((await get(provider, path)).status, 404, `GET ${path}`)
  for (const path of ['/reset', '/revoke-grants', '/apps', '/fault']) t.equal((await control(provider, path, {})).status, 404, `POST ${path}`)
  const notFound = await get(provider, '/counts?code=code_mock_secret')
  t.same(notFound.json(), { error: 'not_found', message: 'no such endpoint' })
})

t.test('on: apps, user, counts and issued over HTTP', async (t) => {
  const { provider } = await startProvider(t, { controlApi: true })
  const created = await control(provider, '/apps', { name: 'Remote', redirectUri: 'http://localhost:5000/cb' })
  t.equal(created.status, 201)
  const app = created.json()
  t.match(app, { id: 2, name: 'Remote', redirectUri: 'http://localhost:5000/cb', clientSecret: /^secret_mock_/ })
  t.same((await get(provider, '/apps')).json(), provider.apps)

  const tokens = await login(provider, app)
  t.same((await get(provider, '/counts')).json(), provider.counts())
  const issued = (await get(provider, '/issued')).json()
  t.same(issued, provider.issued())
  t.ok(issued.accessTokens.includes(tokens.access_token))

  const user = await control(provider, '/user', { patch: { used_quota: 0 } })
  t.equal(user.status, 200)
  t.equal(user.json().used_quota, 0)
  t.same((await get(provider, '/user')).json(), provider.user)
  t.equal((await userinfo(provider, tokens.access_token)).json().balance_formatted, '1000.00')

  const bad = await control(provider, '/apps', { name: 'x', redirectUri: 'nope' })
  t.equal(bad.status, 400)
  t.same(bad.json(), { error: 'invalid_argument', message: 'Invalid argument "app.redirectUri": must be an absolute http(s) URL' })
})

t.test('on: the switches over HTTP', async (t) => {
  const { provider, app } = await startProvider(t, { controlApi: { prefix: '/control' } })
  t.equal((await get(provider, '/counts')).status, 404, 'not under the default prefix')
  const tokens = await login(provider, app)

  t.equal((await control(provider, '/fault', { endpoint: 'userinfo', fault: 'http503', times: 1 }, '/control')).status, 204)
  t.equal((await userinfo(provider, tokens.access_token)).status, 503)
  t.equal((await userinfo(provider, tokens.access_token)).status, 200)

  await control(provider, '/fault', { endpoint: 'userinfo', fault: 'http500' }, '/control')
  await control(provider, '/fault', { endpoint: 'userinfo', fault: null }, '/control')
  t.equal((await userinfo(provider, tokens.access_token)).status, 200, 'fault: null disarms')

  t.equal((await control(provider, '/envelope', { on: true }, '/control')).status, 204)
  t.equal((await userinfo(provider, tokens.access_token)).json().success, true)
  await control(provider, '/envelope', { on: false }, '/control')

  t.equal((await control(provider, '/latency', { endpoint: 'all', ms: 0 }, '/control')).status, 204)
  t.equal((await control(provider, '/rotation', { rotate: false }, '/control')).status, 204)
  t.equal((await control(provider, '/expire-access-tokens', undefined, '/control')).status, 204)
  t.equal((await userinfo(provider, tokens.access_token)).status, 401)

  const again = await login(provider, app)
  t.notOk('refresh_token' in (await call(`${provider.url}/api/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: again.refresh_token, client_id: app.clientId, client_secret: app.clientSecret }).toString()
  })).json(), 'rotation switched off')
  t.equal((await control(provider, '/expire-refresh-tokens', undefined, '/control')).status, 204)
  t.equal((await control(provider, '/revoke-grants', undefined, '/control')).status, 204)
  t.equal((await userinfo(provider, again.access_token)).status, 401)

  t.equal((await control(provider, '/reset-counts', undefined, '/control')).status, 204)
  t.equal(provider.counts().userinfo, 0)
  await control(provider, '/fault', { endpoint: 'topup', fault: 'http500' }, '/control')
  t.equal((await control(provider, '/reset', undefined, '/control')).status, 204)
  t.equal((await call(`${provider.url}/api/oauth2/topup`)).status, 401, 'the fault is gone')
})

t.test('on: bad control requests are 400 and change nothing', async (t) => {
  const { provider } = await startProvider(t, { controlApi: true })
  const cases: Array<[string, unknown, RegExp]> = [
    ['/fault', { endpoint: 'userinfo', fault: 'explode' }, /"fault"/],
    ['/fault', { endpoint: 'nowhere', fault: 'http500' }, /"endpoint"/],
    ['/fault', { endpoint: 'userinfo', fault: 'http500', times: -1 }, /"opts\.times"/],
    ['/latency', { endpoint: 'token', ms: 'slow' }, /"ms"/],
    ['/envelope', {}, /"on"/],
    ['/rotation', { rotate: 1 }, /"opts\.rotate"/],
    ['/user', { patch: { quota: 'lots' } }, /"user\.quota"/],
    ['/user', {}, /"user"/]
  ]
  for (const [path, body, message] of cases) {
    const answer = await control(provider, path, body)
    t.equal(answer.status, 400, path)
    t.equal(answer.json().error, 'invalid_argument', path)
    t.match(answer.json().message, message, path)
  }
  const notJson = await call(`${provider.url}/__mock/fault`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
  t.equal(notJson.status, 400)
  t.same(notJson.json(), { error: 'invalid_request', message: 'the body is not valid JSON' })
  t.equal((await userinfo(provider, 'x')).status, 401, 'no fault armed')
  t.equal(provider.user.quota, 1000000)
})
