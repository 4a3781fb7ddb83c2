import t from 'tap'
import { startStack, findLeaks } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

const CSRF = { 'x-csrf': '1' }

t.test('the whole flow: login → provider → callback → info and top-up → logout', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()

  // 1. /auth/login redirects to the provider's authorize endpoint with every parameter the provider requires.
  const start = await browser.get(`${stack.url}/auth/login?returnTo=${encodeURIComponent('/after?x=1')}`)
  t.equal(start.status, 302)
  t.equal(start.headers['cache-control'], 'no-store')
  t.equal(start.headers['referrer-policy'], 'no-referrer')
  t.equal(start.headers['x-content-type-options'], 'nosniff', 'never sniffed as another type (a security review)')
  const authorizeUrl = new URL(TestBrowser.location(start))
  t.equal(authorizeUrl.origin + authorizeUrl.pathname, `${stack.mock.url}/api/oauth2/authorize`)
  const p = authorizeUrl.searchParams
  t.equal(p.get('client_id'), stack.mock.apps[0]?.clientId)
  t.equal(p.get('redirect_uri'), `${stack.url}/auth/callback`)
  t.equal(p.get('response_type'), 'code')
  t.equal(p.get('scope'), 'profile balance')
  t.equal(p.get('auto_authorize'), 'true')
  t.equal(p.get('code_challenge_method'), 'S256')
  t.match(p.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
  t.match(p.get('state'), /^[A-Za-z0-9_-]{43}$/)
  t.notOk(p.has('client_secret'), 'the secret never goes to the browser')
  t.equal(browser.cookieHeader(stack.url), undefined, 'no session before sign-in')
  t.match(browser.cookieHeader(`${stack.url}/auth/callback`), /^aihubmix-login-[0-9]=v1\./, 'the login is bound to this browser by a sealed cookie for the callback')

  // 2. The provider answers with a code straight back to the callback (one click).
  const back = await browser.get(authorizeUrl.href)
  t.equal(back.status, 302)
  const callbackUrl = new URL(TestBrowser.location(back))
  t.equal(callbackUrl.pathname, '/auth/callback')
  t.ok(callbackUrl.searchParams.get('code'))

  // 3. The callback exchanges the code server-side and redirects to returnTo with a NEW session.
  const done = await browser.get(callbackUrl.href)
  t.equal(done.status, 302)
  t.equal(done.headers.location, '/after?x=1')
  t.equal(done.headers['cache-control'], 'no-store')
  t.equal(done.headers['referrer-policy'], 'no-referrer')
  t.notMatch(String(done.headers.location), /code=/)
  t.equal(stack.mock.counts().grants.authorization_code, 1)
  const setCookie = String(done.headers['set-cookie'])
  t.match(setCookie, /HttpOnly/i)
  t.match(setCookie, /SameSite=Lax/i)
  t.match(setCookie, /Path=\//)
  t.notMatch(setCookie, /Domain=/i)
  t.ok(browser.cookieHeader(stack.url), 'a session cookie after sign-in')
  t.equal(browser.cookieHeader(`${stack.url}/auth/callback`), browser.cookieHeader(stack.url), 'the login cookie was cleared')

  // 4. Session status, then the proxied user data, with only the cookie.
  const session = await browser.get(`${stack.url}/auth/session`)
  t.equal(session.status, 200)
  const s = JSON.parse(session.body)
  t.equal(s.authenticated, true)
  t.ok(Date.parse(s.expiresAt) > Date.now())
  t.same(Object.keys(s).sort(), ['authenticated', 'expiresAt', 'scope'])

  const info = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(info.status, 200)
  t.same(JSON.parse(info.body), {
    id: 12345,
    username: 'user123',
    email: 'user@example.com',
    quota: 1000000,
    used_quota: 250000,
    balance_formatted: '750.00',
    created_time: 1640995200,
    status: 1
  })
  t.equal(info.headers['cache-control'], 'no-store')
  t.equal(info.headers['x-content-type-options'], 'nosniff', 'the proxy\'s JSON too')

  const topup = await browser.get(`${stack.url}/api/user/topup`, CSRF)
  t.equal(topup.status, 200)
  t.same(JSON.parse(topup.body), { topup_url: `${stack.mock.url}/topup` })

  // 5. Logout needs the CSRF header, answers 204 and clears the cookie.
  const cookieBeforeLogout = browser.cookieHeader(stack.url) as string
  const refused = await browser.post(`${stack.url}/auth/logout`)
  t.equal(refused.status, 403)
  // Word for word the proxy's /api refusal (aihubmix-proxy's publicErrorOf).
  const proxyRefused = await browser.get(`${stack.url}/api/user/info`)
  t.equal(proxyRefused.status, 403)
  t.equal(proxyRefused.headers['x-content-type-options'], 'nosniff', 'its refusals too')
  t.same(JSON.parse(refused.body), { error: 'csrf_header_required', message: 'This route needs the header X-CSRF: 1.' })
  t.equal(refused.body, proxyRefused.body, 'the same body as the proxy routes')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'a refused logout keeps the session')

  const out = await browser.post(`${stack.url}/auth/logout`, CSRF)
  t.equal(out.status, 204)
  t.match(String(out.headers['set-cookie']), /Expires=Thu, 01 Jan 1970/i)
  t.match(String(out.headers['set-cookie']), /HttpOnly/i)

  // 6. The old cookie never authenticates again.
  const replay = await browser.get(`${stack.url}/api/user/info`, { ...CSRF, cookie: cookieBeforeLogout })
  t.equal(replay.status, 401)
  t.same(JSON.parse(replay.body), { error: 'unauthenticated', message: 'Sign in first.' })
  const replaySession = await browser.get(`${stack.url}/auth/session`, { cookie: cookieBeforeLogout })
  t.same(JSON.parse(replaySession.body), { authenticated: false })

  t.same(findLeaks(stack.secrets(), [...browser.transcript(stack.url), ...stack.logs]), [], 'no token, code or secret in any answer or log line')
})

