import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { Agent } from 'undici'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { lines, runCli, startHttpServer, tempDir, type Recorded } from './capture.js'

// doctor asks the provider about the app itself: the client id with the redirect URI (an authorization request
// nobody answers) and the client id with the secret (a token request with a made-up code). Spawned as a user runs
// it: the command npm installed in node_modules/.bin, against the real mock provider on port 0.

const installed = fileURLToPath(new URL('../../node_modules/.bin/aihubmix-oauth', import.meta.url))
const SESSION_SECRET = 'session-secret-of-forty-characters-xxxxx'
const REGISTERED = 'http://localhost:3000/auth/callback'

interface Exit { code: number, stdout: string, stderr: string }

function spawnInstalled (args: string[], env: Record<string, string>, cwd: string): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(installed, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
    })
  })
}

async function startMock (t: Test): Promise<MockProvider> {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  return mock
}

/** `name` → the check's line. */
function byName (stdout: string): Map<string, string> {
  return new Map(lines(stdout).map((l) => [l.slice(5, l.indexOf(':')), l]))
}

/** The app as a newcomer configures it: PUBLIC_URL, the redirect URI derived from it. */
function appEnv (mock: MockProvider): Record<string, string> {
  const app = mock.createApp({ name: 'doctor', redirectUri: REGISTERED })
  return {
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: app.clientId,
    AIHUBMIX_CLIENT_SECRET: app.clientSecret,
    PUBLIC_URL: 'http://localhost:3000',
    SESSION_SECRET
  }
}

/** Nothing was issued: doctor neither authorized anything nor obtained a token. */
function nothingIssued (t: Test, mock: MockProvider): void {
  const issued = mock.issued()
  t.same(issued.codes, [], 'no authorization code issued')
  t.same(issued.accessTokens, [], 'no access token granted')
  t.same(issued.refreshTokens, [], 'no refresh token granted')
}

t.test('the right client id, secret and redirect URI: ok, exit 0, nothing issued', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = appEnv(mock)
  const result = await spawnInstalled(['doctor'], env, cwd)
  t.equal(result.code, 0, 'exit 0', { output: result.stdout + result.stderr })
  const checks = byName(result.stdout)
  t.equal(checks.get('app registration'), `ok   app registration: the provider accepts AIHUBMIX_CLIENT_ID with redirect URI ${REGISTERED} (HTTP 200: its consent page; nothing was authorized)`)
  t.equal(checks.get('client credentials'), 'ok   client credentials: the provider accepts AIHUBMIX_CLIENT_ID with AIHUBMIX_CLIENT_SECRET (a made-up code was refused with invalid_grant, HTTP 400, as it must be; nothing was granted)')
  t.equal(lines(result.stdout).filter((l) => !l.startsWith('ok   ')).length, 0, 'every line ok')
  t.notOk((result.stdout + result.stderr).includes(env.AIHUBMIX_CLIENT_SECRET as string), 'the secret is not printed')
  const counts = mock.counts()
  t.equal(counts.authorize, 1, 'one authorization request')
  t.equal(counts.token, 1, 'one token request')
  t.same(counts.grants, { authorization_code: 1, refresh_token: 0 }, 'the one token request was the made-up code, refused')
  nothingIssued(t, mock)
})

t.test('a wrong client id: FAIL naming AIHUBMIX_CLIENT_ID, exit 1', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env: Record<string, string> = { ...appEnv(mock), AIHUBMIX_CLIENT_ID: 'client_nope' }
  const result = await spawnInstalled(['doctor'], env, cwd)
  t.equal(result.code, 1, 'exit 1', { output: result.stdout + result.stderr })
  const checks = byName(result.stdout)
  t.equal(checks.get('app registration'), 'FAIL app registration: the provider does not know AIHUBMIX_CLIENT_ID client_nope (HTTP 400: "invalid_client: This client_id is not registered."): copy the client id from the developer console, or register the app with aihubmix-oauth create-app')
  t.match(checks.get('client credentials'), /^FAIL client credentials: the provider refused AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET \(invalid_client, HTTP 401\): it does not know the client id/)
  t.notOk((result.stdout + result.stderr).includes(env.AIHUBMIX_CLIENT_SECRET as string), 'the secret is not printed')
  nothingIssued(t, mock)
})

