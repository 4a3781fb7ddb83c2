import t from 'tap'
import type { Test } from 'tap'
import { setExpiry, startStack, findLeaks, type Stack } from '../helpers/stack.js'
import type { TestBrowser } from '../helpers/browser.js'

// Issue 4, the security rules for refresh (one refresh per session, the rotated token kept), against the mock with rotation on and reuse fatal,
// with exact upstream call counts.

const CSRF = { 'x-csrf': '1' }

async function signedIn (t: Test, opts: Parameters<typeof startStack>[0] = {}): Promise<{ stack: Stack, browser: TestBrowser }> {
  const stack = await startStack(opts)
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.resetCounts()
  return { stack, browser }
}

t.test('a fresh token is never refreshed', async (t) => {
  const { stack, browser } = await signedIn(t)
  for (let i = 0; i < 5; i++) t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 0)
  t.equal(stack.mock.counts().userinfo, 5)
})

t.test('a token inside the skew window is refreshed once, before use', async (t) => {
  const { stack, browser } = await signedIn(t)
  await setExpiry(stack, browser, 60_000) // 1 minute left, skew is 5 minutes
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 1)
  t.equal(stack.mock.counts().userinfo, 1, 'no failed call first')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'the new token is fresh')
  const session = JSON.parse((await browser.get(`${stack.url}/auth/session`)).body)
  t.ok(Date.parse(session.expiresAt) > Date.now() + 3600_000, 'expiresAt reports the new token')
})

t.test('a provider 401 costs one refresh and one retry, never a loop', async (t) => {
  const { stack, browser } = await signedIn(t)
  stack.mock.expireAccessTokens()
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 1)
  t.equal(stack.mock.counts().userinfo, 2)

  // A provider that keeps answering 401, to the token a refresh gave moments ago too: refreshing again would only
  // rotate the refresh token once more (forcedRefreshIntervalMs; refused-fresh-token.test.ts): the 401 is the answer.
  stack.mock.resetCounts()
  stack.mock.setFault('userinfo', 'http401', { times: 10 })
  const res = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(res.status, 502)
  t.same(JSON.parse(res.body).error, 'bad_gateway')
  t.equal(stack.mock.counts().userinfo, 1, 'one call, no retry with the same token')
  t.equal(stack.mock.counts().grants.refresh_token, 0, 'no refresh')
  stack.mock.setFault('userinfo', null)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'the session survived')
})

