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
  // Signed out, the login sets no session cookie: only its own, Secure under the __Secure- prefix, for the callback.
  const loginCookie = cookieNamed(start.headers['set-cookie'], /^__Secure-aihubmix-login-/)
  t.match(loginCookie, /; Secure/i)
  t.match(loginCookie, /; HttpOnly/i)
  t.match(loginCookie, /; SameSite=Lax/i)
  t.match(loginCookie, /; Path=\/auth\/callback(;|$)/)
  t.notMatch(loginCookie, /Domain=/i)
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
