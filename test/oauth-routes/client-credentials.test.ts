import t from 'tap'
import { TestBrowser } from '../helpers/browser.js'
import { linesAtLeast, startComposedApp } from '../helpers/readme-composition.js'

// A wrong client secret: every code exchange is refused with invalid_client. The log line says which
// options to check, not only the provider's code.

t.test('a client secret the provider refuses: token_exchange_failed, and one error line that names the fix', async (t) => {
  const wrongSecret = 'wrong-client-secret-0123456789'
  const { logs, signIn, mock } = await startComposedApp(t, { clientSecret: wrongSecret })
  const back = await signIn(new TestBrowser())
  t.equal(back.headers.location, '/?error=token_exchange_failed')
  const lines = linesAtLeast(logs(), 40)
  t.equal(lines.length, 1, 'one line')
  t.equal(lines[0], 'authorization code exchange failed: the token endpoint refused this app\'s client (invalid_client). ' +
    'Fix: check the clientId and clientSecret given to aihubmix-proxy (the example reads AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET)')
  t.equal(logs().find((l) => l.msg === lines[0])?.level, 50, 'at error level: no sign-in can work')
  const all = JSON.stringify(logs())
  t.notMatch(all, wrongSecret, 'the secret given is not logged')
  for (const secret of mock.issued().clientSecrets) t.notMatch(all, secret, 'nor the real one')
  for (const code of mock.issued().codes) t.notMatch(all, code, 'nor the code')
})

t.test('a code the provider refuses (invalid_grant) keeps the plain warning', async (t) => {
  const { url, logs } = await startComposedApp(t)
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const state = new URL(TestBrowser.location(start)).searchParams.get('state') as string
  const back = await browser.get(`${url}/auth/callback?code=code_forged&state=${state}`)
  t.equal(back.headers.location, '/?error=token_exchange_failed')
  t.same(linesAtLeast(logs(), 40), ['authorization code exchange failed'])
})
