import t from 'tap'
import { TestBrowser } from '../helpers/browser.js'
import { linesAtLeast, startComposedApp } from '../helpers/readme-composition.js'

// Composition mistakes that let the sign-in work and break what comes after it without a word: the first
// completed sign-in says each one in a single error line, once per app.

const CSRF = { 'x-csrf': '1' }

t.test('@fastify/session without store: app.tokenStore.sessionStore: one error line at the first sign-in', async (t) => {
  const { url, logs, signIn } = await startComposedApp(t, { tokenStoreSessions: false })
  const first = new TestBrowser()
  t.equal((await signIn(first)).headers.location, '/', 'the sign-in works')
  t.same(JSON.parse((await first.get(`${url}/auth/session`)).body).authenticated, true, '/auth/session says signed in')
  t.equal((await first.get(`${url}/api/user/info`, CSRF)).status, 401, 'but /api (token-store\'s sessionCookie) finds no session')
  const listed = await first.get(`${url}/auth/sessions`)
  t.same([listed.status, JSON.parse(listed.body)], [200, { sessions: [] }], 'and the user\'s session list is empty')
  t.equal((await signIn(new TestBrowser())).headers.location, '/', 'a second sign-in')
  t.same(linesAtLeast(logs(), 40), [
    'oauth-routes: @fastify/session keeps its sessions in a store that is not token-store\'s, so sign-in works but GET /auth/sessions ' +
    'lists nothing and sign-out everywhere misses this session, and every route that reads the session with token-store\'s sessionCookie ' +
    '(the proxy\'s /api/*) answers 401. Fix: register @fastify/session with store: app.tokenStore.sessionStore'
  ], 'one line, once per app')
})

t.test('without token-store\'s sessionCookie the line does not speak of /api', async (t) => {
  const { logs, signIn } = await startComposedApp(t, { tokenStoreSessions: false, tokenStoreCookie: null })
  t.equal((await signIn(new TestBrowser())).headers.location, '/')
  const lines = linesAtLeast(logs(), 40)
  t.equal(lines.length, 2, 'the proxy\'s line at start (below), and this one')
  t.match(lines[1], /lists nothing and sign-out everywhere misses this session\. Fix: register @fastify\/session with store: app\.tokenStore\.sessionStore$/)
})

// The README's composition with token-store's sessionCookie left out: the sign-in works, /auth/session says
// authenticated, and every /api/* call (outside @fastify/session's scope) answered 401, with no line at all.
t.test('no sessionCookie and @fastify/session in a scope of its own: the proxy says at start that its routes see no session', async (t) => {
  const { url, logs, signIn } = await startComposedApp(t, { tokenStoreCookie: null })
  const said = linesAtLeast(logs(), 40)
  t.same(said, [
    'aihubmix-proxy: its routes can see no session, so each answers 401: token-store has no sessionCookie, and @fastify/session is ' +
    'not registered where the proxy is. Fix: give token-store sessionCookie: { name, secret } (@fastify/session\'s cookieName and ' +
    'secret), or register @fastify/session before aihubmix-proxy, in the same scope'
  ], 'one line, at start')
  const browser = new TestBrowser()
  t.equal((await signIn(browser)).headers.location, '/', 'the sign-in works')
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 401, 'as the line says')
  t.equal(linesAtLeast(logs(), 40).length, 1, 'nothing more')
})

t.test('the README\'s composition signs in without a line at warn or above', async (t) => {
  const { url, logs, signIn } = await startComposedApp(t)
  const browser = new TestBrowser()
  t.equal((await signIn(browser)).headers.location, '/')
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 200)
  t.same(linesAtLeast(logs(), 40), [])
})

