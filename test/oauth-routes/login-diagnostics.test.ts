import t from 'tap'
import { startStack, type Stack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import { recordDiagnostics, type Recorded } from '../helpers/diagnostics.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'

// Issue 19: each sign-in that ends is one `aihubmix:login` message, `{client, outcome}`: `ok`, or the code the
// browser is sent back with; a sign-in route that answers an error ends the sign-in too (4xx: invalid_request,
// else server_error; the store down is the login error store_unavailable).

function outcomes (recorded: Recorded[], stack: Stack): unknown[] {
  return recorded.filter((r) => r.channel === 'aihubmix:login' && r.message.client === stack.app.aihubmix).map((r) => r.message.outcome)
}

/** Starts a sign-in in `browser` and returns its state (the provider is not visited). */
async function started (stack: Stack, browser: TestBrowser): Promise<string> {
  const start = await browser.get(`${stack.url}/auth/login`)
  return new URL(TestBrowser.location(start)).searchParams.get('state') as string
}

t.test('one message per sign-in that ends, with its outcome and nothing else', async (t) => {
  const recorded = recordDiagnostics(t)
  const stack = await startStack()
  t.teardown(() => stack.close())

  await stack.login()
  const failures: Array<[string, (browser: TestBrowser) => Promise<string>]> = [
    ['invalid_state', async () => `/auth/callback?code=c&state=${'s'.repeat(43)}`],
    ['missing_parameters', async () => '/auth/callback?code=c'],
    ['access_denied', async (browser) => `/auth/callback?error=access_denied&state=${await started(stack, browser)}`],
    ['provider_error', async (browser) => `/auth/callback?error=temporarily_unavailable&state=${await started(stack, browser)}`],
    ['token_exchange_failed', async (browser) => `/auth/callback?code=code_forged&state=${await started(stack, browser)}`]
  ]
  for (const [code, path] of failures) {
    const browser = new TestBrowser()
    const res = await browser.get(`${stack.url}${await path(browser)}`)
    t.equal(new URL(TestBrowser.location(res)).search, `?error=${code}`, `${code}: the browser is sent back with it`)
  }
  // (A returnTo the route cannot use is no longer refused: it falls back to defaultReturnTo. A malformed mode still is.)
  const malformed = await new TestBrowser().get(`${stack.url}/auth/login?mode=${'x'.repeat(33)}`)
  t.equal(malformed.status, 400, 'a sign-in refused by the route\'s schema')

  t.same(outcomes(recorded, stack), ['ok', 'invalid_state', 'missing_parameters', 'access_denied', 'provider_error', 'token_exchange_failed', 'invalid_request'])
  for (const r of recorded.filter((r) => r.channel === 'aihubmix:login')) {
    t.same(Object.keys(r.message).sort(), ['client', 'outcome'])
  }
  // Starting a sign-in is not an outcome: the two started above that went nowhere published nothing more.
  await started(stack, new TestBrowser())
  t.equal(outcomes(recorded, stack).length, 7)
})

t.test('a callback that fails on the store ends the sign-in with store_unavailable, once', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('login-diag')
  cleanupPrefix(t, admin, prefix)
  // The app's own connection, which the test cuts (no offline queue: commands fail at once, as the example's do).
  const redis = await connectRedis(t, { enableOfflineQueue: false }) as NonNullable<typeof admin>
  const recorded = recordDiagnostics(t)
  const stack = await startStack({ redis, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  redis.disconnect() // Redis is gone when the callback claims its state
  const res = await browser.get(TestBrowser.location(back))
  t.same([res.status, res.headers.location], [302, '/?error=store_unavailable'])
  t.same(outcomes(recorded, stack), ['store_unavailable'])
})

// A popup sign-in whose callback meets the store down answers the popup page (which tells the opener and closes),
// not a redirect that would load the app's page inside the popup: both where the handler met the outage and where
// @fastify/session's own hook did, before the handler (the browser already had a session cookie).
t.test('a popup sign-in\'s callback that fails on the store answers the popup page with store_unavailable', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('login-diag-popup')
  cleanupPrefix(t, admin, prefix)
  const redis = await connectRedis(t, { enableOfflineQueue: false }) as NonNullable<typeof admin>
  const stack = await startStack({ redis, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())

  const fresh = new TestBrowser() // no session cookie: the handler's claim of the state fails
  const { browser: signedIn } = await stack.login() // a session cookie: @fastify/session's read fails first
  const backs = []
  for (const browser of [fresh, signedIn]) {
    const start = await browser.get(`${stack.url}/auth/login?mode=popup`)
    backs.push(TestBrowser.location(await browser.get(TestBrowser.location(start))))
  }
  const plain = new TestBrowser() // control: a redirect-mode sign-in, started the same way
  const plainBack = TestBrowser.location(await plain.get(TestBrowser.location(await plain.get(`${stack.url}/auth/login`))))
  redis.disconnect()
  for (const [i, browser] of [fresh, signedIn].entries()) {
    const res = await browser.get(backs[i] as string)
    t.equal(res.status, 200, `browser ${i}: the popup page, not a redirect`)
    t.match(res.headers['content-type'], /^text\/html/)
    t.match(res.body, '"type":"aihubmix:login","ok":false,"error":"store_unavailable"', `browser ${i}: tells the opener`)
  }
  const res = await plain.get(plainBack)
  t.same([res.status, res.headers.location], [302, '/?error=store_unavailable'], 'control: a redirect-mode callback redirects')

  // Redis back: the callback that failed before its handler kept its login cookie, and a reload finishes the sign-in;
  // the one whose handler took the cookie cannot be replayed.
  await redis.connect()
  const reloaded = await signedIn.get(backs[1] as string)
  t.match(reloaded.body, '"type":"aihubmix:login","ok":true', 'the reload signs in')
  const replayed = await fresh.get(backs[0] as string)
  t.same([replayed.status, replayed.headers.location], [302, '/?error=invalid_state'], 'a taken login is not good twice')
})
