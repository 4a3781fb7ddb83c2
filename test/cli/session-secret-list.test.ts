import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { readConfig, type ExampleConfig } from 'aihubmix-oauth'
import { TestBrowser } from '../helpers/browser.js'
import { buildApp } from '../../example/app.js'
import { freePort } from '../helpers/free-port.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { lines, runCli, tempDir, configRefusal } from './capture.js'

// SESSION_SECRET was one secret to the example server, while the root README's snippet and the plugins' log lines
// say "a session secret list, newest first" to rotate it: an operator who set SESSION_SECRET=<new>,<old> had it taken
// as one secret of 88 characters, and every user was signed out (and, with TOKEN_ENCRYPTION_KEY unset, every stored
// token set could no longer be opened). readConfig now reads it as a list, like TOKEN_ENCRYPTION_KEY: each item
// trimmed and 32+ characters, the first signs, all verify; the keys derived when TOKEN_ENCRYPTION_KEY is unset follow
// the list in its order, and the example app gives the list to token-store's sessionCookie and to @fastify/session. The
// instances below are the example app itself (buildApp), on Redis, one after the other on one port.

const OLD = 'old-session-secret-of-at-least-32-characters'
const NEW = 'new-session-secret-of-at-least-32-characters'
const CSRF = { 'x-csrf': '1' }

/** One instance of the example app (example/app.ts's buildApp), from readConfig's answer, on Redis under `prefix`. */
async function instance (t: Test, config: ExampleConfig, mock: MockProvider, demo: { clientId: string, clientSecret: string }, redis: Redis, prefix: string): Promise<FastifyInstance> {
  const app = await buildApp({
    config,
    provider: { baseUrl: mock.url, clientId: demo.clientId, clientSecret: demo.clientSecret },
    logger: false,
    redis,
    tokenStore: { keyPrefix: prefix }
  })
  await app.listen({ port: config.port, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return app
}

t.test('SESSION_SECRET=<new>,<old>: an instance restarted with it keeps signed in a user who signed in under <old>', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('session-secret-list')
  cleanupPrefix(t, redis, prefix)
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const env = { PORT: String(port), PUBLIC_URL: url }
  const demo = mock.createApp({ name: 'rotation', redirectUri: `${url}/auth/callback` })

  // Signed in under the old secret alone; TOKEN_ENCRYPTION_KEY unset, so the token set is sealed with a key derived from it.
  const before = readConfig({ ...env, SESSION_SECRET: OLD })
  t.same([before.sessionSecrets, before.tokenEncryptionKeys], [[OLD], [OLD]])
  const first = await instance(t, before, mock, demo, redis, prefix)
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const authorize = await browser.get(TestBrowser.location(start))
  const back = await browser.get(TestBrowser.location(authorize))
  t.equal(TestBrowser.location(back), `${url}/`, 'signed in, back to the page without an error')
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 200)
  await first.close()

  // Restarted with the new secret first, the old one after it (a blank after the comma is trimmed).
  const rotated = readConfig({ ...env, SESSION_SECRET: `${NEW}, ${OLD}` })
  t.same(rotated.sessionSecrets, [NEW, OLD], 'newest first, each trimmed')
  t.equal(rotated.sessionSecret, NEW, 'the first signs')
  t.same(rotated.tokenEncryptionKeys, [NEW, OLD], 'the derived keys follow the list, in its order')
  const second = await instance(t, rotated, mock, demo, redis, prefix)
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 200, 'the proxy reads the session and opens its token set')
  t.match(JSON.parse((await browser.get(`${url}/auth/session`)).body), { authenticated: true }, '@fastify/session verifies the old cookie')
  await second.close()

  // Control: with the new secret alone, the same browser is signed out (the old secret is what kept it in).
  const replaced = readConfig({ ...env, SESSION_SECRET: NEW })
  await instance(t, replaced, mock, demo, redis, prefix)
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 401, 'without the old secret: signed out')
})

t.test('an item shorter than 32 characters, an empty one or one in quotes is refused naming its position, never a secret', async (t) => {
  const short = configRefusal({ SESSION_SECRET: `${NEW},short-one` })
  t.equal(short.message, 'SESSION_SECRET: secret 2 of 2 (newest first, separated by commas) is 9 characters; each needs at least 32 ' +
    '(a secret with a comma in it must be replaced: openssl rand -base64 48)')
  t.equal(configRefusal({ SESSION_SECRET: `${NEW},,${OLD}` }).message, 'SESSION_SECRET: secret 2 of 3 (newest first, separated by commas) is empty: remove the extra comma')
  t.equal(configRefusal({ SESSION_SECRET: `${NEW}, "${OLD}", ${NEW}x` }).message,
    'SESSION_SECRET: secret 2 of 3 (newest first, separated by commas) has a quote at its start or end: remove it, so that each secret is the secret alone')
  for (const err of [short, configRefusal({ SESSION_SECRET: `${NEW},short-one` })]) t.notOk(err.message.includes('short-one') || err.message.includes(NEW))
  t.same(readConfig({ SESSION_SECRET: NEW }).sessionSecrets, [NEW], 'one secret: a list of one')
})

t.test('doctor: a list is "set (N secrets, newest first)"; a short item fails naming its position; no secret is printed', async (t) => {
  const cwd = await tempDir(t)
  const listed = await runCli(['doctor'], { env: { SESSION_SECRET: `${NEW},${OLD}` }, cwd })
  t.equal(lines(listed.stdout).find((l) => l.slice(5).startsWith('SESSION_SECRET:')), 'ok   SESSION_SECRET: set (2 secrets, newest first: the first signs, all verify)', { output: listed.stdout })
  const short = await runCli(['doctor'], { env: { SESSION_SECRET: `${NEW},short-one` }, cwd })
  t.equal(short.code, 1)
  t.same(lines(short.stdout).filter((l) => l.startsWith('FAIL')), ['FAIL SESSION_SECRET: secret 2 of 2 (newest first, separated by commas) is 9 characters; ' +
    'each needs at least 32 (a secret with a comma in it must be replaced: openssl rand -base64 48)'], { output: short.stdout })
  for (const result of [listed, short]) t.notOk(result.all.includes(NEW) || result.all.includes(OLD) || result.all.includes('short-one'), 'no secret printed')
})
