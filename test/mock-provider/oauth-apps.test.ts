import t from 'tap'
import { MockInvalidArgumentError, startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { call, type Answer } from '../helpers/mock-client.js'

async function register (provider: MockProvider, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return call(`${provider.url}/api/oauth_apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${provider.developerToken}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body)
  })
}

t.test('a developer registers an app and gets its credentials in the envelope', async (t) => {
  const provider = await startMockProvider()
  t.teardown(() => provider.close())
  t.equal(provider.developerToken, 'dev_mock_token')

  const before = Math.floor(Date.now() / 1000)
  const answer = await register(provider, { name: 'My app', description: 'demo', redirect_uri: 'https://app.example/oauth/callback' })
  t.equal(answer.status, 200)
  t.match(answer.headers['content-type'], /^application\/json/)
  const body = answer.json()
  t.same(Object.keys(body), ['success', 'message', 'data'])
  t.equal(body.success, true)
  t.equal(body.message, '')
  t.same(Object.keys(body.data), ['id', 'name', 'client_id', 'client_secret', 'redirect_uri', 'created_time'])
  t.equal(body.data.id, 1)
  t.equal(body.data.name, 'My app')
  t.match(body.data.client_id, /^client_[0-9a-f]{24}$/)
  t.match(body.data.client_secret, /^secret_mock_[A-Za-z0-9_-]{32}$/)
  t.equal(body.data.redirect_uri, 'https://app.example/oauth/callback')
  t.ok(Number.isInteger(body.data.created_time) && body.data.created_time >= before)

  t.same(provider.apps, [{
    id: 1,
    name: 'My app',
    description: 'demo',
    clientId: body.data.client_id,
    clientSecret: body.data.client_secret,
    redirectUri: 'https://app.example/oauth/callback',
    createdTime: body.data.created_time
  }])
  t.same(provider.issued().clientSecrets, [body.data.client_secret])

  const second = (await register(provider, { name: 'Other', redirect_uri: 'http://localhost:3000/cb' })).json()
  t.equal(second.data.id, 2)
  t.not(second.data.client_id, body.data.client_id)
  t.equal(provider.counts().oauth_apps, 2)
})

t.test('without a valid developer token: 401 and nothing registered', async (t) => {
  const provider = await startMockProvider()
  t.teardown(() => provider.close())
  const body = { name: 'x', redirect_uri: 'https://app.example/cb' }
  const cases: Array<[string, Record<string, string>]> = [
    ['missing', { authorization: '' }],
    ['wrong token', { authorization: 'Bearer dev_mock_wrong' }],
    ['not Bearer', { authorization: `Basic ${provider.developerToken}` }],
    ['an access-token-looking value', { authorization: 'Bearer at_mock_x' }]
  ]
  for (const [name, headers] of cases) {
    const answer = await register(provider, body, headers)
    t.equal(answer.status, 401, name)
    t.same(answer.json(), { success: false, message: 'a valid developer token is required' }, name)
  }
  t.same(provider.apps, [])
})

t.test('developerTokens replaces the default token', async (t) => {
  const provider = await startMockProvider({ developerTokens: ['dev_one', 'dev_two'] })
  t.teardown(() => provider.close())
  t.equal(provider.developerToken, 'dev_one')
  const body = { name: 'x', redirect_uri: 'https://app.example/cb' }
  t.equal((await register(provider, body, { authorization: 'Bearer dev_mock_token' })).status, 401)
  t.equal((await register(provider, body, { authorization: 'Bearer dev_two' })).status, 200)
  t.same(provider.issued().developerTokens, ['dev_one', 'dev_two'])
})

t.test('an invalid body: 400 with a message naming the field', async (t) => {
  const provider = await startMockProvider()
  t.teardown(() => provider.close())
  const cases: Array<[string, unknown, RegExp, Record<string, string>?]> = [
    ['not JSON', '{"name":', /not valid JSON/],
    ['a JSON array', '[]', /JSON object/],
    ['form-encoded', 'name=x&redirect_uri=https%3A%2F%2Fa.example', /application\/json/, { 'content-type': 'application/x-www-form-urlencoded' }],
    ['no name', { redirect_uri: 'https://app.example/cb' }, /^name /],
    ['blank name', { name: '   ', redirect_uri: 'https://app.example/cb' }, /^name /],
    ['name not a string', { name: 7, redirect_uri: 'https://app.example/cb' }, /^name /],
    ['no redirect_uri', { name: 'x' }, /^redirect_uri /],
    ['relative redirect_uri', { name: 'x', redirect_uri: '/auth/callback' }, /^redirect_uri must be an absolute http\(s\) URL/],
    ['ftp redirect_uri', { name: 'x', redirect_uri: 'ftp://app.example/cb' }, /^redirect_uri must be an absolute http\(s\) URL/],
    ['javascript: redirect_uri', { name: 'x', redirect_uri: 'javascript:alert(1)' }, /^redirect_uri must be an absolute http\(s\) URL/],
    ['redirect_uri with a fragment', { name: 'x', redirect_uri: 'https://app.example/cb#x' }, /^redirect_uri must not have a fragment/],
    ['redirect_uri with user info', { name: 'x', redirect_uri: 'https://u:p@app.example/cb' }, /^redirect_uri must not carry user info/],
    ['description not a string', { name: 'x', redirect_uri: 'https://app.example/cb', description: 5 }, /^description /]
  ]
  for (const [name, body, message, headers] of cases) {
    const answer = await register(provider, body, headers)
    t.equal(answer.status, 400, name)
    const json = answer.json()
    t.equal(json.success, false, name)
    t.match(json.message, message, name)
  }
  t.same(provider.apps, [])
})

t.test('a body over the size limit: 400 in the envelope, not a crash', async (t) => {
  const provider = await startMockProvider()
  t.teardown(() => provider.close())
  const answer = await register(provider, { name: 'x', redirect_uri: 'https://app.example/cb', description: 'x'.repeat(100_000) })
  t.equal(answer.status, 400)
  t.same(answer.json(), { success: false, message: 'the request could not be read' })
})

t.test('createApp registers in process and refuses bad input with a typed error', async (t) => {
  const provider = await startMockProvider({ tokenPrefix: 'leak' })
  t.teardown(() => provider.close())
  const app = provider.createApp({ name: 'In process', redirectUri: 'http://localhost:3000/auth/callback' })
  t.match(app, { id: 1, name: 'In process', description: '', redirectUri: 'http://localhost:3000/auth/callback' })
  t.match(app.clientSecret, /^secret_leak_/)

  const fixed = provider.createApp({ name: 'Fixed', redirectUri: 'https://a.example/cb', clientId: 'client_fixed', clientSecret: 'secret_fixed' })
  t.equal(fixed.clientId, 'client_fixed')
  t.equal(fixed.clientSecret, 'secret_fixed')

  // the returned app is a copy: mutating it changes nothing
  fixed.redirectUri = 'https://evil.example/cb'
  t.equal(provider.apps[1]?.redirectUri, 'https://a.example/cb')

  const bad: Array<[unknown, string]> = [
    [{ name: '', redirectUri: 'https://a.example/cb' }, 'app.name'],
    [{ name: 'x', redirectUri: 'not a url' }, 'app.redirectUri'],
    [{ name: 'x', redirectUri: 'https://a.example/cb', clientId: 'client_fixed' }, 'app.clientId'],
    [{ name: 'x', redirectUri: 'https://a.example/cb', clientSecret: 'has space' }, 'app.clientSecret'],
    [null, 'app']
  ]
  for (const [input, path] of bad) {
    t.throws(() => provider.createApp(input as never), { code: 'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT', statusCode: 400 }, path)
    try {
      provider.createApp(input as never)
    } catch (err) {
      t.ok(err instanceof MockInvalidArgumentError)
      t.match((err as Error).message, `Invalid argument "${path}"`)
    }
  }
  t.equal(provider.apps.length, 2)
  t.equal(provider.counts().oauth_apps, 0, 'in-process registration is not an HTTP call')
})
