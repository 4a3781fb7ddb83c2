import t from 'tap'
import { TestBrowser } from '../helpers/browser.js'
import { startComposedApp } from '../helpers/readme-composition.js'

// A newcomer opens the app at the address Fastify prints (http://127.0.0.1:3000) while publicUrl says
// http://localhost:3000: the login cookie is kept for 127.0.0.1, the provider sends the browser back to localhost,
// and the sign-in fails with invalid_state. /auth/login says so in one warning line that names the fix.

function warnings (logs: string[]): string[] {
  return logs.map((l) => JSON.parse(l) as { level: number, msg: string }).filter((l) => l.level === 40).map((l) => l.msg)
}

t.test('a sign-in started at another host than publicUrl\'s: one warning per host that names the fix', async (t) => {
  const { url, lines: logs, mock } = await startComposedApp(t, { cookieName: 'sid', secure: 'auto', publicUrl: (url) => url.replace('127.0.0.1', 'localhost'), trustProxy: 'loopback' })
  const port = new URL(url).port
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  t.equal(start.status, 302, 'not refused: a proxy that rewrites Host looks the same')
  // What the newcomer then meets: the provider sends the browser to localhost, where the cookie is missing.
  const back = new URL(TestBrowser.location(await browser.get(TestBrowser.location(start))))
  t.equal(back.host, `localhost:${port}`)
  // The browser holds no cookie for localhost (TestBrowser keys cookies by the URL it was given, so a browser of
  // its own stands for the browser at localhost).
  const atLocalhost = new TestBrowser()
  t.equal((await atLocalhost.get(`${url}${back.pathname}${back.search}`, { host: back.host })).headers.location, '/?error=invalid_state')
  t.equal(mock.counts().grants.authorization_code, 0)

  await browser.get(`${url}/auth/login`) // the same host again: said once
  const said = warnings(logs)
  t.equal(said.length, 1, String(said))
  t.equal(said[0], `oauth-routes: a sign-in started at 127.0.0.1:${port}, but publicUrl is http://localhost:${port}: the browser ` +
    `keeps the login cookie for 127.0.0.1:${port} and the provider sends it back to localhost:${port}, so the sign-in fails ` +
    `with invalid_state. Fix: open the app at http://localhost:${port}, or set publicUrl to the address browsers use ` +
    '(behind a proxy, Fastify\'s trustProxy so that X-Forwarded-Host is believed)')

  // At publicUrl's own host nothing is said, and the sign-in finishes.
  const right = new TestBrowser()
  const ok = await right.get(`${url}/auth/login`, { host: `localhost:${port}` })
  const callback = new URL(TestBrowser.location(await right.get(TestBrowser.location(ok))))
  t.equal((await right.get(`${url}${callback.pathname}${callback.search}`, { host: `localhost:${port}` })).headers.location, '/')
  t.equal(warnings(logs).length, 1, 'no warning for publicUrl\'s host')

  // The Host header is the client's to choose: a handful of hosts are named, then nothing more.
  for (let i = 0; i < 20; i++) await new TestBrowser().get(`${url}/auth/login`, { host: `h${i}.example` })
  t.equal(warnings(logs).length, 5, 'at most five hosts named, however many are sent')
})