t.test('token-store\'s sessionCookie.name is not @fastify/session\'s cookieName: one error line naming both, once per app', async (t) => {
  const { url, logs, signIn } = await startComposedApp(t, { cookieName: 'sid', tokenStoreCookie: 'session' })
  const browser = new TestBrowser()
  t.equal((await signIn(browser)).headers.location, '/', 'the sign-in works')
  t.same(JSON.parse((await browser.get(`${url}/auth/session`)).body).authenticated, true, '/auth/session says signed in')
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 401, 'every /api call answers 401')
  t.equal((await signIn(new TestBrowser())).headers.location, '/', 'a second sign-in')
  t.same(linesAtLeast(logs(), 40), [
    'oauth-routes: @fastify/session\'s cookie is sid but token-store\'s sessionCookie.name is session, so sign-in works and every route ' +
    'that reads the session with token-store\'s sessionCookie (the proxy\'s /api/*) answers 401. Fix: use the same cookie name in ' +
    'token-store\'s sessionCookie and @fastify/session\'s cookieName'
  ], 'one line, once per app')
  const value = browser.cookies.get(url)?.get('sid') as string
  t.ok(value.length > 20)
  t.notOk(JSON.stringify(logs()).includes(value) || JSON.stringify(logs()).includes(decodeURIComponent(value)), 'no cookie value logged')
})

// Same cookie name and secret, but @fastify/session signs in a form token-store's sessionCookie does not read: before,
// token-store's only line said "forged, or signed with a secret that is not in sessionCookie.secret", when the secrets
// were the same.
for (const [what, session] of [
  ['a cookiePrefix', { cookiePrefix: 's:' }],
  ['another algorithm', { algorithm: 'sha512' }]
] as const) {
  t.test(`@fastify/session with ${what}: one error line naming it, once per app`, async (t) => {
    const { url, logs, signIn } = await startComposedApp(t, { session })
    const browser = new TestBrowser()
    t.equal((await signIn(browser)).headers.location, '/', 'the sign-in works')
    t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 401, 'every /api call answers 401')
    t.equal((await signIn(new TestBrowser())).headers.location, '/', 'a second sign-in')
    const lines = linesAtLeast(logs(), 50)
    t.same(lines, [
      'oauth-routes: token-store\'s sessionCookie cannot verify the sid cookie @fastify/session just set, so sign-in works and every ' +
      'route that reads the session with it (the proxy\'s /api/*) answers 401. Fix: have @fastify/session sign with a secret that is ' +
      'in sessionCookie.secret, and give it no cookiePrefix, algorithm or signer of its own (sessionCookie reads only the default ' +
      '<id>.<HMAC-SHA256> form)'
    ], 'one line, once per app')
    const value = browser.cookies.get(url)?.get('sid') as string
    t.notOk(JSON.stringify(logs()).includes(decodeURIComponent(value)), 'no cookie value logged')
  })
}

t.test('@fastify/session signing with another secret than sessionCookie\'s: the same line', async (t) => {
  const { url, logs, signIn } = await startComposedApp(t, { session: { secret: 'o'.repeat(40) } })
  const browser = new TestBrowser()
  t.equal((await signIn(browser)).headers.location, '/')
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 401)
  t.match(linesAtLeast(logs(), 50), [/^oauth-routes: token-store's sessionCookie cannot verify the sid cookie/])
})

t.test('oauth-routes\' cookieName is not @fastify/session\'s: one error line (logout would clear the wrong cookie)', async (t) => {
  const { logs, signIn } = await startComposedApp(t, { cookieName: 'sid', routesCookie: 'sessionId' })
  t.equal((await signIn(new TestBrowser())).headers.location, '/')
  t.same(linesAtLeast(logs(), 40), [
    'oauth-routes: @fastify/session\'s cookie is sid but oauth-routes\' cookieName is sessionId, so logout clears the wrong cookie and the ' +
    'cookie checks of /auth/login look at the wrong name. Fix: pass @fastify/session\'s cookieName as oauth-routes\' cookieName'
  ])
})

t.test('a failed callback sets no session cookie: nothing is decided, the next completed sign-in checks', async (t) => {
  const { url, logs, signIn } = await startComposedApp(t, { cookieName: 'sid', tokenStoreCookie: 'session' })
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const state = new URL(TestBrowser.location(start)).searchParams.get('state') as string
  t.equal((await browser.get(`${url}/auth/callback?code=code_forged&state=${state}`)).headers.location, '/?error=token_exchange_failed')
  t.same(linesAtLeast(logs(), 50), [], 'no error line yet')
  t.equal((await signIn(browser)).headers.location, '/')
  t.equal(linesAtLeast(logs(), 50).length, 1, 'said at the first completed sign-in')
})
