import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { doctor, formatCheck } from 'aihubmix-oauth'
import { closedPort, lines, runCli, tempDir } from './capture.js'

const SESSION_SECRET = 'session-secret-of-forty-characters-xxxxx'

async function startMock (t: Test): Promise<MockProvider> {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  return mock
}

/**
 * A real-provider configuration pointing at the mock, with a registered app (doctor asks the provider whether it
 * knows the redirect URI: a test of another one registers an app for it).
 */
function goodEnv (mock: MockProvider, redirectUri = 'http://127.0.0.1:3000/auth/callback'): Record<string, string> {
  const app = mock.createApp({ name: 'doctor', redirectUri })
  return {
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: app.clientId,
    AIHUBMIX_CLIENT_SECRET: app.clientSecret,
    AIHUBMIX_REDIRECT_URI: app.redirectUri,
    PUBLIC_URL: 'http://127.0.0.1:3000',
    SESSION_SECRET
  }
}

/** `name` → the check's line. */
function byName (stdout: string): Map<string, string> {
  return new Map(lines(stdout).map((l) => [l.slice(5, l.indexOf(':')), l]))
}

t.test('a good configuration against the provider: every line ok, exit 0, no secret printed', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = goodEnv(mock)
  const result = await runCli(['doctor'], { env, cwd })
  t.equal(result.code, 0, 'exit 0', { output: result.all })
  t.equal(result.stderr, '')
  t.same(lines(result.stdout), [
    `ok   env file: none at ${join(cwd, '.env')}: using the environment only`,
    'ok   configuration: accepted by the example server (development: NODE_ENV is not production)',
    `ok   AIHUBMIX_CLIENT_ID: ${env.AIHUBMIX_CLIENT_ID}`,
    `ok   AIHUBMIX_CLIENT_SECRET: set (${env.AIHUBMIX_CLIENT_SECRET?.length} characters)`,
    `ok   SESSION_SECRET: set (${SESSION_SECRET.length} characters)`,
    'ok   TOKEN_ENCRYPTION_KEY: not set: the example server derives it from SESSION_SECRET (fine in development; set it in production); an app built from the README snippet does not start without it',
    `ok   provider: ${mock.url} reachable (GET /api/oauth2/authorize for this app answered HTTP 200)`,
    'ok   redirect URI: http://127.0.0.1:3000/auth/callback (matches PUBLIC_URL; it must equal the app\'s registered redirect URI exactly)',
    'ok   app registration: the provider accepts AIHUBMIX_CLIENT_ID with redirect URI http://127.0.0.1:3000/auth/callback (HTTP 200: its consent page; nothing was authorized)',
    'ok   client credentials: the provider accepts AIHUBMIX_CLIENT_ID with AIHUBMIX_CLIENT_SECRET (a made-up code was refused with invalid_grant, HTTP 400, as it must be; nothing was granted)',
    'ok   HTTPS: plain http on loopback only (PUBLIC_URL, AIHUBMIX_REDIRECT_URI, AIHUBMIX_BASE_URL): nothing leaves this machine in the clear; any other host needs https',
    'ok   Redis: not configured: in-memory stores (sessions end at restart; one instance only)'
  ])
  t.equal(mock.counts().authorize, 1, 'one authorization request: the reachability probe is the app\'s own')
  t.equal(mock.counts().token, 1, 'one token request, with a made-up code')
  t.same(mock.issued().codes, [], 'no code issued')
  t.same(mock.issued().accessTokens, [], 'no token granted')
  t.notOk(result.all.includes(env.AIHUBMIX_CLIENT_SECRET as string))
  t.notOk(result.all.includes(SESSION_SECRET))
})

