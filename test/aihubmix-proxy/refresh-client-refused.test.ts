import t from 'tap'
import { findLeaks, setExpiry, startStack } from '../helpers/stack.js'
import { startComposedApp } from '../helpers/readme-composition.js'

// The provider refusing the app's own credentials at a refresh (invalid_client: a revoked client, or a secret
// rotated in its console). The security model treats it like invalid_grant: the token set and the session are
// deleted, 401 `reauth_required`, no further refresh attempt. Since every user whose token comes due is signed out
// alike until the credentials are put right, one error line per refusal names what to fix (a 401 alone is not
// logged), with no secret in it.

const CSRF = { 'x-csrf': '1' }

t.test('the app\'s credentials refused (invalid_client) at a refresh: 401 reauth_required, set and session gone, the log names the fix', async (t) => {
  const stack = await startStack({ tokenStore: { refreshBackoffMs: 200 } })
  t.teardown(() => stack.close())
  const users = [await stack.login(), await stack.login(), await stack.login()].map((l) => l.browser)
  const sids = users.map((b) => stack.sessionIdOf(b))

  stack.mock.setFault('token', 'invalid_client')
  for (const browser of users) await setExpiry(stack, browser, -1000)
  const refreshesBefore = stack.mock.counts().token
  const during = await Promise.all(users.map((b) => b.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(during.map((r) => [r.status, JSON.parse(r.body).error]), users.map(() => [401, 'reauth_required']),
    'each user must sign in again')
  t.equal(stack.mock.counts().token - refreshesBefore, users.length, 'one token call per session')
  for (const sid of sids) t.equal(await stack.app.tokenStore.get(sid), null, 'the token set is deleted')

  const logged = stack.logs.join('')
  const lines = stack.logs.filter((l) => l.includes('refused the app\'s credentials'))
  t.equal(lines.length, users.length, 'one line per refusal')
  t.ok(lines.every((l) => JSON.parse(l).level === 50), 'logged as an error')
  t.match(logged, 'check the clientId and clientSecret given to aihubmix-proxy', 'the line names what to fix')
  t.same(findLeaks(stack.secrets(), stack.logs), [], 'no token, code or secret in the log')

  // The right secret again: the sessions stay ended (no refresh attempt), the old cookies answer 401.
  stack.mock.setFault('token', null)
  const refreshesAfter = stack.mock.counts().token
  const after = await Promise.all(users.map((b) => b.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(after.map((r) => r.status), [401, 401, 401], 'the old cookies are signed out')
  t.equal(stack.mock.counts().token, refreshesAfter, 'no further token call')
  const status = await users[0]!.get(`${stack.url}/auth/session`)
  t.equal(JSON.parse(status.body).authenticated, false, 'the session itself was ended')
})

t.test('invalid_grant still ends the session (the grant is gone)', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.revokeGrants()
  await setExpiry(stack, browser, -1000)
  const res = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(res.status, 401)
  t.equal(await stack.app.tokenStore.get(stack.sessionIdOf(browser)), null, 'the set is gone')
})

t.test('on the app\'s own route (no error handler of the proxy\'s): a 502 logged as an error, not a 400 at info', async (t) => {
  const composed = await startComposedApp(t, {
    tokenStore: { refreshBackoffMs: 200 },
    sessionScope: (scope) => {
      scope.get('/my/balance', async (request) => ({ balance: (await request.aihubmix.userinfo()).balance_formatted }))
    }
  })
  const { TestBrowser } = await import('../helpers/browser.js')
  const browser = new TestBrowser()
  t.equal((await composed.signIn(browser)).headers.location, '/')
  const sid = decodeURIComponent(browser.cookieHeader(composed.url)?.match(/sid=([^;.]+)/)?.[1] ?? '')
  const set = await composed.app.tokenStore.get(sid)
  if (set === null) throw new Error('no token set')
  await composed.app.tokenStore.save(sid, { ...set, expiresAt: Date.now() - 1000, obtainedAt: Date.now() - 7_201_000 })

  // An OAuth error that is not the grant's end (here `server_error` in a 200): the session stays, the call fails.
  composed.mock.setFault('token', 'error_in_200')
  const refused = await browser.get(`${composed.url}/my/balance`)
  t.equal(refused.status, 502, 'the provider refused the refresh: a bad gateway, not a bad request')
  t.equal(JSON.parse(refused.body).code, 'FST_AIHUBMIX_TOKEN_ENDPOINT')
  const logged = composed.logs().filter((l) => JSON.stringify(l).includes('FST_AIHUBMIX_TOKEN_ENDPOINT'))
  t.ok(logged.some((l) => l.level >= 50), 'Fastify logs it as an error, where an operator logging at warn sees it')

  composed.mock.setFault('token', null)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await browser.get(`${composed.url}/my/balance`)).status, 200, 'the provider right again: still signed in')
})

// The envelope's `{success: false, message}` carries no code: a bare 401 is read as invalid_client (RFC 6749), but
// some providers answer an expired refresh token so. The session ends alike; the error line says what it was read from
// instead of stating that the credentials were refused.
t.test('a bare 401 {success: false, message} at a refresh: the session ends, and the error line says the code was read from the status', async (t) => {
  const stack = await startStack({ tokenStore: { refreshBackoffMs: 200 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.setEnvelope(true, { errorCodes: false })
  stack.mock.setFault('token', 'invalid_client')
  await setExpiry(stack, browser, -1000)
  const answer = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.same([answer.status, JSON.parse(answer.body).error], [401, 'reauth_required'])
  const lines = stack.logs.filter((l) => l.includes('bare 401'))
  t.equal(lines.length, 1, 'one line')
  const line = JSON.parse(lines[0] as string) as { level: number, msg: string, error: { message: string } }
  t.equal(line.level, 50)
  t.equal(line.msg, 'the provider answered a refresh with a bare 401 (no error code), which means the app\'s credentials were refused (or, from some providers, the refresh token): the session was ended')
  t.match(line.error.message, 'carried no error code; read from its status')
  t.same(findLeaks(stack.secrets(), stack.logs), [], 'no token, code or secret in the log')
})