t.test('50 concurrent requests on an expired token: exactly 1 refresh, all succeed', async (t) => {
  const { stack, browser } = await signedIn(t)
  await setExpiry(stack, browser, -1000)
  const all = await Promise.all(Array.from({ length: 50 }, () => browser.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(all.map((r) => r.status), Array(50).fill(200))
  t.equal(stack.mock.counts().grants.refresh_token, 1)
  t.equal(stack.mock.counts().userinfo, 50)
})

t.test('50 concurrent requests that all get a provider 401: exactly 1 refresh', async (t) => {
  const { stack, browser } = await signedIn(t)
  stack.mock.expireAccessTokens()
  const all = await Promise.all(Array.from({ length: 50 }, () => browser.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(all.map((r) => r.status), Array(50).fill(200))
  t.equal(stack.mock.counts().grants.refresh_token, 1)
})

t.test('a slow refresh (1.5 s) is shared by its waiters', async (t) => {
  const { stack, browser } = await signedIn(t)
  await setExpiry(stack, browser, -1000)
  stack.mock.setLatency('token', 1500)
  const all = await Promise.all(Array.from({ length: 20 }, () => browser.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(all.map((r) => r.status), Array(20).fill(200))
  t.equal(stack.mock.counts().grants.refresh_token, 1)
})

t.test('a revoked grant: 401 reauth_required, then no more token requests', async (t) => {
  const { stack, browser } = await signedIn(t)
  const sid = stack.sessionIdOf(browser)
  const kv = (stack.app.tokenStore as unknown as { kv: { get (key: string): Promise<string | null> } }).kv
  const keys = (stack.app.tokenStore as unknown as { keys: { session (sid: string): string } }).keys
  t.not(await kv.get(keys.session(sid)), null, 'signed in: the session record exists')
  stack.mock.revokeGrants()
  const first = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(first.status, 401)
  t.same(JSON.parse(first.body).error, 'reauth_required')
  t.equal(await kv.get(keys.session(sid)), null, 'the session was ended with the grant, record and all')
  t.equal(stack.mock.counts().grants.refresh_token, 1)
  for (let i = 0; i < 3; i++) {
    const later = await browser.get(`${stack.url}/api/user/info`, CSRF)
    t.equal(later.status, 401)
    t.same(JSON.parse(later.body).error, 'unauthenticated')
  }
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'no further refresh attempts')
  t.same(JSON.parse((await browser.get(`${stack.url}/auth/session`)).body), { authenticated: false })
})

t.test('a 503 from the token endpoint keeps the session; it backs off for the Retry-After, then recovers', async (t) => {
  const failures: unknown[] = []
  const { stack, browser } = await signedIn(t, { tokenStore: { hooks: { onRefreshFailed: (e) => { failures.push(e.error) } } } })
  await setExpiry(stack, browser, -1000)
  stack.mock.setFault('token', 'http503') // answers with Retry-After: 1
  const failed = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(failed.status, 502, 'the provider\'s 503 is a bad gateway, as every 5xx of its')
  t.same(JSON.parse(failed.body).error, 'bad_gateway')
  t.equal(stack.mock.counts().grants.refresh_token, 1)
  t.match(failures, [{ code: 'FST_AIHUBMIX_UPSTREAM_BUSY', retryAfterMs: 1000 }], 'the provider\'s Retry-After: 1 reaches token-store')
  // Twenty requests at once, as a user's page would send them, and more right after: nobody calls the token
  // endpoint while the session backs off.
  const burst = await Promise.all(Array.from({ length: 20 }, () => browser.get(`${stack.url}/api/user/info`, CSRF)))
  t.same(burst.map((r) => [r.status, JSON.parse(r.body).error]), Array(20).fill([503, 'upstream_unavailable']))
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'no token call during the backoff')
  stack.mock.setFault('token', null)
  let answer = await browser.get(`${stack.url}/api/user/info`, CSRF)
  while (answer.status === 503) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    answer = await browser.get(`${stack.url}/api/user/info`, CSRF)
  }
  t.equal(answer.status, 200, 'recovered once the backoff was over')
  t.equal(stack.mock.counts().grants.refresh_token, 2, 'one more token call: the one that succeeded')
})

t.test('token endpoint timeouts and connection failures keep the session', async (t) => {
  // Without the backoff after a failure (refresh-backoff.test.ts has it), each request tries again; and without the
  // grace after a refresh's timeout (refresh-late-answer.test.ts has it), the hung call is given up at once.
  const { stack, browser } = await signedIn(t, { proxy: { timeoutMs: 300, refreshGraceMs: 0 }, tokenStore: { refreshBackoffMs: 0 } })
  await setExpiry(stack, browser, -1000)
  stack.mock.setFault('token', 'hang', { times: 1 })
  const slow = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(slow.status, 504)
  stack.mock.setFault('token', 'http500', { times: 1 })
  const broken = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(broken.status, 502)
  const ok = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(ok.status, 200)
  t.same(findLeaks(stack.secrets(), [...browser.transcript(stack.url), ...stack.logs]), [])
})

// The request that started a refresh waited for it to the refresher's deadline, whatever its token's life: with a
// token that ended before that deadline (a refresh window shorter than timeoutMs, or minutes of a hung endpoint
// near the end of a token's life) it answered 504 upstream_timeout, though its token was valid when it came.
t.test('a hung token endpoint and a token that ends before its deadline: the request that starts the refresh is served with that token', async (t) => {
  const { stack, browser } = await signedIn(t, { proxy: { timeoutMs: 3000, refreshGraceMs: 0 } })
  await setExpiry(stack, browser, 1500)
  stack.mock.setFault('token', 'hang', { times: 1 })
  const started = Date.now()
  const res = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(res.status, 200, `its still-valid token: ${res.status} ${res.body}`)
  t.ok(Date.now() - started < 1500, 'answered while that token lived, not at the refresh\'s deadline')
  t.equal(stack.mock.counts().userinfo, 1)
})

t.test('when the provider does not rotate, the old refresh token is kept', async (t) => {
  const { stack, browser } = await signedIn(t)
  stack.mock.setRotation({ rotate: false })
  await setExpiry(stack, browser, -1000)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  await setExpiry(stack, browser, -1000)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 2)
  const set = await stack.app.tokenStore.get(stack.sessionIdOf(browser))
  t.ok(set?.refreshToken, 'a refresh token is still there')
})

t.test('a slow request that finishes last does not write back older tokens', async (t) => {
  const { stack, browser } = await signedIn(t)
  const sid = stack.sessionIdOf(browser)
  const before = await stack.app.tokenStore.get(sid)
  stack.mock.setLatency('userinfo', 800)
  const slow = browser.get(`${stack.url}/api/user/info`, CSRF) // holds the old access token
  await new Promise((resolve) => setTimeout(resolve, 100))
  stack.mock.setLatency('userinfo', 0)
  await setExpiry(stack, browser, -1000)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'a refresh happened meanwhile')
  const refreshed = await stack.app.tokenStore.get(sid)
  t.not(refreshed?.accessToken, before?.accessToken)
  t.equal((await slow).status, 200)
  const after = await stack.app.tokenStore.get(sid)
  t.equal(after?.accessToken, refreshed?.accessToken, 'the newer token set stays')
  t.equal(after?.refreshToken, refreshed?.refreshToken)
})