t.test('any HTTP status means reachable; a closed port or a silent provider fails, exit 1', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = goodEnv(mock)
  mock.setFault('authorize', 'http500')
  const five = await runCli(['doctor'], { env, cwd })
  t.equal(five.code, 0)
  t.equal(byName(five.stdout).get('provider'), `ok   provider: ${mock.url} reachable (GET /api/oauth2/authorize for this app answered HTTP 500)`)
  t.equal(byName(five.stdout).get('app registration'), 'warn app registration: not checked: the provider answered HTTP 500')

  const port = await closedPort()
  const closed = await runCli(['doctor'], { env: { ...env, AIHUBMIX_BASE_URL: `http://127.0.0.1:${port}` }, cwd })
  t.equal(closed.code, 1)
  t.equal(byName(closed.stdout).get('provider'), `FAIL provider: cannot reach the provider at http://127.0.0.1:${port}: connection refused`)
  t.equal(lines(closed.stdout).filter((l) => l.startsWith('FAIL')).length, 1, 'only that check fails')

  mock.setFault('authorize', 'hang')
  const report = await doctor({ env, cwd, timeoutMs: 200 })
  t.equal(report.ok, false)
  t.same(report.checks.find((c) => c.name === 'provider'), {
    status: 'fail',
    name: 'provider',
    detail: `the provider at ${mock.url} did not answer within 200 ms`
  })
})

t.test('without AIHUBMIX_BASE_URL: the embedded mock provider, development only', async (t) => {
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: {}, cwd })
  t.equal(result.code, 0)
  const checks = byName(result.stdout)
  t.equal(checks.get('provider'), 'ok   provider: the example server\'s embedded mock provider (development only); an app built from the README snippet uses https://api.aihubmix.com when AIHUBMIX_BASE_URL is unset')
  t.equal(checks.get('SESSION_SECRET'), 'warn SESSION_SECRET: not set: the example server makes a random one per process (sessions end when it restarts); an app built from the README snippet does not start without it')
  t.notOk(checks.has('AIHUBMIX_CLIENT_ID'))

  // create-app's output without a base URL: the credentials would be ignored.
  const ignored = await runCli(['doctor'], { env: { AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_ignored_value' }, cwd })
  t.equal(ignored.code, 0)
  t.equal(byName(ignored.stdout).get('provider'), 'warn provider: the example server\'s embedded mock provider (development only): AIHUBMIX_BASE_URL is not set, so AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET are ignored; an app built from the README snippet uses https://api.aihubmix.com')
  t.notOk(ignored.all.includes('secret_ignored_value'))
})

t.test('variables missing or malformed: FAIL lines naming them, the secret only by its length', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = goodEnv(mock)

  const { AIHUBMIX_CLIENT_SECRET: secret, ...noSecret } = env
  const missing = await runCli(['doctor'], { env: noSecret, cwd })
  t.equal(missing.code, 1)
  const m = byName(missing.stdout)
  t.equal(m.get('configuration'), undefined, 'the variable readConfig refused is said once, by its own check below')
  t.match(m.get('AIHUBMIX_CLIENT_SECRET'), /^FAIL AIHUBMIX_CLIENT_SECRET: not set \(required with AIHUBMIX_BASE_URL/)

  const pasted = `${secret as string} `
  const spaced = await runCli(['doctor'], { env: { ...env, AIHUBMIX_CLIENT_SECRET: pasted, AIHUBMIX_CLIENT_ID: 'app-1' }, cwd })
  t.equal(spaced.code, 1)
  const s = byName(spaced.stdout)
  t.equal(s.get('AIHUBMIX_CLIENT_SECRET'), `FAIL AIHUBMIX_CLIENT_SECRET: set (${pasted.length} characters) but contains spaces, quotes or control characters (a copy-paste error?)`)
  t.equal(s.get('AIHUBMIX_CLIENT_ID'), 'warn AIHUBMIX_CLIENT_ID: set (5 characters), but it does not look like an AIHubMix client id (client_...)')
  t.notOk(spaced.all.includes(secret as string))

  // Swapped: the secret would be the client_id of every sign-in URL. FAIL, the value by its length only, and no
  // request to the provider carries it (its logs would keep it).
  const swapped = await runCli(['doctor'], { env: { ...env, AIHUBMIX_CLIENT_ID: secret as string, AIHUBMIX_CLIENT_SECRET: env.AIHUBMIX_CLIENT_ID as string }, cwd })
  t.equal(swapped.code, 1)
  t.equal(byName(swapped.stdout).get('AIHUBMIX_CLIENT_ID'), `FAIL AIHUBMIX_CLIENT_ID: set (${(secret as string).length} characters), but it looks like the client secret ` +
    '(secret_..., or the same as AIHUBMIX_CLIENT_SECRET): are AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET swapped? The client id goes to the browser in the sign-in URL')
  t.notOk(swapped.all.includes(secret as string), 'the secret is not printed')
  // What reaches a provider: every request line and body, recorded.
  const seen: string[] = []
  const recorder = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => { seen.push(`${req.method ?? ''} ${req.url ?? ''} ${body}`); res.writeHead(400).end() })
  })
  recorder.listen(0, '127.0.0.1')
  await once(recorder, 'listening')
  t.teardown(() => { recorder.close() })
  const recorded = await runCli(['doctor'], {
    env: { ...env, AIHUBMIX_BASE_URL: `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`, AIHUBMIX_CLIENT_ID: secret as string, AIHUBMIX_CLIENT_SECRET: env.AIHUBMIX_CLIENT_ID as string },
    cwd
  })
  t.equal(recorded.code, 1)
  t.ok(seen.length > 0, 'the provider was asked (reachability)')
  t.notOk(seen.some((line) => line.includes(secret as string)), 'but the secret was not sent to it')

  const short = await runCli(['doctor'], { env: { ...env, SESSION_SECRET: 'short' }, cwd })
  t.equal(short.code, 1)
  t.equal(byName(short.stdout).get('SESSION_SECRET'), 'FAIL SESSION_SECRET: 5 characters; at least 32 are needed')
  t.equal(byName(short.stdout).get('configuration'), undefined, 'said once, not also as a configuration line')
  const badUrl = await runCli(['doctor'], { env: { ...env, PUBLIC_URL: 'notaurl' }, cwd })
  t.equal(byName(badUrl.stdout).get('configuration'), 'FAIL configuration: PUBLIC_URL: is not an absolute URL', 'a variable with no check of its own: said by the configuration line')
})

