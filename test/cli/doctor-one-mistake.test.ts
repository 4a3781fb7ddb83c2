import t, { type Test } from 'tap'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { lines, runCli, tempDir } from './capture.js'

// One mistake, one FAIL line. doctor said several mistakes twice, on the configuration line (readConfig's refusal) and
// on a check of their own: a provider URL ending in /api (configuration + provider), an invalid REDIS_URL
// (configuration + Redis), plain http PUBLIC_URL in production (configuration + HTTPS), no provider in production
// (configuration + provider). The check of its own keeps it, with the fix; two different mistakes keep two lines.

const SESSION_SECRET = 'session-secret-of-forty-characters-xxxxx'

async function startMock (t: Test): Promise<MockProvider> {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  return mock
}

const failures = (stdout: string): string[] => lines(stdout).filter((l) => l.startsWith('FAIL'))

t.test('a provider URL ending in /api: the provider line only', async (t) => {
  const mock = await startMock(t)
  const app = mock.createApp({ name: 'doctor', redirectUri: 'http://127.0.0.1:3000/auth/callback' })
  const cwd = await tempDir(t)
  const env = { AIHUBMIX_BASE_URL: `${mock.url}/api`, AIHUBMIX_CLIENT_ID: app.clientId, AIHUBMIX_CLIENT_SECRET: app.clientSecret, PUBLIC_URL: 'http://127.0.0.1:3000', SESSION_SECRET }
  const result = await runCli(['doctor'], { env, cwd })
  t.equal(result.code, 1)
  t.same(failures(result.stdout), [`FAIL provider: AIHUBMIX_BASE_URL ends in /api, but the endpoints are AIHUBMIX_BASE_URL + /api/oauth2/*: set it to the provider's origin, ${mock.url}`], { output: result.stdout })
})

t.test('an invalid REDIS_URL: the Redis line only', async (t) => {
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: { REDIS_URL: 'http://127.0.0.1:6379', SESSION_SECRET }, cwd })
  t.equal(result.code, 1)
  t.same(failures(result.stdout), ['FAIL Redis: REDIS_URL: must be a redis:// or rediss:// URL'], { output: result.stdout })
})

t.test('production with a plain http PUBLIC_URL: the HTTPS line only, naming the fix', async (t) => {
  const mock = await startMock(t)
  const app = mock.createApp({ name: 'doctor', redirectUri: 'http://app.example.com/auth/callback' })
  const cwd = await tempDir(t)
  const env = {
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: app.clientId,
    AIHUBMIX_CLIENT_SECRET: app.clientSecret,
    PUBLIC_URL: 'http://app.example.com',
    SESSION_SECRET,
    NODE_ENV: 'production'
  }
  const result = await runCli(['doctor'], { env, cwd })
  t.equal(result.code, 1)
  t.same(failures(result.stdout), ['FAIL HTTPS: PUBLIC_URL, AIHUBMIX_REDIRECT_URI use plain http outside loopback: production requires https: ' +
    'use https://, or http://localhost or http://127.0.0.1 for what runs on this machine'], { output: result.stdout })
})

t.test('production without a provider, or with one that is no URL: the provider line only', async (t) => {
  const cwd = await tempDir(t)
  const missing = await runCli(['doctor'], { env: { NODE_ENV: 'production', PUBLIC_URL: 'https://app.example.com', SESSION_SECRET }, cwd })
  t.same(failures(missing.stdout), ['FAIL provider: AIHUBMIX_BASE_URL is not set: the embedded mock provider is for development only; ' +
    'set it to the provider\'s origin, https://api.aihubmix.com'], { output: missing.stdout })
  const junk = await runCli(['doctor'], { env: { AIHUBMIX_BASE_URL: 'api.aihubmix.com', AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_x', SESSION_SECRET }, cwd })
  t.same(failures(junk.stdout), ['FAIL provider: AIHUBMIX_BASE_URL is not a usable http(s) URL: set it to the provider\'s origin, such as https://api.aihubmix.com'], { output: junk.stdout })
})

t.test('a PUBLIC_URL that is no URL: the configuration line only (the redirect URI cannot be checked without it)', async (t) => {
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: { PUBLIC_URL: 'app.example.com', SESSION_SECRET }, cwd })
  t.same(failures(result.stdout), ['FAIL configuration: PUBLIC_URL: is not an absolute URL'], { output: result.stdout })
})

t.test('two mistakes keep two lines: PUBLIC_URL with a path, and plain http in production', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = { AIHUBMIX_BASE_URL: mock.url, AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_x', PUBLIC_URL: 'http://app.example.com/app', SESSION_SECRET, NODE_ENV: 'production' }
  const result = await runCli(['doctor'], { env, cwd })
  const said = failures(result.stdout)
  t.ok(said.includes('FAIL configuration: PUBLIC_URL: must be an origin only, like https://app.example.com'), { output: result.stdout })
  t.ok(said.some((l) => l.startsWith('FAIL HTTPS: PUBLIC_URL, AIHUBMIX_REDIRECT_URI use plain http outside loopback')), { output: result.stdout })
})
