import t from 'tap'
import { setExpiry, startStack } from '../helpers/stack.js'

// The app's client secret refused for a while: rotated in the provider's console minutes before the new one was
// deployed, or one instance deployed with a typo in it. RFC 6749 5.2: `invalid_client` is about the CLIENT's
// authentication, not the user's grant, whose refresh token is as good as before. The refresh counted it as the
// grant's end (RefreshRejectedError), so token-store deleted the set and the session: every user whose token came
// due in that window was signed out, and stayed signed out once the right secret was deployed.

const CSRF = { 'x-csrf': '1' }

t.test('the app\'s credentials refused (invalid_client) during refreshes: 502 meanwhile, nobody signed out', async (t) => {
  const stack = await startStack({ tokenStore: { refreshBackoffMs: 200 } })
  t.teardown(() => stack.close())
  const users = [await stack.login(), await stack.login(), await stack.login()].map((l) => l.browser)

  stack.mock.setFault('token', 'invalid_client')
  for (const browser of users) await setExpiry(stack, browser, -1000)
  const during = await Promise.all(users.map((b) => b.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(during.map((r) => [r.status, JSON.parse(r.body).error]), users.map(() => [502, 'bad_gateway']),
    'a 502: the provider refused the app, not the users')
  for (const browser of users) t.not(await stack.app.tokenStore.get(stack.sessionIdOf(browser)), null, 'the token set is kept')
  const logged = stack.logs.join('')
  t.match(logged, 'check the clientId and clientSecret given to aihubmix-proxy', 'the log line names what to fix')
  t.notMatch(logged, /revoked|session ended/i, 'no session was ended')

  // The right secret again (the fault lifted); the backoff passes.
  stack.mock.setFault('token', null)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const after = await Promise.all(users.map((b) => b.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(after.map((r) => r.status), [200, 200, 200], 'every user is still signed in, refreshed')
  t.equal(stack.mock.counts().refreshTokenReuses, 0, 'no refresh token was presented twice')
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
  const { startComposedApp } = await import('../oauth-routes/composed-app.js')
  const composed = await startComposedApp(t, {
    tokenStore: { refreshBackoffMs: 200 },
    scopeRoutes: (scope) => {
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

  composed.mock.setFault('token', 'invalid_client')
  const refused = await browser.get(`${composed.url}/my/balance`)
  t.equal(refused.status, 502, 'the provider refused the app: a bad gateway, not a bad request')
  t.equal(JSON.parse(refused.body).code, 'FST_AIHUBMIX_TOKEN_ENDPOINT')
  const logged = composed.logs().filter((l) => JSON.stringify(l).includes('FST_AIHUBMIX_TOKEN_ENDPOINT'))
  t.ok(logged.some((l) => l.level >= 50), 'Fastify logs it as an error, where an operator logging at warn sees it')

  composed.mock.setFault('token', null)
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal((await browser.get(`${composed.url}/my/balance`)).status, 200, 'the secret right again: still signed in')
})
