import t from 'tap'
import type { LoginEvent, LogoutEvent } from '@fastify-aihubmix/oauth-routes'
import { startStack } from '../helpers/stack.js'

t.test('onLogin gets the userinfo and the granted scopes; onLogout runs at logout', async (t) => {
  const logins: Array<Omit<LoginEvent, 'request'> & { hasRequest: boolean }> = []
  const logouts: LogoutEvent[] = []
  const stack = await startStack({
    oauth: {
      onLogin: ({ request, userinfo, scope }) => { logins.push({ userinfo, scope, hasRequest: typeof request.id === 'string' }) },
      onLogout: (event) => { logouts.push(event) }
    }
  })
  t.teardown(() => stack.close())
  const { browser, final } = await stack.login()
  t.equal(final.status, 302)
  t.equal(logins.length, 1)
  t.equal(logins[0]?.userinfo?.username, 'user123')
  t.same(logins[0]?.scope, ['profile', 'balance'])
  t.equal(logins[0]?.hasRequest, true)
  t.equal((await browser.post(`${stack.url}/auth/logout`, { 'x-csrf': '1' })).status, 204)
  t.equal(logouts.length, 1)
})

t.test('a failing hook never breaks the login', async (t) => {
  const stack = await startStack({
    oauth: {
      onLogin: () => { throw new Error('hook exploded') },
      onLogout: async () => { throw new Error('logout hook exploded') }
    }
  })
  t.teardown(() => stack.close())
  const { browser, final } = await stack.login()
  t.equal(final.headers.location, '/', 'signed in all the same')
  t.equal((await browser.get(`${stack.url}/api/user/info`, { 'x-csrf': '1' })).status, 200)
  t.equal((await browser.post(`${stack.url}/auth/logout`, { 'x-csrf': '1' })).status, 204)
  t.ok(stack.logs.some((l) => l.includes('onLogin hook failed')))
  t.ok(stack.logs.some((l) => l.includes('onLogout hook failed')))
})
