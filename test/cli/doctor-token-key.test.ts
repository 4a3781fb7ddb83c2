import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { lines, runInstalled, tempDir } from './capture.js'

// TOKEN_ENCRYPTION_KEY, as `doctor` reports it from the installed command. Unset, the example server derives the
// key from SESSION_SECRET (and still starts, in production too): a new session secret then leaves every stored token
// set unreadable, so production warns, naming the variable and how to make a key; development notes it.

const SESSION_SECRET = 'session-secret-of-forty-characters-xxxxx'

async function startMock (t: Test): Promise<MockProvider> {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  return mock
}

/** A production configuration the example server accepts (https app, a loopback provider), without TOKEN_ENCRYPTION_KEY. */
function productionEnv (mock: MockProvider): Record<string, string> {
  const app = mock.createApp({ name: 'doctor', redirectUri: 'https://app.example.com/auth/callback' })
  return {
    NODE_ENV: 'production',
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: app.clientId,
    AIHUBMIX_CLIENT_SECRET: app.clientSecret,
    PUBLIC_URL: 'https://app.example.com',
    SESSION_SECRET
  }
}

function lineOf (stdout: string, name: string): string | undefined {
  return lines(stdout).find((l) => l.slice(5).startsWith(`${name}:`))
}

t.test('production without TOKEN_ENCRYPTION_KEY: a warning naming it and how to make one; still accepted, exit 0', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const result = await runInstalled(['doctor'], { env: productionEnv(mock), cwd })
  t.equal(result.code, 0, 'a warning, not a failure', { output: result.all })
  t.equal(lineOf(result.stdout, 'configuration'), 'ok   configuration: accepted by the example server (production)', 'what the example accepts is unchanged')
  t.equal(lineOf(result.stdout, 'TOKEN_ENCRYPTION_KEY'), 'warn TOKEN_ENCRYPTION_KEY: not set: derived from SESSION_SECRET, so a new SESSION_SECRET leaves every stored token set unreadable (every user signs in again); make one with openssl rand -base64 32 and set TOKEN_ENCRYPTION_KEY=base64:<its output>')
  t.equal(result.stderr, '')
})

t.test('development without it: a note, not a warning', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const { NODE_ENV: _n, ...env } = productionEnv(mock)
  const result = await runInstalled(['doctor'], { env, cwd })
  t.equal(lineOf(result.stdout, 'TOKEN_ENCRYPTION_KEY'), 'ok   TOKEN_ENCRYPTION_KEY: not set: the example server derives it from SESSION_SECRET (fine in development; set it in production); an app built from the README snippet does not start without it')
  t.notOk(lines(result.stdout).some((l) => l.startsWith('warn')), 'no warning at all', { output: result.all })
})

