import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { readConfig } from 'aihubmix-oauth'
import { lines, runCli, tempDir, configRefusal } from './capture.js'

// Plain http is allowed in production "on loopback" only. Browsers keep every *.localhost name on this machine, but the
// server (and doctor, and create-app) resolve the provider's host through the system's resolver, and glibc asks
// network DNS for a *.localhost name: http://provider.localhost counted as loopback, and the client secret, the codes
// and the tokens could travel in the clear to whatever that name resolves to. For the provider's URL only `localhost`
// itself and loopback addresses count; PUBLIC_URL and the redirect URI, which only a browser opens, keep *.localhost.

const SESSION_SECRET = 'session-secret-of-forty-characters-xxxxx'
const APP = { AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_x', SESSION_SECRET, NODE_ENV: 'production' }

t.test('production: an http provider under *.localhost is refused naming the fix; localhost and loopback addresses are not', async (t) => {
  const err = configRefusal({ ...APP, PUBLIC_URL: 'https://app.example', AIHUBMIX_BASE_URL: 'http://provider.localhost:4000' })
  t.equal(err.variable, 'AIHUBMIX_BASE_URL')
  t.equal(err.message, 'AIHUBMIX_BASE_URL: must be https in production unless it is http://localhost or a loopback address (provider.localhost is not: ' +
    'Node.js resolves *.localhost names through DNS, so the request may leave this machine): use https://, or http://localhost or http://127.0.0.1 for a provider on this machine')
  t.match(configRefusal({ ...APP, PUBLIC_URL: 'https://app.example', AIHUBMIX_BASE_URL: 'http://aihubmix.example' }).message,
    /^AIHUBMIX_BASE_URL: must be https in production unless it is http:\/\/localhost or a loopback address: use https:\/\/, or http:\/\/localhost or http:\/\/127\.0\.0\.1/)
  for (const base of ['http://localhost:4000', 'http://LOCALHOST:4000', 'http://127.0.0.1:4000', 'http://127.1.2.3:4000', 'http://[::1]:4000', 'https://provider.localhost']) {
    t.equal(readConfig({ ...APP, PUBLIC_URL: 'https://app.example', AIHUBMIX_BASE_URL: base }).production, true, `${base} is accepted`)
  }
})

t.test('production: PUBLIC_URL under *.localhost stays accepted (a browser keeps it on this machine)', async (t) => {
  const config = readConfig({ ...APP, PUBLIC_URL: 'http://app.localhost:3000', AIHUBMIX_BASE_URL: 'https://api.aihubmix.example' })
  t.equal(config.publicUrl, 'http://app.localhost:3000')
  t.equal(config.plainHttpPublicUrl, false, 'no start-up warning about plain http either')
})

t.test('doctor: an http provider under *.localhost is not "on loopback only" in production, and the line names the fix', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const port = new URL(mock.url).port
  const env = { ...APP, PUBLIC_URL: 'http://app.localhost:3000', AIHUBMIX_BASE_URL: `http://provider.localhost:${port}` }
  const result = await runCli(['doctor'], { env, cwd })
  t.equal(result.code, 1, 'exit 1', { output: result.all })
  const https = lines(result.stdout).find((l) => l.slice(5).startsWith('HTTPS:'))
  t.equal(https, 'FAIL HTTPS: AIHUBMIX_BASE_URL uses plain http outside loopback (AIHUBMIX_BASE_URL\'s provider.localhost: the server resolves ' +
    '*.localhost names through DNS, unlike a browser): production requires https: use https://, or http://localhost or http://127.0.0.1 for what runs on this machine')
  t.notOk(result.stdout.includes('nothing leaves this machine'), { output: result.stdout })

  // The same provider as http://localhost: on this machine, PUBLIC_URL's *.localhost too.
  const app = mock.createApp({ name: 'doctor', redirectUri: 'http://app.localhost:3000/auth/callback' })
  const local = await runCli(['doctor'], { env: { ...env, AIHUBMIX_BASE_URL: `http://localhost:${port}`, AIHUBMIX_CLIENT_ID: app.clientId, AIHUBMIX_CLIENT_SECRET: app.clientSecret }, cwd })
  t.equal(lines(local.stdout).find((l) => l.slice(5).startsWith('HTTPS:')),
    'ok   HTTPS: plain http on loopback only (PUBLIC_URL, AIHUBMIX_REDIRECT_URI, AIHUBMIX_BASE_URL): nothing leaves this machine in the clear; any other host needs https',
    { output: local.stdout })
  t.notOk(result.all.includes('secret_x') || local.all.includes(app.clientSecret), 'no client secret printed')
})

t.test('create-app: a --base-url under *.localhost over http is refused before any request, naming the fix', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const port = new URL(mock.url).port
  const before = mock.counts()
  const argv = ['create-app', '--name', 'x', '--redirect-uri', 'http://localhost:3000/auth/callback', '--base-url', `http://provider.localhost:${port}`]
  const result = await runCli(argv, { env: { AIHUBMIX_DEVELOPER_TOKEN: 'dev-token-not-printed' }, cwd })
  t.equal(result.code, 2, 'exit 2', { output: result.all })
  t.equal(result.stderr, 'error: --base-url must use https unless it is http://localhost or a loopback address (provider.localhost is not: Node.js resolves ' +
    '*.localhost names through DNS, so the request may leave this machine): use https://, or http://localhost or http://127.0.0.1 for a provider on this machine\n')
  t.same(mock.counts(), before, 'nothing was sent')
  t.notOk(result.all.includes('dev-token-not-printed'))
})
