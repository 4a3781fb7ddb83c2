import t from 'tap'
import { TestBrowser } from '../helpers/browser.js'
import { composeReadmeApp, providerForPort } from '../helpers/readme-composition.js'

// oauth-routes' README: idleTimeoutMs "a signed-in session unused this long ends"; its "last seen" stamp is written
// at most every tenth of it. The README's own composition sets no cookie maxAge, so the session record lives
// token-store's sessionTtlMs (24 h by default) from its last write. With a two-week idle timeout the stamp (the only
// write) was due every 1.4 days: the record of a user active all along ran out first. Now the stamp is due at least
// every half of sessionTtlMs, and the start warns that such an idle timeout is cut to sessionTtlMs.

const HOUR = 3600_000

t.test('a session used every few hours outlives sessionTtlMs when the idle timeout is longer', async (t) => {
  const realNow = Date.now
  let offset = 0
  Date.now = () => realNow() + offset
  t.teardown(() => { Date.now = realNow })

  const { port, url, provider } = await providerForPort(t, 'idle')
  const logs: string[] = []
  const app = await composeReadmeApp({
    logs,
    port,
    provider,
    secret: 's'.repeat(40),
    oauth: { idleTimeoutMs: 14 * 24 * HOUR, absoluteTimeoutMs: 30 * 24 * HOUR }
  })
  t.teardown(() => app.close())
  const warnings = logs.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((l) => l.level === 40).map((l) => l.msg)
  t.same(warnings, ['oauth-routes: idleTimeoutMs (1209600000 ms) is longer than token-store\'s sessionTtlMs (86400000 ms), how long a session ' +
    'record lives after its last write: a session idle that long ends with its record. Fix: give token-store a sessionTtlMs of at least idleTimeoutMs'],
  'one warning at start, naming the fix')

  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  t.equal((await browser.get(TestBrowser.location(back))).status, 302, 'signed in')

  // The user comes back every 6 hours, on the page (a @fastify/session route) and the API.
  const seen: string[] = []
  for (let hours = 6; hours <= 48; hours += 6) {
    offset = hours * HOUR
    const session = JSON.parse((await browser.get(`${url}/auth/session`)).body) as { authenticated: boolean }
    const info = await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })
    seen.push(`+${hours}h: session ${String(session.authenticated)}, /api ${info.status}`)
  }
  t.comment(seen.join('\n'))
  t.same(seen, Array.from({ length: 8 }, (_, i) => `+${(i + 1) * 6}h: session true, /api 200`), 'signed in all along')
})