t.test('a variable set but not read that looks meant for one (REDIS_URI): a warning naming both, exit 0', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = { ...goodEnv(mock), REDIS_URI: 'redis://127.0.0.1:6379', TOKEN_ENCRYPTION_KEYS: 'base64:not-printed' }
  const result = await runCli(['doctor'], { env, cwd })
  t.equal(result.code, 0, 'warnings only', { output: result.all })
  const said = byName(result.stdout)
  t.equal(said.get('REDIS_URI'), 'warn REDIS_URI: set but not read (did you mean REDIS_URL?)')
  t.equal(said.get('TOKEN_ENCRYPTION_KEYS'), 'warn TOKEN_ENCRYPTION_KEYS: set but not read (did you mean TOKEN_ENCRYPTION_KEY?)')
  t.match(said.get('Redis'), /not configured/, 'and Redis is not configured, as the example server would run')
  t.notOk(result.all.includes('not-printed'), 'no value printed')
})

t.test('the redirect URI against PUBLIC_URL: another origin or path fails, as the example server would refuse to start', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = goodEnv(mock)
  const origin = await runCli(['doctor'], { env: goodEnv(mock, 'http://localhost:3000/auth/callback'), cwd })
  t.equal(origin.code, 1)
  t.equal(byName(origin.stdout).get('redirect URI'), 'FAIL redirect URI: AIHUBMIX_REDIRECT_URI http://localhost:3000/auth/callback is not on PUBLIC_URL\'s origin http://127.0.0.1:3000: ' +
    'the example server refuses to start with it (its callback is http://127.0.0.1:3000/auth/callback). Fix: set PUBLIC_URL to the origin browsers use for the app, ' +
    'or unset AIHUBMIX_REDIRECT_URI and register http://127.0.0.1:3000/auth/callback as the app\'s redirect URI')

  const path = await runCli(['doctor'], { env: goodEnv(mock, 'http://127.0.0.1:3000/oauth/done'), cwd })
  t.equal(path.code, 1)
  t.match(byName(path.stdout).get('redirect URI'), /^FAIL redirect URI: AIHUBMIX_REDIRECT_URI http:\/\/127\.0\.0\.1:3000\/oauth\/done is not the callback route \/auth\/callback: the example server refuses to start with it/)

  const { AIHUBMIX_REDIRECT_URI: _unused, ...derived } = env
  const fromPublic = await runCli(['doctor'], { env: derived, cwd })
  t.equal(byName(fromPublic.stdout).get('redirect URI'), 'ok   redirect URI: http://127.0.0.1:3000/auth/callback (derived from PUBLIC_URL; it must equal the app\'s registered redirect URI exactly)')
})

