import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { parseEnvFile, readConfig } from 'aihubmix-oauth'
import { lines, runCli, tempDir } from './capture.js'

// The provider compares redirect URIs byte for byte, and readConfig (so the example server and doctor) sends
// `new URL(AIHUBMIX_REDIRECT_URI).href`. create-app registered the URI as typed: with an upper-case host or a
// default port the two never matched, every sign-in failed at the provider, and doctor advised setting
// AIHUBMIX_REDIRECT_URI to the registered one, which it already was.

const SESSION_SECRET = 's'.repeat(40)

for (const [typed, sent] of [
  ['http://LOCALHOST:3120/auth/callback', 'http://localhost:3120/auth/callback'],
  ['http://localhost:80/auth/callback', 'http://localhost/auth/callback'],
  ['https://App.Example.COM:443/auth/callback', 'https://app.example.com/auth/callback']
] as const) {
  t.test(`create-app --redirect-uri ${typed} registers ${sent}, the form the app sends`, async (t) => {
    const mock = await startMockProvider({ port: 0 })
    t.teardown(() => mock.close())
    const cwd = await tempDir(t)
    const created = await runCli(
      ['create-app', '--name', 'My app', '--redirect-uri', typed, '--base-url', mock.url],
      { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
    )
    t.equal(created.code, 0, { output: created.all })
    t.equal(mock.apps[0]?.redirectUri, sent, 'registered in the WHATWG form')
    const values = parseEnvFile(await readFile(join(cwd, '.env'), 'utf8'))
    t.equal(values.AIHUBMIX_REDIRECT_URI, sent, 'and written so')
    t.ok(lines(created.stdout).includes(`note: registered the redirect URI as ${sent} (--redirect-uri ${typed} in the form the app sends, which the provider must match exactly); AIHUBMIX_REDIRECT_URI is written so too`))

    // What the example server would send is what was registered; doctor's sign-in probe agrees.
    const env = { PUBLIC_URL: new URL(sent).origin, SESSION_SECRET }
    t.equal(readConfig({ ...values, ...env }).redirectUri, sent)
    const doctor = await runCli(['doctor'], { env, cwd })
    const registration = lines(doctor.stdout).find((l) => l.includes('app registration:'))
    t.match(registration, /^ok {3}app registration: the provider accepts AIHUBMIX_CLIENT_ID with redirect URI /, { output: doctor.stdout })
  })
}

t.test('a redirect URI already in that form is registered as typed, with no note', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const created = await runCli(
    ['create-app', '--name', 'My app', '--redirect-uri', 'http://localhost:3120/auth/callback', '--base-url', mock.url],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(created.code, 0, { output: created.all })
  t.equal(mock.apps[0]?.redirectUri, 'http://localhost:3120/auth/callback')
  t.notMatch(created.stdout, /note: registered the redirect URI/)
})