t.test('a wrong client secret: FAIL naming AIHUBMIX_CLIENT_SECRET, exit 1', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const good = appEnv(mock)
  const wrong = 'secret_mock_not_the_one_registered_0123456789'
  const result = await spawnInstalled(['doctor'], { ...good, AIHUBMIX_CLIENT_SECRET: wrong }, cwd)
  t.equal(result.code, 1, 'exit 1', { output: result.stdout + result.stderr })
  const checks = byName(result.stdout)
  t.match(checks.get('app registration'), /^ok {3}app registration: /, 'the client id and redirect URI are fine')
  t.equal(checks.get('client credentials'), `FAIL client credentials: the provider refused AIHUBMIX_CLIENT_SECRET for AIHUBMIX_CLIENT_ID ${good.AIHUBMIX_CLIENT_ID as string} (invalid_client, HTTP 401): copy the secret of this app again, or register a new app with aihubmix-oauth create-app`)
  t.equal(checks.get('AIHUBMIX_CLIENT_SECRET'), `ok   AIHUBMIX_CLIENT_SECRET: set (${wrong.length} characters)`, 'only its length')
  const all = result.stdout + result.stderr
  t.notOk(all.includes(wrong), 'the wrong secret is not printed')
  t.notOk(all.includes(good.AIHUBMIX_CLIENT_SECRET as string), 'nor the right one')
  nothingIssued(t, mock)
})

t.test('a redirect URI the app did not register: FAIL naming PUBLIC_URL or AIHUBMIX_REDIRECT_URI, exit 1', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env: Record<string, string> = { ...appEnv(mock), PUBLIC_URL: 'http://localhost:3001' }
  const derived = await spawnInstalled(['doctor'], env, cwd)
  t.equal(derived.code, 1, 'exit 1', { output: derived.stdout + derived.stderr })
  t.equal(byName(derived.stdout).get('app registration'), `FAIL app registration: the provider refused the redirect URI http://localhost:3001/auth/callback (PUBLIC_URL + /auth/callback: AIHUBMIX_REDIRECT_URI is not set) for AIHUBMIX_CLIENT_ID ${env.AIHUBMIX_CLIENT_ID as string} (HTTP 400: "invalid_request: redirect_uri is not the one registered for this client."): it must equal the app's registered redirect URI exactly; fix PUBLIC_URL, or set AIHUBMIX_REDIRECT_URI to the registered one`)
  t.match(byName(derived.stdout).get('client credentials'), /^ok {3}client credentials: /, 'the secret is right')

  const explicit = await spawnInstalled(['doctor'], { ...env, AIHUBMIX_REDIRECT_URI: 'http://localhost:3001/auth/callback' }, cwd)
  t.equal(explicit.code, 1)
  t.match(byName(explicit.stdout).get('app registration'), /^FAIL app registration: the provider refused AIHUBMIX_REDIRECT_URI http:\/\/localhost:3001\/auth\/callback for AIHUBMIX_CLIENT_ID .*; set AIHUBMIX_REDIRECT_URI to the registered one$/)
  t.notOk((derived.stdout + derived.stderr + explicit.stdout + explicit.stderr).includes(env.AIHUBMIX_CLIENT_SECRET as string))
  nothingIssued(t, mock)
})

/** A provider that answers `authorize` and `token` as the test says, recording what doctor sent. */
async function fakeProvider (t: Test, answers: {
  authorize: (req: Recorded) => { status: number, headers?: Record<string, string>, body?: string }
  token?: (req: Recorded) => { status: number, body: string }
}): Promise<{ url: string, requests: Recorded[] }> {
  return await startHttpServer(t, (req, res) => {
    const path = req.url.split('?')[0]
    const answer = path === '/api/oauth2/authorize'
      ? answers.authorize(req)
      : path === '/api/oauth2/token' && answers.token !== undefined
        ? { ...answers.token(req), headers: { 'content-type': 'application/json' } }
        : { status: 404, body: '' }
    res.writeHead(answer.status, answer.headers ?? {})
    res.end(answer.body ?? '')
  })
}

