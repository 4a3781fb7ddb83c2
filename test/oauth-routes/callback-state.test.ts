import t from 'tap'
import type { Test } from 'tap'
import { startStack, type Stack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// The callback's security rules: in every failure case, no token call, no session change,
// a redirect with a fixed error code.

const CSRF = { 'x-csrf': '1' }

/** Starts a login and returns the callback URL the provider sent back, without visiting it. */
async function pendingCallback (stack: Stack, browser: TestBrowser, query = ''): Promise<URL> {
  const start = await browser.get(`${stack.url}/auth/login${query}`)
  const back = await browser.get(TestBrowser.location(start))
  return new URL(TestBrowser.location(back))
}

function withParams (url: URL, edit: (p: URLSearchParams) => void): string {
  const copy = new URL(url.href)
  edit(copy.searchParams)
  return copy.href
}

async function expectRefused (t: Test, stack: Stack, browser: TestBrowser, url: string, code: string): Promise<void> {
  const before = stack.mock.counts().grants.authorization_code
  const cookieBefore = browser.cookieHeader(stack.url)
  const res = await browser.get(url)
  t.equal(res.status, 302, 'redirects')
  t.equal(res.headers.location, `/?error=${code}`)
  t.equal(stack.mock.counts().grants.authorization_code, before, 'no token call')
  t.equal(browser.cookieHeader(stack.url), cookieBefore, 'no session change')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 401, 'not signed in')
}

t.test('state checks', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())

  await t.test('missing state', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    await expectRefused(t, stack, browser, withParams(cb, (p) => p.delete('state')), 'missing_parameters')
  })

  await t.test('wrong (unknown) state', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    await expectRefused(t, stack, browser, withParams(cb, (p) => p.set('state', 'A'.repeat(43))), 'invalid_state')
  })

  await t.test('malformed state, short and long (no throw on length mismatch)', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    await expectRefused(t, stack, browser, withParams(cb, (p) => p.set('state', 'x')), 'invalid_state')
    await expectRefused(t, stack, browser, withParams(cb, (p) => p.set('state', 'x'.repeat(400))), 'invalid_state')
  })

  await t.test('repeated state (?state=a&state=b)', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    const state = cb.searchParams.get('state') as string
    await expectRefused(t, stack, browser, withParams(cb, (p) => p.append('state', state)), 'invalid_state')
  })

  await t.test('reused state: the second visit is refused', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    const first = await browser.get(cb.href)
    t.equal(first.headers.location, '/')
    const before = stack.mock.counts().grants.authorization_code
    const again = await browser.get(cb.href)
    t.equal(again.headers.location, '/?error=invalid_state')
    t.equal(stack.mock.counts().grants.authorization_code, before, 'no token call')
  })

  await t.test('state from another browser (login CSRF / code injection)', async (t) => {
    const attacker = new TestBrowser()
    const victim = new TestBrowser()
    await victim.get(`${stack.url}/auth/login`) // the victim has a login of their own pending
    const cb = await pendingCallback(stack, attacker)
    await expectRefused(t, stack, victim, cb.href, 'invalid_state')
    // The pending login belongs to the attacker's browser only: finishing it there signs in the attacker, never the victim.
    const res = await attacker.get(cb.href)
    t.equal(res.headers.location, '/')
    t.equal((await victim.get(`${stack.url}/api/user/info`, CSRF)).status, 401, 'the victim is still not signed in')
    t.equal((await attacker.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  })

  await t.test('a browser with no session at all', async (t) => {
    const attacker = new TestBrowser()
    const cb = await pendingCallback(stack, attacker)
    await expectRefused(t, stack, new TestBrowser(), cb.href, 'invalid_state')
  })

  await t.test('provider error= is mapped to a fixed code, never reflected', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    const url = withParams(cb, (p) => { p.delete('code'); p.set('error', 'access_denied') })
    await expectRefused(t, stack, browser, url, 'access_denied')
    const cb2 = await pendingCallback(stack, browser)
    const evil = withParams(cb2, (p) => { p.delete('code'); p.set('error', '<script>alert(1)</script>'); p.set('error_description', 'x\r\ny') })
    await expectRefused(t, stack, browser, evil, 'provider_error')
  })

  await t.test('missing code with a good state', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    await expectRefused(t, stack, browser, withParams(cb, (p) => p.delete('code')), 'missing_parameters')
  })

  await t.test('iss that is not the provider (RFC 9207 mix-up)', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    await expectRefused(t, stack, browser, withParams(cb, (p) => p.set('iss', 'https://evil.example')), 'invalid_issuer')
    const cb2 = await pendingCallback(stack, browser)
    const ok = await browser.get(withParams(cb2, (p) => p.set('iss', stack.mock.url)))
    t.equal(ok.headers.location, '/', 'the right iss is accepted')
  })

  await t.test('oversize and badly encoded parameters: 4xx or a clean refusal, never 5xx', async (t) => {
    const browser = new TestBrowser()
    const cb = await pendingCallback(stack, browser)
    const before = stack.mock.counts().grants.authorization_code
    const huge = await browser.get(withParams(cb, (p) => p.set('code', 'c'.repeat(20_000))))
    t.ok(huge.status >= 300 && huge.status < 500, `oversize: ${huge.status}`)
    const bad = await browser.get(`${cb.href}&code=%E0%A4%A&x=%ZZ`)
    t.ok(bad.status >= 300 && bad.status < 500, `bad encoding: ${bad.status}`)
    t.equal(stack.mock.counts().grants.authorization_code, before, 'no code was exchanged')
  })
})

t.test('query parameters of /auth/login cannot steer the authorize URL', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const res = await browser.get(`${stack.url}/auth/login?redirect_uri=https://evil.example/cb&scope=admin&response_type=token&client_id=other`, {
    host: 'evil.example',
    'x-forwarded-host': 'evil.example',
    'x-forwarded-proto': 'https'
  })
  const url = new URL(TestBrowser.location(res))
  t.equal(url.searchParams.get('redirect_uri'), `${stack.url}/auth/callback`)
  t.equal(url.searchParams.get('scope'), 'profile balance')
  t.equal(url.searchParams.get('response_type'), 'code')
  t.equal(url.searchParams.get('client_id'), stack.mock.apps[0]?.clientId)
  t.equal(url.searchParams.getAll('state').length, 1)
})

t.test('returnTo cannot leave the origin through the whole flow', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  for (const evil of ['//evil.example', '/\\evil.example', 'https://evil.example', '/\t/evil.example', '/%09/evil.example', '/.//evil.example']) {
    const { final } = await stack.login({ returnTo: evil })
    const location = String(final.headers.location)
    // Either the fallback, or a path that stays on the app's origin (percent-encoding stays encoded).
    t.ok(location === '/' || location === '/%09/evil.example', `${JSON.stringify(evil)} → ${location}`)
    t.equal(new URL(location, stack.url).origin, stack.url)
  }
})
