import t from 'tap'
import type { KVStore } from '../../src/token-store/kv-store.js'
import { CSRF, apiStatus, deferred, internals, list, signIn, stackOn } from '../helpers/user-sessions-stack.js'

// "Sign out everywhere" (or endUserSessions) while another device's callback is in progress. The callback indexed
// its session first and stored its token set after: when the index entry was ended and dropped in between, the
// token set and the record were stored anyway (plain SETs), a signed-in session in no index that no listing showed
// and no later "sign out everywhere" ended. The pauses below stand for latency on one write (Redis slow, a GC pause).

// Held: the token-set write (before the session is indexed), or the answer of the index write (indexed, the record
// not saved yet): either way the outcome must be a session that is ended, or indexed and endable.
const HOLDS = {
  'the token set written': (kv: KVStore, hold: () => Promise<void>) => {
    const set = kv.set.bind(kv)
    let armed = true
    ;(kv as { set: KVStore['set'] }).set = async (key, value, ttl) => {
      if (armed && key.endsWith('}:tok')) {
        armed = false
        await hold()
      }
      return await set(key, value, ttl)
    }
  },
  'the session indexed': (kv: KVStore, hold: () => Promise<void>) => {
    const hashSet = kv.hashSet.bind(kv)
    let armed = true
    ;(kv as { hashSet: KVStore['hashSet'] }).hashSet = async (key, field, value, ttl) => {
      const count = await hashSet(key, field, value, ttl)
      if (armed) {
        armed = false
        await hold()
      }
      return count
    }
  }
}

for (const backend of ['memory', 'redis'] as const) {
  for (const [held, holdOn] of Object.entries(HOLDS)) {
    t.test(`a sign-in that was ended while in progress (${held}) stays ended, or stays endable [${backend}]`, async (t) => {
      const stack = await stackOn(t, backend)
      if (stack === undefined) return
      const laptop = await signIn(stack, 'laptop')

      // Hold the phone's callback at that point until released.
      const { kv } = internals(stack)
      const paused = deferred()
      const release = deferred()
      holdOn(kv, async () => { paused.resolve(); await release.promise })
      const phoneSignIn = signIn(stack, 'phone')
      await paused.promise

      const everywhere = await laptop.post(`${stack.url}/auth/logout?everywhere=1`, CSRF)
      t.equal(everywhere.status, 204, 'the laptop signed out everywhere')
      release.resolve()
      const phone = await phoneSignIn
      const phoneSid = stack.sessionIdOf(phone)

      const phoneLive = await apiStatus(stack, phone) === 200
      const owner = await stack.app.tokenStore.sessionOwner(phoneSid)
      t.ok(!phoneLive || owner !== null, `the phone's session is either ended or indexed (live: ${phoneLive}, indexed: ${owner !== null})`)
      if (held === 'the session indexed') t.notOk(phoneLive, 'indexed before the laptop signed out everywhere: ended')

      // What it means for the user: a new device lists its sessions and signs out everywhere; the phone goes on.
      const tablet = await signIn(stack, 'tablet')
      const listed = await list(stack, tablet)
      t.same(listed.map((s) => s.userAgent).sort(), phoneLive ? ['phone', 'tablet'] : ['tablet'], 'the tablet lists every live session of the user')
      t.equal((await tablet.post(`${stack.url}/auth/logout?everywhere=1`, CSRF)).status, 204)
      t.equal(await apiStatus(stack, phone), 401, 'after the tablet signed out everywhere, the phone is signed out')
    })
  }
}