function fakeEnv (url: string): Record<string, string> {
  return {
    AIHUBMIX_BASE_URL: url,
    AIHUBMIX_CLIENT_ID: 'client_fake',
    AIHUBMIX_CLIENT_SECRET: 'secret_fake_0123456789abcdef',
    PUBLIC_URL: 'http://localhost:3000',
    SESSION_SECRET
  }
}

t.test('what doctor sends: no auto_authorize, an S256 challenge, the secret in the form body only', async (t) => {
  const cwd = await tempDir(t)
  const server = await fakeProvider(t, {
    authorize: () => ({ status: 302, headers: { location: '/login?next=%2Fapi%2Foauth2%2Fauthorize' } }),
    token: () => ({ status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: 'unknown code' }) })
  })
  const env = fakeEnv(server.url)
  const result = await runCli(['doctor'], { env, cwd })
  t.equal(result.code, 0, 'exit 0', { output: result.all })
  t.equal(byName(result.stdout).get('app registration'), `ok   app registration: the provider accepts AIHUBMIX_CLIENT_ID with redirect URI ${REGISTERED} (HTTP 302 to its sign-in or consent page ${server.url}/login; nothing was authorized)`)
  t.equal(server.requests.length, 2, 'one authorization request, one token request: no redirect followed')
  const [authorize, token] = server.requests as [Recorded, Recorded]
  const query = new URL(authorize.url, server.url).searchParams
  t.equal(authorize.method, 'GET')
  t.same([...query.keys()].sort(), ['client_id', 'code_challenge', 'code_challenge_method', 'redirect_uri', 'response_type', 'scope', 'state'])
  t.equal(query.get('client_id'), 'client_fake')
  t.equal(query.get('redirect_uri'), REGISTERED)
  t.equal(query.get('response_type'), 'code')
  t.equal(query.get('scope'), 'profile balance')
  t.equal(query.get('code_challenge_method'), 'S256')
  t.match(query.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
  t.notOk(authorize.url.includes(env.AIHUBMIX_CLIENT_SECRET as string), 'no secret in the authorization request')
  t.equal(token.method, 'POST')
  t.equal(token.headers.authorization, undefined, 'no HTTP Basic')
  const form = new URLSearchParams(token.body)
  t.equal(form.get('grant_type'), 'authorization_code')
  t.equal(form.get('client_id'), 'client_fake')
  t.equal(form.get('client_secret'), env.AIHUBMIX_CLIENT_SECRET)
  t.equal(form.get('redirect_uri'), REGISTERED)
  t.match(form.get('code'), /^doctor_/)
  t.match(form.get('code_verifier'), /^[A-Za-z0-9_-]{43}$/)
  t.notOk(result.all.includes(env.AIHUBMIX_CLIENT_SECRET as string))
})

