import t from 'tap'
import { TestBrowser } from '../helpers/browser.js'
import { startComposedApp } from '../helpers/readme-composition.js'

// Issue 16, item 3: a Secure cookie over plain http. @fastify/session sets no Secure cookie on a request it
// believes is http, so a sign-in would come back signed out and loop. /auth/login says so instead: the login
// error insecure_cookie, and one warning line that names the fix.

function warnings (logs: string[]): Array<{ msg: string }> {
  return logs.map((l) => JSON.parse(l) as { level: number, msg: string }).filter((l) => l.level === 40)
}

t.test('a Secure session cookie over plain http: insecure_cookie and one warning that names the fix', async (t) => {
  // The README's snippet before issue 16: __Host-sid, secure: true, served on http://127.0.0.1.
  const { url, lines: logs } = await startComposedApp(t, { cookieName: '__Host-sid', secure: true, trustProxy: 'loopback' })
  const browser = new TestBrowser()
  for (let i = 0; i < 3; i++) {
    const res = await browser.get(`${url}/auth/login`)
    t.equal(res.status, 302)
    t.equal(res.headers.location, '/?error=insecure_cookie', 'said, not sent to the provider to loop')
    t.equal(res.headers['set-cookie'], undefined, 'no cookie of any kind')
  }
  const popup = await browser.get(`${url}/auth/login?mode=popup`)
  t.equal(popup.status, 200)
  t.match(popup.body, '"type":"aihubmix:login","ok":false,"error":"insecure_cookie"', 'popup mode tells the opener')
  const lines = warnings(logs)
  t.equal(lines.length, 1, 'one warning line, however often it happens')
  const msg = lines[0]?.msg ?? ''
  t.match(msg, /insecure_cookie/)
  t.match(msg, /Secure/)
  t.match(msg, /trustProxy/)
  t.match(msg, /cookie\.secure: 'auto'/)
  t.notMatch(msg, /\n/, 'one line')
})

t.test('a __Host- session cookie that is not Secure: insecure_cookie (browsers refuse it)', async (t) => {
  const { url, lines: logs } = await startComposedApp(t, { cookieName: '__Host-sid', secure: 'auto', trustProxy: 'loopback' })
  const res = await new TestBrowser().get(`${url}/auth/login`)
  t.equal(res.headers.location, '/?error=insecure_cookie')
  const lines = warnings(logs)
  t.equal(lines.length, 1)
  t.match(lines[0]?.msg, /__Host-sid has a __Host-\/__Secure- prefix but is not Secure/)
})

t.test('an https publicUrl reached over plain http (trustProxy missing or the proxy not trusted): insecure_cookie', async (t) => {
  const { url, lines: logs } = await startComposedApp(t, { cookieName: 'sid', secure: 'auto', publicUrl: () => 'https://app.example', trustProxy: 'loopback' })
  const res = await new TestBrowser().get(`${url}/auth/login`)
  t.equal(res.headers.location, '/?error=insecure_cookie')
  t.match(warnings(logs)[0]?.msg, /publicUrl is https but this request came over plain http/)
  // Through the trusted proxy (X-Forwarded-Proto: https from loopback) the same app starts the sign-in.
  const proxied = await new TestBrowser().get(`${url}/auth/login`, { 'x-forwarded-proto': 'https' })
  t.match(String(proxied.headers.location), /\/api\/oauth2\/authorize\?/)
  t.match(String(proxied.headers['set-cookie']), /^__Host-aihubmix-login-[0-9]=.*; Path=\/; .*Secure/)
})

t.test('the fixed snippet (secure: \'auto\', a name without prefix) signs in on plain http', async (t) => {
  const { url, lines: logs } = await startComposedApp(t, { cookieName: 'sid', secure: 'auto', trustProxy: 'loopback' })
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  const done = await browser.get(TestBrowser.location(back))
  t.equal(done.headers.location, '/')
  t.match(String(done.headers['set-cookie']), /(^|,)sid=/)
  t.same(JSON.parse((await browser.get(`${url}/auth/session`)).body).authenticated, true)
  t.same(warnings(logs), [])
})
