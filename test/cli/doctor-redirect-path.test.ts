import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { ConfigError, parseEnvFile, readConfig } from 'aihubmix-oauth'
import { lines, runCli, tempDir } from './capture.js'

// After `create-app --redirect-uri http://localhost:3000/login/cb`, doctor said `ok configuration: accepted by the
// example server` and then `FAIL redirect URI: ... the example server refuses to start with it`: readConfig did not
// check the callback path that oauth-routes (registered by example/app.ts) refuses at start.

const REFUSAL = 'http://localhost:3000/login/cb is not the callback route /auth/callback: the example server refuses to start with it ' +
  '(its callback is http://localhost:3000/auth/callback). Fix: set PUBLIC_URL to the origin browsers use for the app, or unset ' +
  'AIHUBMIX_REDIRECT_URI and register http://localhost:3000/auth/callback as the app\'s redirect URI'

t.test('a redirect URI on another path: readConfig refuses it, doctor says so once and not "ok configuration"', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const created = await runCli(
    ['create-app', '--name', 'x', '--redirect-uri', 'http://localhost:3000/login/cb', '--base-url', mock.url],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(created.code, 0, { output: created.all })
  const env = { ...parseEnvFile(await readFile(join(cwd, '.env'), 'utf8')), PUBLIC_URL: 'http://localhost:3000', SESSION_SECRET: 's'.repeat(40) }

  const err = (() => { try { readConfig(env) } catch (e) { return e } })()
  t.ok(err instanceof ConfigError)
  t.equal((err as ConfigError).variable, 'AIHUBMIX_REDIRECT_URI')
  t.equal((err as Error).message, `AIHUBMIX_REDIRECT_URI: ${REFUSAL}`)

  const doctor = await runCli(['doctor'], { env: { PUBLIC_URL: env.PUBLIC_URL, SESSION_SECRET: env.SESSION_SECRET }, cwd })
  t.equal(doctor.code, 1)
  const out = lines(doctor.stdout)
  t.notOk(out.some((l) => l.includes('configuration: accepted')), 'not "accepted by the example server"', { output: doctor.stdout })
  t.same(out.filter((l) => l.includes('refuses to start')), [`FAIL redirect URI: AIHUBMIX_REDIRECT_URI ${REFUSAL}. An app of your own that ` +
    'serves its callback at /login/cb (oauth-routes\' prefix and routes.callback) is not the example server: this line is about the ' +
    'example only, the app registration and client credentials lines apply to yours'], 'said once, with which lines apply to an app of ones own')
})

t.test('on another origin than PUBLIC_URL: refused too, in the words doctor uses', async (t) => {
  const err = (() => {
    try {
      readConfig({ PUBLIC_URL: 'https://app.example.com', AIHUBMIX_REDIRECT_URI: 'https://other.example.com/auth/callback' })
    } catch (e) { return e }
  })()
  t.match((err as Error).message, /^AIHUBMIX_REDIRECT_URI: https:\/\/other\.example\.com\/auth\/callback is not on PUBLIC_URL's origin https:\/\/app\.example\.com: the example server refuses to start with it/)
  // The same URI with a query, or in another letter case, is the callback route: accepted as before.
  t.equal(readConfig({ PUBLIC_URL: 'http://localhost:3000', AIHUBMIX_REDIRECT_URI: 'http://LOCALHOST:3000/auth/callback?x=1' }).redirectUri, 'http://localhost:3000/auth/callback?x=1')
})