t.test('HTTPS where required: production refuses http outside loopback, development warns', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = { ...goodEnv(mock, 'http://app.example.com/auth/callback'), PUBLIC_URL: 'http://app.example.com' }

  const dev = await runCli(['doctor'], { env, cwd })
  t.equal(dev.code, 0)
  t.equal(byName(dev.stdout).get('HTTPS'), 'warn HTTPS: PUBLIC_URL, AIHUBMIX_REDIRECT_URI use plain http outside loopback: fine for a test of the example server, refused in production (cookies are not Secure, OAuth traffic is readable); an app built from the README snippet refuses it (aihubmix-proxy\'s allowInsecureHttp)')

  const prod = await runCli(['doctor'], { env: { ...env, NODE_ENV: 'production' }, cwd })
  t.equal(prod.code, 1)
  t.equal(byName(prod.stdout).get('HTTPS'), 'FAIL HTTPS: PUBLIC_URL, AIHUBMIX_REDIRECT_URI use plain http outside loopback: production requires https: ' +
    'use https://, or http://localhost or http://127.0.0.1 for what runs on this machine')
  t.equal(byName(prod.stdout).get('configuration'), undefined, 'one mistake, one FAIL line: the HTTPS line says it')

  const https = { ...goodEnv(mock, 'https://app.example.com/auth/callback'), PUBLIC_URL: 'https://app.example.com', NODE_ENV: 'production' }
  const good = await runCli(['doctor'], { env: https, cwd })
  t.equal(byName(good.stdout).get('HTTPS'), 'ok   HTTPS: plain http on loopback only (AIHUBMIX_BASE_URL): nothing leaves this machine in the clear; any other host needs https')
  t.equal(byName(good.stdout).get('configuration'), 'ok   configuration: accepted by the example server (production)')
  t.equal(good.code, 0, 'exit 0', { output: good.all })

  const noTrust = await runCli(['doctor'], { env: { ...https, TRUST_PROXY: 'false' }, cwd })
  t.match(byName(noTrust.stdout).get('HTTPS'), /^warn HTTPS: PUBLIC_URL is https but TRUST_PROXY is off/)
})

