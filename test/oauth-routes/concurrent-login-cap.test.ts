import t from 'tap'
import { MAX_PENDING_LOGINS, MAX_PENDING_RETURN_TO_LENGTH } from '@fastify-aihubmix/oauth-routes'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// oauth-routes' README: "at most MAX_PENDING_LOGINS (5) per browser: a sixth login expires the oldest", and
// test/oauth-routes/login-cookie-bounds.test.ts: "the callback's Cookie header stays far below Node's 16 KB header
// limit however often the sign-in button is pressed". Here the logins start at the same moment (tabs restored
// together, a page that sends every tab to /auth/login on a 401, or a same-site page firing <img> requests): each
// /auth/login reads the same index cookie, so none of them expired the others, and the browser held one cookie per
// login: the callback (and under https, with Path=/, every request) answered 431. Now a login's cookie is one of
// ten names (twice MAX_PENDING_LOGINS: logins started together pick free ones at random, and seldom the same), and a
// sequential login beyond MAX_PENDING_LOGINS expires the oldest.

const N = 24

function loginCookies (browser: TestBrowser, url: string): string[] {
  return (browser.cookieHeader(url) ?? '').split('; ').filter((c) => c.startsWith('aihubmix-login-'))
}

t.test('logins started together stay within the cap, and the last one can still finish', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  // A long (but accepted) returnTo, as a deep link carries.
  const returnTo = '/' + 'a'.repeat(MAX_PENDING_RETURN_TO_LENGTH - 1)
  const starts = await Promise.all(Array.from({ length: N }, async () =>
    await browser.get(`${stack.url}/auth/login?returnTo=${encodeURIComponent(returnTo)}`)))
  t.ok(starts.every((s) => s.status === 302), 'every login started')
  const held = loginCookies(browser, `${stack.url}/auth/callback`)
  t.comment(`login cookies held: ${held.length}, Cookie header to the callback: ${(browser.cookieHeader(`${stack.url}/auth/callback`) ?? '').length} bytes`)
  t.ok(held.length <= 2 * MAX_PENDING_LOGINS, `at most ${2 * MAX_PENDING_LOGINS} login cookies in the browser (got ${held.length})`)
  const header = (browser.cookieHeader(`${stack.url}/auth/callback`) ?? '').length
  t.ok(header < 10 * 1024, `the callback's Cookie header stays under 10 KB (${header} bytes)`)

  // The user finishes the sign-in in a tab whose login still has its cookie (logins started at the same moment may
  // replace one another in a slot: those answer invalid_state, and the callback answers every one of them).
  const outcomes: string[] = []
  for (const start of starts) {
    const back = await browser.get(TestBrowser.location(start))
    const done = await browser.get(TestBrowser.location(back))
    t.equal(done.status, 302, 'the callback answers')
    outcomes.push(String(done.headers.location))
  }
  t.comment(`${outcomes.filter((o) => o === returnTo).length} of ${N} finished`)
  t.ok(outcomes.includes(returnTo), 'a sign-in finishes')
  t.same(outcomes.filter((o) => o !== returnTo && o !== '/?error=invalid_state'), [], 'the others are invalid_state')
})

t.test('https (login cookies on Path=/): logins started together do not lock a signed-in browser out of the site', async (t) => {
  // Under https every login cookie is `__Host-…; Path=/`, sent with every request to the app. A page of a sibling
  // host (same site, so SameSite=Lax lets the answers set cookies) can start the logins with a few <img> requests.
  const stack = await startStack({ env: { PUBLIC_URL: 'https://app.example' } })
  t.teardown(() => stack.close())
  const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example' }
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login`, viaProxy)
  const back = new URL(TestBrowser.location(await browser.get(TestBrowser.location(start))))
  t.equal((await browser.get(`${stack.url}${back.pathname}${back.search}`, viaProxy)).status, 302, 'signed in')
  t.equal((await browser.get(`${stack.url}/api/user/info`, { ...viaProxy, 'x-csrf': '1' })).status, 200)

  const returnTo = encodeURIComponent('/' + 'a'.repeat(MAX_PENDING_RETURN_TO_LENGTH - 1))
  await Promise.all(Array.from({ length: N }, async () => await browser.get(`${stack.url}/auth/login?returnTo=${returnTo}`, viaProxy)))
  const held = (browser.cookieHeader(`${stack.url}/api/user/info`) ?? '').split('; ').filter((c) => c.startsWith('__Host-aihubmix-login-'))
  t.comment(`login cookies sent with every request: ${held.length}`)
  t.ok(held.length <= 2 * MAX_PENDING_LOGINS, `at most ${2 * MAX_PENDING_LOGINS} login cookies (got ${held.length})`)
  const info = await browser.get(`${stack.url}/api/user/info`, { ...viaProxy, 'x-csrf': '1' })
  t.equal(info.status, 200, `the signed-in user's API call still answers (got ${info.status})`)
  const session = await browser.get(`${stack.url}/auth/session`, viaProxy)
  t.equal(session.status, 200, `and the page's session check (got ${session.status})`)
})
