import t from 'tap'
import { CSRF, signIn, unindex } from '../helpers/user-sessions-stack.js'
import { keyedStack } from '../helpers/stored-keys.js'

// A listing from a session its user's index lacks asks userinfo who the user is, then indexes the session. A logout
// (another tab) that ended the session meanwhile left that index entry and link behind, for the absolute timeout.

t.test('a logout while a listing indexes the session leaves nothing of it behind', async (t) => {
  const keyed = await keyedStack(t, 'memory')
  if (keyed === undefined) return
  const { stack, keys } = keyed
  const other = await signIn(stack, 'other device')
  const browser = await signIn(stack, 'this device')
  const sid = stack.sessionIdOf(browser)
  await unindex(stack, browser)
  stack.mock.setLatency('userinfo', 300)
  const listing = browser.get(`${stack.url}/auth/sessions`, CSRF)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await browser.post(`${stack.url}/auth/logout`, CSRF)).status, 204, 'signed out in another tab')
  t.equal((await listing).status, 401, 'the listing answers that this session is signed out')
  stack.mock.setLatency('userinfo', 0)
  t.same((await keys()).filter((k) => k.includes(sid)), [], 'nothing of the ended session is left')
  const listed = JSON.parse((await other.get(`${stack.url}/auth/sessions`, CSRF)).body).sessions as unknown[]
  t.equal(listed.length, 1, 'the other device lists only itself')
})
