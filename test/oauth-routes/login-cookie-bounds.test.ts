import t from 'tap'
import { MAX_PENDING_LOGINS, MAX_PENDING_RETURN_TO_LENGTH } from '@fastify-aihubmix/oauth-routes'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// A browser holds a bounded number of pending logins, each of bounded size: the callback's Cookie header
// stays far below Node's 16 KB header limit however often the sign-in button is pressed.

const CSRF = { 'x-csrf': '1' }

function loginCookies (browser: TestBrowser, url: string): string[] {
  return (browser.cookieHeader(url) ?? '').split('; ').filter((c) => c.startsWith('aihubmix-login-'))
}

t.test('a browser keeps a handful of pending logins at most: the oldest are dropped, the newest all finish', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const callbacks: string[] = []
  for (let i = 0; i < MAX_PENDING_LOGINS + 3; i++) {
    const start = await browser.get(`${stack.url}/auth/login?returnTo=/tab${i}`)
    const back = await browser.get(TestBrowser.location(start))
    callbacks.push(TestBrowser.location(back))
    t.ok(loginCookies(browser, `${stack.url}/auth/callback`).length <= MAX_PENDING_LOGINS, `after ${i + 1} logins`)
  }
  t.equal(loginCookies(browser, `${stack.url}/auth/callback`).length, MAX_PENDING_LOGINS)
  t.equal(loginCookies(browser, `${stack.url}/auth/login`).length, 0, 'login cookies are sent to the callback only')
  t.equal(browser.cookieHeader(`${stack.url}/api/user/info`), undefined, 'and not to the API')

  // Finished in reverse order, as tabs do: the three oldest were dropped, the others each finish on their own.
  const results: string[] = []
  for (let i = callbacks.length - 1; i >= 0; i--) results.unshift(String((await browser.get(callbacks[i] as string)).headers.location))
  t.same(results, [
    '/?error=invalid_state', '/?error=invalid_state', '/?error=invalid_state',
    ...Array.from({ length: MAX_PENDING_LOGINS }, (_, i) => `/tab${i + 3}`)
  ])
  t.equal(stack.mock.counts().grants.authorization_code, MAX_PENDING_LOGINS, 'no token call for a dropped login')
  t.equal(loginCookies(browser, `${stack.url}/auth/callback`).length, 0, 'every finished login cleared its cookie')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
})

t.test('a pending login\'s cookie is small whatever returnTo is; a returnTo too long to carry falls back', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const longest = '/' + 'a'.repeat(MAX_PENDING_RETURN_TO_LENGTH - 1)
  for (let i = 0; i < MAX_PENDING_LOGINS; i++) await browser.get(`${stack.url}/auth/login?returnTo=${longest}`)
  const header = browser.cookieHeader(`${stack.url}/auth/callback`) as string
  for (const cookie of loginCookies(browser, `${stack.url}/auth/callback`)) t.ok(cookie.length <= 1024, `${cookie.length} characters`)
  t.ok(header.length < 6 * 1024, `the callback's Cookie header with ${MAX_PENDING_LOGINS} logins of the longest returnTo: ${header.length} characters`)

  const kept = await stack.login({ returnTo: longest })
  t.equal(kept.final.headers.location, longest, `a returnTo of ${MAX_PENDING_RETURN_TO_LENGTH} characters is carried`)
  const dropped = await stack.login({ returnTo: longest + 'a' })
  t.equal(dropped.final.headers.location, '/', 'one more character: the default')
})