t.test('the provider\'s answers read honestly', async (t) => {
  const cwd = await tempDir(t)
  const secret = 'secret_fake_0123456789abcdef'
  const cases: Array<{
    label: string
    authorize: { status: number, headers?: Record<string, string>, body?: string }
    token: { status: number, body: string }
    registration: string | RegExp
    credentials: string | RegExp
    code: number
  }> = [
    {
      label: 'an error page that echoes the secret is not quoted; a 4xx without a hint names both',
      authorize: { status: 400, headers: { 'content-type': 'text/html' }, body: `<html><body><p>Bad request ${secret}</p></body></html>` },
      token: { status: 400, body: JSON.stringify({ error: 'invalid_grant' }) },
      registration: `FAIL app registration: the provider refused the authorization request (HTTP 400): most likely AIHUBMIX_CLIENT_ID client_fake is not registered, or the redirect URI ${REGISTERED} (PUBLIC_URL + /auth/callback: AIHUBMIX_REDIRECT_URI is not set) is not the app's registered redirect URI`,
      credentials: /^ok {3}client credentials: /,
      code: 1
    },
    {
      label: 'a redirect to the provider\'s own error page; the envelope\'s invalid_client',
      authorize: { status: 302, headers: { location: '/oauth/error?error=invalid_client&error_description=unknown%20client' } },
      token: { status: 200, body: JSON.stringify({ success: false, message: 'client authentication failed', error: 'invalid_client' }) },
      registration: 'FAIL app registration: the provider does not know AIHUBMIX_CLIENT_ID client_fake (HTTP 302 to its error page: "invalid_client: unknown client"): copy the client id from the developer console, or register the app with aihubmix-oauth create-app',
      credentials: 'FAIL client credentials: the provider refused AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET (invalid_client, HTTP 200): it does not know the client id (above), so the secret could not be checked on its own',
      code: 1
    },
    {
      label: 'back at the redirect URI with invalid_scope; a 401 without a body',
      authorize: { status: 302, headers: { location: `${REGISTERED}?error=invalid_scope&state=x` } },
      token: { status: 401, body: '' },
      registration: `warn app registration: the provider accepts AIHUBMIX_CLIENT_ID with redirect URI ${REGISTERED}, but refused the request (HTTP 302: "invalid_scope" at the redirect URI): check AIHUBMIX_SCOPE`,
      credentials: 'FAIL client credentials: the provider refused AIHUBMIX_CLIENT_ID / AIHUBMIX_CLIENT_SECRET (HTTP 401): check both against the app in the developer console',
      code: 1
    },
    {
      label: 'a 5xx: neither can be checked, warnings only',
      authorize: { status: 503, body: 'busy' },
      token: { status: 500, body: JSON.stringify({ error: 'server_error' }) },
      registration: 'warn app registration: not checked: the provider answered HTTP 503',
      credentials: 'warn client credentials: AIHUBMIX_CLIENT_SECRET could not be checked: a token request with a made-up code answered server_error, HTTP 500, neither invalid_client nor invalid_grant',
      code: 0
    }
  ]
  for (const c of cases) {
    const server = await fakeProvider(t, { authorize: () => c.authorize, token: () => c.token })
    const result = await runCli(['doctor'], { env: fakeEnv(server.url), cwd })
    const checks = byName(result.stdout)
    t.match(checks.get('app registration'), c.registration, `${c.label}: app registration`)
    t.match(checks.get('client credentials'), c.credentials, `${c.label}: client credentials`)
    t.equal(result.code, c.code, `${c.label}: exit ${c.code}`, { output: result.all })
    t.notOk(result.all.includes(secret), `${c.label}: the secret is not printed`)
  }
})

t.test('no provider reached, no provider check: skipped like the others', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = appEnv(mock)
  await mock.close()
  const result = await runCli(['doctor'], { env, cwd })
  t.equal(result.code, 1)
  t.match(byName(result.stdout).get('provider'), /^FAIL provider: cannot reach the provider/)
  t.notOk(byName(result.stdout).has('app registration'))
  t.notOk(byName(result.stdout).has('client credentials'))

  const noId = await runCli(['doctor'], { env: { ...env, AIHUBMIX_CLIENT_ID: 'client with spaces' }, cwd })
  t.notOk(byName(noId.stdout).has('app registration'), 'a client id that fails its own check is not sent')
})

t.test('run()\'s dispatcher carries doctor\'s requests too: the production origin checked through it', async (t) => {
  // https://api.aihubmix.com cannot be reached from here; CliIo.dispatcher (what a ProxyAgent would be) sends each
  // request for it to the mock provider, and records what was asked.
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const asked: string[] = []
  const agent = new Agent()
  t.teardown(() => agent.close())
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    asked.push(`${String(opts.origin)} ${opts.method} ${opts.path.split('?')[0] ?? ''}`)
    return dispatch({ ...opts, origin: mock.url }, handler)
  })
  const env = { ...appEnv(mock), AIHUBMIX_BASE_URL: 'https://api.aihubmix.com' }
  const result = await runCli(['doctor'], { env, cwd, dispatcher })
  const checks = byName(result.stdout)
  t.match(checks.get('app registration'), /^ok {3}app registration: the provider accepts AIHUBMIX_CLIENT_ID/, { output: result.all })
  t.match(checks.get('client credentials'), /^ok {3}client credentials:/)
  t.ok(asked.length >= 2, 'the requests went through it')
  t.ok(asked.every((a) => a.startsWith('https://api.aihubmix.com ')), `each for the configured origin: ${asked.join(', ')}`)
  t.ok(asked.includes('https://api.aihubmix.com POST /api/oauth2/token'), 'the token endpoint among them')
  nothingIssued(t, mock)
})
