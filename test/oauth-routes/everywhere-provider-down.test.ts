import t from 'tap'
import { CSRF, apiStatus, signIn, stackOn, unindex } from '../helpers/user-sessions-stack.js'

// "sign out everywhere" from a session its user's index lacks asks userinfo who the user is;
// when the provider does not answer, the request fails and NOTHING ends: not even this device's own session, which
// a plain sign-out would have ended without the provider. Before the change the same request signed this device
// out (and answered 204). A user leaving a shared computer after "sign out everywhere" stays signed in there.

t.test('sign out everywhere while userinfo fails: this device is at least signed out', async (t) => {
  const stack = await stackOn(t, 'memory')
  if (stack === undefined) return
  const laptop = await signIn(stack, 'laptop')
  t.ok(await stack.app.tokenStore.sessionOwner(stack.sessionIdOf(laptop)) !== null, 'indexed at first')
  await unindex(stack, laptop)

  stack.mock.setFault('userinfo', 'http503', { times: 5 })
  const res = await laptop.post(`${stack.url}/auth/logout?everywhere=1`, CSRF)
  t.comment(`POST /auth/logout?everywhere=1: ${res.status} ${res.body}`)
  stack.mock.setFault('userinfo', null)
  t.equal(await apiStatus(stack, laptop), 401, 'this device is signed out')
})
