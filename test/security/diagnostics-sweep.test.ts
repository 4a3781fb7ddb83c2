import t from 'tap'
import { startStack, findLeaks } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import { reachableStrings, recordDiagnostics } from '../helpers/diagnostics.js'

// Issue 19: no token, code, secret, session id or e-mail in any diagnostics message. Every channel of the plugins
// is listened to (every event of the TracingChannels) through sign-ins (redirect and popup), a failed code
// exchange, API calls, a forced refresh, provider faults, a refused refresh and a sign-out; then everything a
// subscriber can reach from each message (the publishing store and client included) is swept.

const CSRF = { 'x-csrf': '1' }

t.test('no diagnostics message carries a token, a code, a secret, a session id or an e-mail', async (t) => {
  const recorded = recordDiagnostics(t)
  const stack = await startStack({ proxy: { timeoutMs: 300 }, env: { LOG_LEVEL: 'trace' } })
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const states: string[] = []
  const sessionIds: string[] = []
  const cookies: string[] = []
  const keep = (): void => {
    sessionIds.push(stack.sessionIdOf(browser))
    cookies.push(browser.cookies.get(stack.url)?.get('sid') as string)
  }

  for (const mode of ['redirect', 'popup']) {
    const start = await browser.get(`${stack.url}/auth/login?mode=${mode}`)
    states.push(new URL(TestBrowser.location(start)).searchParams.get('state') as string)
    const back = await browser.get(TestBrowser.location(start))
    await browser.get(TestBrowser.location(back))
    keep()
  }
  // A callback with a code the provider never issued, for a state this browser started.
  const forged = await browser.get(`${stack.url}/auth/login`)
  states.push(new URL(TestBrowser.location(forged)).searchParams.get('state') as string)
  await browser.get(`${stack.url}/auth/callback?code=code_leakcanary_forged&state=${states[2] as string}`)
  await browser.get(`${stack.url}/api/user/info`, CSRF)
  await browser.get(`${stack.url}/api/user/topup`, CSRF)
  stack.mock.expireAccessTokens() // a forced refresh after the provider's 401
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  stack.mock.setFault('userinfo', 'http500', { times: 1 })
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 502)
  stack.mock.setFault('topup', 'hang', { times: 1 })
  t.equal((await browser.get(`${stack.url}/api/user/topup`, CSRF)).status, 504)
  await browser.post(`${stack.url}/auth/logout`, CSRF)

  // A second user whose grant the provider revokes: the refresh is refused for good.
  const { browser: other } = await stack.login()
  sessionIds.push(stack.sessionIdOf(other))
  cookies.push(other.cookies.get(stack.url)?.get('sid') as string)
  stack.mock.revokeGrants()
  stack.mock.expireAccessTokens()
  t.equal((await other.get(`${stack.url}/api/user/info`, CSRF)).status, 401)

  const channels = new Set(recorded.map((r) => r.channel))
  for (const channel of ['aihubmix:login', 'aihubmix:upstream:asyncEnd', 'aihubmix:upstream:error', 'aihubmix:refresh:asyncEnd', 'aihubmix:refresh:error', 'aihubmix:refresh-lock-wait']) {
    t.ok(channels.has(channel), `${channel} was published to`)
  }
  t.same(recorded.filter((r) => r.channel === 'aihubmix:login').map((r) => r.message.outcome), ['ok', 'ok', 'token_exchange_failed', 'ok'])
  const refreshes = recorded.filter((r) => r.channel === 'aihubmix:refresh:asyncEnd').map((r) => r.message.outcome)
  t.same(refreshes, ['ok', 'rejected'], 'one refresh answered, one refused')

  const issued = stack.mock.issued()
  t.ok(issued.accessTokens.length >= 4 && issued.refreshTokens.length >= 4 && issued.codes.length >= 3, 'the sweep has something to look for')
  const haystack = recorded.flatMap((r) => reachableStrings(r.message))
  t.ok(haystack.length > recorded.length, 'the sweep reads every message')
  const secrets = [...stack.secrets(), 'code_leakcanary_forged', ...states, ...sessionIds, ...cookies, stack.mock.user.email as string]
  t.same(findLeaks(secrets, haystack), [], 'nothing secret or personal is reachable from any message')
})
