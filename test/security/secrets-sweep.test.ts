import t from 'tap'
import { startStack, findLeaks } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// Secrets: seeded, recognisable tokens and secrets (the mock's `leakcanary` prefix),
// codes, verifiers' states and raw session ids appear in no response, header, Location, cookie,
// log line or served asset. The example logs at trace here: every line it can write is swept.

const CSRF = { 'x-csrf': '1' }

t.test('a full session leaves no secret anywhere the outside can see', async (t) => {
  const stack = await startStack({ env: { LOG_LEVEL: 'trace' } })
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const states: string[] = []
  const sessionIds: string[] = []

  for (const mode of ['redirect', 'popup']) {
    const start = await browser.get(`${stack.url}/auth/login?mode=${mode}`)
    states.push(new URL(TestBrowser.location(start)).searchParams.get('state') as string)
    // Signed out, the browser has no session; the second login starts signed in.
    if (browser.cookieHeader(stack.url) !== undefined) sessionIds.push(stack.sessionIdOf(browser))
    const back = await browser.get(TestBrowser.location(start))
    await browser.get(TestBrowser.location(back))
    sessionIds.push(stack.sessionIdOf(browser))
  }
  await browser.get(`${stack.url}/auth/session`)
  await browser.get(`${stack.url}/api/user/info`, CSRF)
  await browser.get(`${stack.url}/api/user/topup`, CSRF)
  stack.mock.expireAccessTokens() // forces a refresh: new tokens, all of them swept too
  await browser.get(`${stack.url}/api/user/info`, CSRF)
  const page = await browser.get(`${stack.url}/`)
  // The page's script and style, at the names it gives them.
  const assets = [...page.body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string)
  t.equal(assets.length, 2, 'the page names its script and style')
  for (const asset of assets) t.equal((await browser.get(`${stack.url}${asset}`)).status, 200, asset)
  // Failures log too.
  stack.mock.setFault('userinfo', 'http500', { times: 1 })
  await browser.get(`${stack.url}/api/user/info`, CSRF)
  await browser.get(`${stack.url}/auth/callback?code=code_leakcanary_forged&state=${states[0] as string}`)
  await browser.post(`${stack.url}/auth/logout`, CSRF)

  const issued = stack.mock.issued()
  t.ok(issued.accessTokens.length >= 3 && issued.refreshTokens.length >= 3 && issued.codes.length >= 2, 'the sweep has something to look for')
  const appAnswers = browser.transcript(stack.url)
  t.same(findLeaks(stack.secrets(), appAnswers), [], 'no token, code or secret in any answer of the app')
  t.same(findLeaks([...stack.secrets(), 'code_leakcanary_forged'], stack.logs), [], 'none in any log line')
  t.same(findLeaks(states, stack.logs), [], 'no state in any log line')
  t.same(findLeaks(sessionIds, stack.logs), [], 'no raw session id in any log line')
  // Every body, JSON ones included; every header but the session cookie's Set-Cookie, which carries the id signed.
  const answers = browser.answers.filter((a) => new URL(a.url).origin === stack.url)
  t.ok(answers.some((a) => a.body.startsWith('{"')), 'JSON bodies among them')
  t.same(findLeaks(sessionIds, answers.map((a) => a.body)), [], 'no raw session id in any body')
  const headers = answers.map((a) => JSON.stringify({ ...a.headers, 'set-cookie': undefined }))
  t.same(findLeaks(sessionIds, headers), [], 'no raw session id in any header but the session cookie')
  t.ok(stack.logs.some((line) => line.includes('[REDACTED]')), 'logs show where values were redacted')
})