t.test('the pre-login session id does not authenticate after login', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  // Session fixation: an attacker plants a session cookie of theirs (a live one: they signed in) in the victim's browser.
  const { browser: attacker } = await stack.login()
  const planted = attacker.cookieHeader(stack.url) as string
  t.ok(planted)
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login`, { cookie: planted })
  const back = await browser.get(TestBrowser.location(start))
  const done = await browser.get(TestBrowser.location(back), { cookie: `${planted}; ${browser.cookieHeader(`${stack.url}/auth/callback`) as string}` })
  t.equal(done.status, 302)
  t.equal(done.headers.location, '/')
  t.not(browser.cookieHeader(stack.url), planted, 'the victim got a session id of its own')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  const fixated = await browser.get(`${stack.url}/api/user/info`, { ...CSRF, cookie: planted })
  t.equal(fixated.status, 401, 'the planted id does not reach the victim\'s tokens (it was ended at login)')
  t.same(JSON.parse((await browser.get(`${stack.url}/auth/session`, { cookie: planted })).body), { authenticated: false })
})

t.test('popup mode answers a page that posts to the app origin only, then closes', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login?mode=popup`)
  const back = await browser.get(TestBrowser.location(start))
  const done = await browser.get(TestBrowser.location(back))
  t.equal(done.status, 200)
  t.match(String(done.headers['content-type']), /^text\/html/)
  t.match(done.body, /"type":"aihubmix:login","ok":true/)
  t.match(done.body, 'postMessage(message, origin)')
  t.match(done.body, `var origin = "${stack.url}"`)
  t.notMatch(done.body, /postMessage\([^)]*['"]\*['"]/)
  t.match(String(done.headers['content-security-policy']), /script-src 'nonce-/)
  t.equal(done.headers['cache-control'], 'no-store')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.same(findLeaks(stack.secrets(), browser.transcript(stack.url)), [])
})

t.test('several tabs can log in at once; each finishes on its own', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const a = await browser.get(`${stack.url}/auth/login?returnTo=/a`)
  const b = await browser.get(`${stack.url}/auth/login?returnTo=/b`)
  const backA = await browser.get(TestBrowser.location(a))
  const backB = await browser.get(TestBrowser.location(b))
  const doneB = await browser.get(TestBrowser.location(backB))
  t.equal(doneB.headers.location, '/b')
  // Tab A finishes after B's login replaced the session id: the browser binding survived it.
  const doneA = await browser.get(TestBrowser.location(backA))
  t.equal(doneA.status, 302)
  t.equal(doneA.headers.location, '/a')
  t.equal(stack.mock.counts().grants.authorization_code, 2)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'the browser is signed in')
})