t.test('the env file: read like the example does (the environment wins), its mode checked', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const { PUBLIC_URL: _p, ...env } = goodEnv(mock)
  const secret = env.AIHUBMIX_CLIENT_SECRET as string
  await writeFile(join(cwd, '.env'), [
    '# written by create-app',
    `export AIHUBMIX_CLIENT_SECRET='${secret}'`,
    'PUBLIC_URL=http://127.0.0.1:3000',
    'SESSION_SECRET=too-short-but-overridden'
  ].join('\n'), { mode: 0o600 })
  const { AIHUBMIX_CLIENT_SECRET: _s, ...rest } = env
  const result = await runCli(['doctor'], { env: rest, cwd })
  t.equal(result.code, 0, 'exit 0', { output: result.all })
  const checks = byName(result.stdout)
  t.equal(checks.get('env file'), `ok   env file: ${join(cwd, '.env')} (3 variables, mode 0600); the environment overrides SESSION_SECRET`)
  t.equal(checks.get('AIHUBMIX_CLIENT_SECRET'), `ok   AIHUBMIX_CLIENT_SECRET: set (${secret.length} characters)`)
  t.notOk(result.all.includes(secret))

  await writeFile(join(cwd, 'other.env'), 'PUBLIC_URL=http://127.0.0.1:3000\n', { mode: 0o644 })
  const viaVar = await runCli(['doctor'], { env: { ...env, ENV_FILE: 'other.env' }, cwd })
  t.equal(byName(viaVar.stdout).get('env file'), `warn env file: ${join(cwd, 'other.env')} has mode 0644, readable by others: run chmod 600 ${join(cwd, 'other.env')}`)
  t.equal(viaVar.code, 0)
  const viaVarMissing = await runCli(['doctor'], { env: { ...env, ENV_FILE: 'nowhere.env' }, cwd })
  t.equal(byName(viaVarMissing.stdout).get('env file'), `warn env file: none at ${join(cwd, 'nowhere.env')}: using the environment only`)
  t.ok(byName(viaVarMissing.stdout).has('provider'), 'ENV_FILE naming a missing file: the checks go on')
  const authorizeBefore = mock.counts().authorize
  const viaFlag = await runCli(['doctor', '--env-file', 'nowhere.env'], { env, cwd })
  t.same(lines(viaFlag.stdout), [`FAIL env file: no file at ${join(cwd, 'nowhere.env')}: check the path (nothing else was checked)`])
  t.equal(viaFlag.code, 1)
  t.equal(mock.counts().authorize, authorizeBefore, 'nothing asked of the provider for the missing file')
})

t.test('formatCheck and the report', async (t) => {
  t.equal(formatCheck({ status: 'ok', name: 'a', detail: 'b' }), 'ok   a: b')
  t.equal(formatCheck({ status: 'warn', name: 'a', detail: 'b' }), 'warn a: b')
  t.equal(formatCheck({ status: 'fail', name: 'a', detail: 'b' }), 'FAIL a: b')
  const cwd = await tempDir(t)
  const report = await doctor({ env: { NODE_ENV: 'production' }, cwd })
  t.equal(report.ok, false)
  t.equal(report.envFile, join(cwd, '.env'))
  // Two mistakes, two lines: the configuration's refusal (no AIHUBMIX_BASE_URL in production) is the provider line's.
  t.same(report.checks.filter((c) => c.status === 'fail').map((c) => c.name), ['SESSION_SECRET', 'provider'])
  await t.rejects(doctor({ env: {}, cwd, timeoutMs: -1 }), { code: 'FST_AIHUBMIX_CLI_INVALID_OPTION', message: /^Invalid aihubmix-oauth option "timeoutMs": expected / })
})

// Values the example server refused at start (Fastify with `invalid IP address: maybe`, naming no variable; the
// plugins naming their own option) while doctor said "accepted by the example server" (from a docs review).
t.test('doctor fails what the example would refuse at start: TRUST_PROXY, a provider URL with a query, a REDIS_URL parameter', async (t) => {
  const cwd = await tempDir(t)
  const cases: Array<[Record<string, string>, string]> = [
    [{ TRUST_PROXY: 'maybe' }, 'FAIL configuration: TRUST_PROXY: maybe is not an address, a subnet, loopback, linklocal or uniquelocal'],
    [{ AIHUBMIX_BASE_URL: 'https://aihubmix.example/?x=1', AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_x' }, 'FAIL configuration: AIHUBMIX_BASE_URL: must not have a query or a fragment'],
    [{ REDIS_URL: 'redis://127.0.0.1:6379/?foo=bar' }, 'FAIL Redis: REDIS_URL: its query parameter foo is not one token-store reads']
  ]
  const results = await Promise.all(cases.map(([env]) => runCli(['doctor'], { env, cwd })))
  for (const [i, [env, wanted]] of cases.entries()) {
    const result = results[i] as Awaited<ReturnType<typeof runCli>>
    t.equal(result.code, 1, JSON.stringify(env))
    t.ok(lines(result.stdout).some((line) => line.startsWith(wanted)), `${wanted}\n${result.stdout}`)
  }
})
