import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// The security rules for a successful callback, and for the token endpoint's answer (granted scopes).

const CSRF = { 'x-csrf': '1' }

t.test('the pre-login session is destroyed in the store at login', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  // Anonymous visitors have no session: the session a browser holds when it signs in is one from before (here a
  // sign-in of its own; a planted one goes the same way).
  const { browser } = await stack.login()
  const preLoginSid = stack.sessionIdOf(browser)
  const stored = await new Promise((resolve, reject) => stack.app.tokenStore.sessionStore.get(preLoginSid, (err, s) => err ? reject(err) : resolve(s)))
  t.ok(stored, 'the pre-login session exists')
  t.ok(await stack.app.tokenStore.get(preLoginSid), 'with a token set')
  const start = await browser.get(`${stack.url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  const done = await browser.get(TestBrowser.location(back))
  t.equal(done.status, 302)
  t.not(stack.sessionIdOf(browser), preLoginSid)
  const gone = await new Promise((resolve, reject) => stack.app.tokenStore.sessionStore.get(preLoginSid, (err, s) => err ? reject(err) : resolve(s)))
  t.notOk(gone, 'the pre-login session id no longer exists')
  t.equal(await stack.app.tokenStore.get(preLoginSid), null, 'and holds no token set')
})

t.test('the scopes actually granted are stored and used', async (t) => {
  const stack = await startStack({ env: { AIHUBMIX_SCOPE: 'profile' } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const session = JSON.parse((await browser.get(`${stack.url}/auth/session`)).body)
  t.same(session.scope, ['profile'])
  const info = JSON.parse((await browser.get(`${stack.url}/api/user/info`, CSRF)).body)
  t.equal(info.username, 'user123')
  t.notOk('balance_formatted' in info, 'no balance without the balance scope')
  const topup = await browser.get(`${stack.url}/api/user/topup`, CSRF)
  t.equal(topup.status, 403)
  t.same(JSON.parse(topup.body).error, 'insufficient_scope')
})