t.test('set: ok with how many keys, never the keys; one the example refuses fails once, by its own line', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const env = productionEnv(mock)
  const key = `base64:${randomBytes(32).toString('base64')}`
  const old = 'an-old-passphrase-of-more-than-32-characters'

  const one = await runInstalled(['doctor'], { env: { ...env, TOKEN_ENCRYPTION_KEY: key }, cwd })
  t.equal(one.code, 0, 'exit 0', { output: one.all })
  t.equal(lineOf(one.stdout, 'TOKEN_ENCRYPTION_KEY'), 'ok   TOKEN_ENCRYPTION_KEY: set (1 key)')
  t.notOk(lines(one.stdout).some((l) => l.startsWith('warn')), 'no warning')

  const two = await runInstalled(['doctor'], { env: { ...env, TOKEN_ENCRYPTION_KEY: `${key},${old}` }, cwd })
  t.equal(lineOf(two.stdout, 'TOKEN_ENCRYPTION_KEY'), 'ok   TOKEN_ENCRYPTION_KEY: set (2 keys; the first encrypts)')

  const short = await runInstalled(['doctor'], { env: { ...env, TOKEN_ENCRYPTION_KEY: `${key},too-short` }, cwd })
  t.equal(short.code, 1)
  t.equal(lineOf(short.stdout, 'TOKEN_ENCRYPTION_KEY'), 'FAIL TOKEN_ENCRYPTION_KEY: key 2 of 2: 9 characters; at least 32 are needed (or base64:/hex: 32 bytes)')
  t.equal(lineOf(short.stdout, 'configuration'), undefined, 'the refusal is said once, by the key\'s own line')

  // A base64:/hex: key token-store would refuse (not 32 bytes): refused here too, not reported as set.
  const sixteen = `base64:${randomBytes(16).toString('base64')}`
  const wrongSize = await runInstalled(['doctor'], { env: { ...env, TOKEN_ENCRYPTION_KEY: sixteen }, cwd })
  t.equal(wrongSize.code, 1)
  t.equal(lineOf(wrongSize.stdout, 'TOKEN_ENCRYPTION_KEY'), 'FAIL TOKEN_ENCRYPTION_KEY: a base64: key of 16 bytes; exactly 32 are needed (openssl rand -base64 32)')
  const hex = await runInstalled(['doctor'], { env: { ...env, TOKEN_ENCRYPTION_KEY: `${key},hex:abc` }, cwd })
  t.equal(lineOf(hex.stdout, 'TOKEN_ENCRYPTION_KEY'), 'FAIL TOKEN_ENCRYPTION_KEY: key 2 of 2: a hex: key must be exactly 64 hex digits (openssl rand -hex 32)')
  t.notOk(wrongSize.all.includes(sixteen.slice('base64:'.length)), 'no key printed')

  for (const result of [one, two, short]) {
    t.notOk(result.all.includes(key.slice('base64:'.length)) || result.all.includes(old) || result.all.includes('too-short'), 'no key printed')
  }
})

// `base64url:` is no key format: token-store takes the whole value as a passphrase (and says so at start); doctor
// says it before the first start, when writing `base64:` instead still costs nothing.
t.test('a key whose prefix reads like a format but is none: a warning naming the prefix and the fix, never the key; exit 0', async (t) => {
  const mock = await startMock(t)
  const cwd = await tempDir(t)
  const raw = randomBytes(32).toString('base64url')
  const result = await runInstalled(['doctor'], { env: { ...productionEnv(mock), TOKEN_ENCRYPTION_KEY: `base64url:${raw}` }, cwd })
  t.equal(result.code, 0, 'exit 0: the example accepts it', { output: result.all })
  t.equal(lineOf(result.stdout, 'TOKEN_ENCRYPTION_KEY'), 'warn TOKEN_ENCRYPTION_KEY: starts with "base64url:", which is not a key format ' +
    '("base64:" and "hex:" are; "base64:" reads base64url too): the whole value is used as a passphrase. Write "base64:<key>" ' +
    'or "hex:<key>" before the first start, or keep it as it is once token sets are sealed with it')
  t.notOk(result.all.includes(raw), 'no key printed')

  // The prefixes are lower-case: "HEX:" is no format either (a passphrase), where "hex:" is one.
  const hex = randomBytes(32).toString('hex')
  const upper = await runInstalled(['doctor'], { env: { ...productionEnv(mock), TOKEN_ENCRYPTION_KEY: `HEX:${hex}` }, cwd })
  t.match(lineOf(upper.stdout, 'TOKEN_ENCRYPTION_KEY'), /^warn TOKEN_ENCRYPTION_KEY: starts with "HEX:", which is not a key format /, 'HEX: is flagged')
  t.notOk(upper.all.includes(hex), 'no key printed')
  const lower = await runInstalled(['doctor'], { env: { ...productionEnv(mock), TOKEN_ENCRYPTION_KEY: `hex:${hex}` }, cwd })
  t.equal(lineOf(lower.stdout, 'TOKEN_ENCRYPTION_KEY'), 'ok   TOKEN_ENCRYPTION_KEY: set (1 key)', 'a valid hex: key is not flagged')
})
