import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// The session cookie's attributes, with an https public URL behind a TLS-terminating proxy on loopback.

t.test('https public URL: __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain', async (t) => {
  const stack = await startStack({ env: { PUBLIC_URL: 'https://app.example' } })
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example' }
  const start = await browser.get(`${stack.url}/auth/login`, viaProxy)
  t.equal(start.status, 302)
  // Signed out, the login sets no session cookie: only its own, under the __Host- prefix like the session's.
  const loginCookie = cookieNamed(start.headers['set-cookie'], /^__Host-aihubmix-login-/)
  t.match(loginCookie, /; Secure/i)
  t.match(loginCookie, /; HttpOnly/i)
  t.match(loginCookie, /; SameSite=Lax/i)
  t.match(loginCookie, /; Path=\/(;|$)/)
  t.notMatch(loginCookie, /Domain=/i)
  const index = cookieNamed(start.headers['set-cookie'], /^__Host-aihubmix-logins=/)
  t.match(index, /; Secure/i)
  t.match(index, /; Path=\/(;|$)/)
  t.equal(String(start.headers['set-cookie']).match(/__Secure-/), null, 'no cookie a sibling host could also set')
  t.equal(cookieNamed(start.headers['set-cookie'], /^__Host-sid=/), '', 'no session cookie before sign-in')
  const authorize = new URL(TestBrowser.location(start))
  t.equal(authorize.searchParams.get('redirect_uri'), 'https://app.example/auth/callback', 'from configuration, not from Host')

  // The provider sends the browser to https://app.example/auth/callback; the proxy forwards it here.
  const back = new URL(TestBrowser.location(await browser.get(authorize.href)))
  const done = await browser.get(`${stack.url}${back.pathname}${back.search}`, viaProxy)
  t.equal(done.status, 302)
  const setCookie = cookieNamed(done.headers['set-cookie'], /^__Host-sid=/)
  t.match(setCookie, /; Secure/i)
  t.match(setCookie, /; HttpOnly/i)
  t.match(setCookie, /; SameSite=Lax/i)
  t.match(setCookie, /; Path=\/(;|$)/)
  t.notMatch(setCookie, /Domain=/i)
  const info = await browser.get(`${stack.url}/api/user/info`, { ...viaProxy, 'x-csrf': '1' })
  t.equal(info.status, 200)

  // The cookie cleared at logout has the same attributes.
  const out = await browser.post(`${stack.url}/auth/logout`, { ...viaProxy, 'x-csrf': '1' })
  t.equal(out.status, 204)
  const cleared = String(out.headers['set-cookie'])
  t.match(cleared, /^__Host-sid=;/)
  t.match(cleared, /Expires=Thu, 01 Jan 1970/i)
  t.match(cleared, /; Secure/i)
  t.match(cleared, /; HttpOnly/i)
  t.match(cleared, /; SameSite=Lax/i)
  t.match(cleared, /; Path=\//)
})

// @fastify/session clears the cookie of a session it does not find with its path and domain only; a browser refuses
// that line for a __Host- cookie (no Secure), so the dead cookie stayed for 7 days (found by a security review).
t.test('https public URL: the cookie of a session that is gone is cleared with Secure and HttpOnly too', async (t) => {
  const stack = await startStack({ env: { PUBLIC_URL: 'https://app.example' } })
  t.teardown(() => stack.close())
  const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example' }
  const checkCleared = (header: string | string[] | undefined, what: string): void => {
    const lines = (Array.isArray(header) ? header : header === undefined ? [] : [header]).filter((line) => line.startsWith('__Host-sid='))
    t.equal(lines.length, 1, `${what}: one line for the session cookie (${JSON.stringify(lines)})`)
    const cleared = lines[0] ?? ''
    t.match(cleared, /^__Host-sid=;/, what)
    t.match(cleared, /Expires=Thu, 01 Jan 1970|Max-Age=0/i, what)
    t.match(cleared, /; Secure(;|$)/i, what)
    t.match(cleared, /; HttpOnly(;|$)/i, what)
    t.match(cleared, /; SameSite=Lax(;|$)/i, what)
    t.match(cleared, /; Path=\/(;|$)/, what)
  }
  const phone = new TestBrowser()
  const laptop = new TestBrowser()
  for (const browser of [phone, laptop]) {
    const start = await browser.get(`${stack.url}/auth/login`, viaProxy)
    const back = new URL(TestBrowser.location(await browser.get(TestBrowser.location(start))))
    t.equal((await browser.get(`${stack.url}${back.pathname}${back.search}`, viaProxy)).status, 302)
  }
  t.equal((await phone.post(`${stack.url}/auth/logout?everywhere=1`, { ...viaProxy, 'x-csrf': '1' })).status, 204)
  const gone = await laptop.get(`${stack.url}/auth/session`, viaProxy)
  t.same(JSON.parse(gone.body), { authenticated: false })
  checkCleared(gone.headers['set-cookie'], 'ended on another device')

  const forged = new TestBrowser()
  forged.cookies.set(stack.url, new Map([['__Host-sid', 'made-up.signature']]))
  const answer = await forged.get(`${stack.url}/auth/session`, viaProxy)
  t.same(JSON.parse(answer.body), { authenticated: false })
  checkCleared(answer.headers['set-cookie'], 'forged')
})

t.test('a pending login planted by a sibling host (any name but __Host-) signs nobody in', async (t) => {
  // A host beside the app (evil.example beside app.example, under one registrable domain) can set a cookie for
  // the parent domain under any name a browser allows it: `aihubmix-login-…` or `__Secure-aihubmix-login-…`,
  // never `__Host-…`. The attacker starts a login in their own browser, stops at the provider's redirect back,
  // plants their login cookie in the victim's browser, and sends the victim to their callback URL.
  const stack = await startStack({ env: { PUBLIC_URL: 'https://app.example' } })
  t.teardown(() => stack.close())
  const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example' }
  const attack = async (): Promise<{ cookie: [string, string], callback: string }> => {
    const attacker = new TestBrowser()
    const start = await attacker.get(`${stack.url}/auth/login`, viaProxy)
    const back = new URL(TestBrowser.location(await attacker.get(TestBrowser.location(start))))
    const jar = attacker.cookies.get(stack.url) as Map<string, string>
    const cookie = [...jar].find(([name]) => name.startsWith('__Host-aihubmix-login-')) as [string, string]
    return { cookie, callback: `${stack.url}${back.pathname}${back.search}` }
  }
  for (const planted of ['__Secure-aihubmix-login-', 'aihubmix-login-']) {
    const { cookie: [name, value], callback } = await attack()
    const victim = new TestBrowser()
    victim.cookies.set(stack.url, new Map([[planted + name.slice('__Host-aihubmix-login-'.length), value]]))
    const before = stack.mock.counts().grants.authorization_code
    const done = await victim.get(callback, viaProxy)
    t.equal(done.headers.location, '/?error=invalid_state', `planted as ${planted}…: refused`)
    t.equal(stack.mock.counts().grants.authorization_code, before, 'and the code is not exchanged')
    t.same(JSON.parse((await victim.get(`${stack.url}/auth/session`, viaProxy)).body), { authenticated: false })
  }
  // The control: under the __Host- name, which only the app itself can set, the same planted value would open.
  const { cookie: [name, value], callback } = await attack()
  const victim = new TestBrowser()
  victim.cookies.set(stack.url, new Map([[name, value]]))
  t.equal((await victim.get(callback, viaProxy)).headers.location, '/', 'the prefix is what stops it')
})

t.test('a Secure cookie is never sent over plain http (why trustProxy matters behind TLS)', async (t) => {
  const stack = await startStack({ env: { PUBLIC_URL: 'https://app.example' } })
  t.teardown(() => stack.close())
  const start = await new TestBrowser().get(`${stack.url}/auth/login`)
  t.equal(start.headers['set-cookie'], undefined, 'no X-Forwarded-Proto from a trusted proxy: no cookie')
  t.equal(start.headers.location, '/?error=insecure_cookie', 'and the sign-in says why instead of looping')
})

t.test('X-Forwarded-* from an untrusted peer is not believed', async (t) => {
  const stack = await startStack({ env: { PUBLIC_URL: 'https://app.example', TRUST_PROXY: '10.0.0.0/8' } })
  t.teardown(() => stack.close())
  const start = await new TestBrowser().get(`${stack.url}/auth/login`, { 'x-forwarded-proto': 'https' })
  t.equal(start.headers['set-cookie'], undefined)
  t.equal(start.headers.location, '/?error=insecure_cookie')
})

/** The one Set-Cookie line whose name matches, or ''. */
function cookieNamed (setCookie: string | string[] | undefined, name: RegExp): string {
  const lines = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]
  const found = lines.filter((line) => name.test(line))
  if (found.length > 1) throw new Error(`${found.length} cookies match ${String(name)}`)
  return found[0] ?? ''
}
