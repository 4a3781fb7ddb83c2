import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startMockProvider, type MockFault, type MockProvider } from '@fastify-aihubmix/mock-provider'
import {
  createApp,
  ProviderBadAnswerError,
  ProviderError,
  ProviderTimeoutError,
  ProviderUnreachableError
} from 'aihubmix-oauth'
import { closedPort, lines, runCli, startHttpServer, tempDir } from './capture.js'

const REDIRECT = 'https://app.example.com/auth/callback'

async function startMock (t: Test): Promise<MockProvider> {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  return mock
}

/** One failing run: exit 1, exactly one `error:` line, no env file, nothing secret printed. */
async function expectFailure (t: Test, opts: { baseUrl: string, token: string, secrets: () => string[], message: RegExp }): Promise<void> {
  const cwd = await tempDir(t)
  const result = await runCli(
    ['create-app', '--name', 'My app', '--redirect-uri', REDIRECT, '--base-url', opts.baseUrl],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: opts.token }, cwd }
  )
  t.equal(result.code, 1, 'exit status 1')
  t.equal(result.stdout, '', 'nothing on stdout')
  t.equal(lines(result.stderr).length, 1, 'one line on stderr')
  t.match(result.stderr, /^error: /)
  t.match(result.stderr, opts.message)
  await t.rejects(stat(join(cwd, '.env')), { code: 'ENOENT' }, 'no env file written')
  t.notOk(result.all.includes(opts.token), 'the developer token is not printed')
  for (const secret of opts.secrets()) t.notOk(result.all.includes(secret), 'no client secret is printed')
}

t.test('a wrong developer token: the provider answers 401, one line names the variable', async (t) => {
  const mock = await startMock(t)
  await expectFailure(t, {
    baseUrl: mock.url,
    token: 'dev_wrong_token_value',
    secrets: () => mock.issued().clientSecrets,
    message: /^error: the provider refused the developer token \(HTTP 401\): check AIHUBMIX_DEVELOPER_TOKEN\n$/
  })
  t.equal(mock.counts().oauth_apps, 1, 'the request was made')
  t.same(mock.apps, [], 'nothing registered')
})

const faults: Array<[MockFault, RegExp]> = [
  ['http500', /the provider failed \(HTTP 500\): nothing was written; try again later/],
  ['http503', /the provider failed \(HTTP 503\)/],
  ['http429', /the provider failed \(HTTP 429\)/],
  ['non_json', /the provider's answer was not understood: it is not JSON/],
  ['truncated', /the provider's answer was not understood: it is not JSON/],
  ['wrong_types', /the provider's answer was not understood: success: expected true/],
  ['null_body', /the provider's answer was not understood: expected a JSON object, got null/],
  ['error_in_200', /the provider refused the request \(HTTP 200\): mock fault: an error in a 200 answer/],
  ['oversize', /the provider's answer was not understood: the answer is larger than 1048576 bytes/],
  ['redirect', /the provider answered a redirect \(HTTP 302 to http:\/\/redirect-target\.invalid\), which is not followed: check --base-url/]
]

for (const [fault, message] of faults) {
  t.test(`provider fault ${fault}: one clear line, exit 1, nothing written`, async (t) => {
    const mock = await startMock(t)
    mock.setFault('oauth_apps', fault)
    await expectFailure(t, { baseUrl: mock.url, token: mock.developerToken, secrets: () => mock.issued().clientSecrets, message })
    t.equal(mock.counts().oauth_apps, 1, 'one request, no retry')
  })
}

t.test('the provider cannot be reached: connection refused', async (t) => {
  const port = await closedPort()
  await expectFailure(t, {
    baseUrl: `http://127.0.0.1:${port}`,
    token: 'dev_token_for_a_closed_port',
    secrets: () => [],
    message: new RegExp(`^error: cannot reach the provider at http://127\\.0\\.0\\.1:${port}: connection refused\\n$`)
  })
})

t.test('a 4xx with a reason: the reason is shown on one line, control characters and the token removed', async (t) => {
  const token = 'dev_token_echoed_by_a_bad_provider'
  const server = await startHttpServer(t, (_req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ success: false, message: `redirect_uri already registered\n\u001b[31mfor ${token}` }))
  })
  await expectFailure(t, {
    baseUrl: server.url,
    token,
    secrets: () => [],
    message: /^error: the provider refused the request \(HTTP 400\): redirect_uri already registered for \[redacted\]\n$/
  })
  // What was sent: the guide's request.
  const [request] = server.requests
  t.equal(request?.method, 'POST')
  t.equal(request?.url, '/api/oauth_apps')
  t.equal(request?.headers.authorization, `Bearer ${token}`)
  t.match(request?.headers['content-type'], /^application\/json/)
  t.same(JSON.parse(request?.body ?? ''), { name: 'My app', description: '', redirect_uri: REDIRECT })
})

t.test('an RFC 6749 error body and a 4xx without a body are mapped too', async (t) => {
  const rfc = await startHttpServer(t, (_req, res) => {
    res.writeHead(422, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'invalid_request', error_description: 'name too long' }))
  })
  await expectFailure(t, { baseUrl: rfc.url, token: 'dev_x', secrets: () => [], message: /\(HTTP 422\): invalid_request: name too long\n$/ })
  const bare = await startHttpServer(t, (_req, res) => {
    res.writeHead(404)
    res.end('<html>not found</html>')
  })
  await expectFailure(t, { baseUrl: bare.url, token: 'dev_x', secrets: () => [], message: /\(HTTP 404\): no reason given\n$/ })
  const forbidden = await startHttpServer(t, (_req, res) => {
    res.writeHead(403)
    res.end()
  })
  await expectFailure(t, { baseUrl: forbidden.url, token: 'dev_x', secrets: () => [], message: /refused the developer token \(HTTP 403\)/ })
})

