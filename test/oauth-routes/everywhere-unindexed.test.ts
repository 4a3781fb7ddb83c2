import t from 'tap'
import { StoreUnavailableError } from '@fastify-aihubmix/token-store'
import type { KVStore } from '../../src/token-store/kv-store.js'
import { CSRF, apiStatus, internals, signIn, stackOn, unindex } from '../helpers/user-sessions-stack.js'

// POST /auth/logout?everywhere=1 from a signed-in session that its user's index lacks (the README's "signed in
// before this version, or its entry evicted": GET /auth/sessions re-indexes such a session with one userinfo call).
// "Sign out everywhere" must still end every session of the user; it ended only the current one and answered 204.
// Now the user is who userinfo says.

/** Every delete of the store fails (Redis gone at that moment) while `fail` is true. */
function failDeletes (kv: KVStore): { fail: boolean } {
  const del = kv.delete.bind(kv)
  const switched = { fail: true }
  ;(kv as { delete: typeof kv.delete }).delete = async (keys) => {
    if (switched.fail) throw new StoreUnavailableError({ cause: new Error('connection lost (injected)') })
    return await del(keys)
  }
  return switched
}

for (const backend of ['memory', 'redis'] as const) {
  t.test(`logout everywhere from an unindexed session ends the user's other sessions [${backend}]`, async (t) => {
    const stack = await stackOn(t, backend)
    if (stack === undefined) return
    const laptop = await signIn(stack, 'laptop')
    const phone = await signIn(stack, 'phone')
    t.equal(await apiStatus(stack, phone), 200, 'the phone is signed in')

    // The laptop's session as one signed in before sessions were indexed: no link, no entry.
    t.ok(await stack.app.tokenStore.sessionOwner(stack.sessionIdOf(laptop)) !== null, 'indexed at first')
    await unindex(stack, laptop)
    t.equal(await apiStatus(stack, laptop), 200, 'the laptop is signed in')

    const res = await laptop.post(`${stack.url}/auth/logout?everywhere=1`, CSRF)
    t.equal(res.status, 204, 'sign out everywhere answered 204')
    t.equal(await apiStatus(stack, laptop), 401, 'the laptop is signed out')
    t.equal(await apiStatus(stack, phone), 401, 'the phone (same user) must be signed out too')
  })
}

// The same precondition reached through a fault the project knows (a logout during a store outage answers 503 and
// keeps the cookie): endSession took the session's link (GETDEL) and deleted its keys in parallel; when the delete
// failed after the link was taken, the session stayed signed in without a link (now the link is taken after the
// delete). The user then signs out everywhere.
for (const backend of ['memory', 'redis'] as const) {
  t.test(`a logout that failed with 503 leaves a session that "sign out everywhere" cannot reach [${backend}]`, async (t) => {
    const stack = await stackOn(t, backend)
    if (stack === undefined) return
    const laptop = await signIn(stack, 'laptop')
    const phone = await signIn(stack, 'phone')

    const deletes = failDeletes(internals(stack).kv)
    const out = await laptop.post(`${stack.url}/auth/logout`, CSRF)
    deletes.fail = false
    t.equal(out.status, 503, 'the logout met the outage (known: 503, cookie kept)')
    t.equal(await apiStatus(stack, laptop), 200, 'the laptop is still signed in')

    t.equal((await laptop.post(`${stack.url}/auth/logout?everywhere=1`, CSRF)).status, 204, 'then: sign out everywhere, 204')
    t.equal(await apiStatus(stack, laptop), 401)
    t.equal(await apiStatus(stack, phone), 401, 'the phone (same user) must be signed out too')
  })
}

// And the listing: after that failed logout, the laptop's first listing re-indexes it under a new handle while the
// old entry (which still names the same session) stays: the laptop is listed twice, once as "another device".
t.test('after a failed logout the listing shows the same session twice [memory]', async (t) => {
  const stack = await stackOn(t, 'memory')
  if (stack === undefined) return
  const laptop = await signIn(stack, 'laptop')
  await signIn(stack, 'phone')
  const deletes = failDeletes(internals(stack).kv)
  t.equal((await laptop.post(`${stack.url}/auth/logout`, CSRF)).status, 503)
  deletes.fail = false
  const res = await laptop.get(`${stack.url}/auth/sessions`, { 'user-agent': 'laptop' })
  const listed = (JSON.parse(res.body) as { sessions: Array<{ userAgent: string, current: boolean }> }).sessions
  t.same(listed.map((s) => `${s.userAgent}${s.current ? ' (current)' : ''}`).sort(), ['laptop (current)', 'phone'], 'two devices, each listed once')
})