t.test('a bare (unwrapped) answer is accepted like the envelope', async (t) => {
  const secret = 'secret_bare_answer_0123456789'
  const server = await startHttpServer(t, (_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id: 'app-7', name: 'My app', client_id: 'client_bare', client_secret: secret, redirect_uri: REDIRECT, created_time: 1700000000, extra: true }))
  })
  const cwd = await tempDir(t)
  const result = await runCli(
    ['create-app', '--name', 'My app', '--redirect-uri', REDIRECT, '--base-url', server.url],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: 'dev_x' }, cwd }
  )
  t.equal(result.code, 0, 'exit 0', { stderr: result.stderr })
  t.match(result.stdout, 'created OAuth app "My app" (id app-7)')
  t.match(result.stdout, 'client id: client_bare')
  t.notOk(result.all.includes(secret))
})

t.test('the building block: timeouts, refused connections and bad answers are typed errors', async (t) => {
  const mock = await startMock(t)
  mock.setFault('oauth_apps', 'hang')
  const hang = createApp({ developerToken: mock.developerToken, name: 'x', redirectUri: REDIRECT, baseUrl: mock.url, timeoutMs: 200 })
  await t.rejects(hang, ProviderTimeoutError)
  await t.rejects(createApp({ developerToken: mock.developerToken, name: 'x', redirectUri: REDIRECT, baseUrl: mock.url, timeoutMs: 200 }), {
    code: 'FST_AIHUBMIX_CLI_PROVIDER_TIMEOUT',
    message: `the provider at ${mock.url} did not answer within 200 ms`
  })

  const port = await closedPort()
  const refused = createApp({ developerToken: 'dev_x', name: 'x', redirectUri: REDIRECT, baseUrl: `http://127.0.0.1:${port}` })
  await t.rejects(refused, ProviderUnreachableError)
  await t.rejects(createApp({ developerToken: 'dev_x', name: 'x', redirectUri: REDIRECT, baseUrl: `http://127.0.0.1:${port}` }), ProviderError, 'a ProviderError')

  mock.setFault('oauth_apps', 'wrong_types')
  const err = await createApp({ developerToken: mock.developerToken, name: 'x', redirectUri: REDIRECT, baseUrl: mock.url }).catch((e: unknown) => e)
  t.ok(err instanceof ProviderBadAnswerError)
  t.equal((err as Error & { cause?: unknown }).cause, undefined, 'a bad answer keeps no cause (it may hold a secret)')
})

t.test('a successful answer whose secret would break the env file is refused', async (t) => {
  const server = await startHttpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ success: true, message: '', data: { id: 1, name: 'x', client_id: 'client_x', client_secret: 'secret_x\nPUBLIC_URL=https://evil.example', redirect_uri: REDIRECT, created_time: 1 } }))
  })
  await expectFailure(t, {
    baseUrl: server.url,
    token: 'dev_x',
    secrets: () => ['secret_x'],
    message: /^error: the provider's answer was not understood: data\.client_secret: /
  })
})
