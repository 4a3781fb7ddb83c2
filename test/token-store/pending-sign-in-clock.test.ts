import t from 'tap'
import type { TokenStore } from '@fastify-aihubmix/token-store'
import { buildApp, forEachBackend, sid as newSid, tokenSet } from '../helpers/token-store.js'

// user-sessions.ts stamped an index entry's "indexed at" with performance.timeOrigin + performance.now() (a clock
// that follows the monotonic clock from the process' start) and judged "a sign-in in progress" (PENDING_SIGN_IN_MS,
// one minute) against Date.now(); now by the wall clock on both sides (the entry's `w`). The two part when the wall clock is stepped after the process started (NTP step,
// a VM resumed after suspend: CLOCK_MONOTONIC does not count the suspend) or between instances. Stepped forward by
// more than a minute, every sign-in looked a minute old the moment it was indexed: a listing on another device, or
// the sign-in's own trim, ended it and dropped its entry. The steps below are the callback's as it was (indexed,
// then its token set and record stored): they show the listing no longer ends a sign-in in progress.

const HOUR = 3600_000

function putRecord (store: TokenStore, sid: string): Promise<void> {
  return new Promise((resolve, reject) => {
    store.sessionStore.set(sid, { cookie: { expires: new Date(Date.now() + HOUR).toISOString() }, aihubmixAuth: { at: Date.now() } }, (err) => {
      if (err) reject(err)
      else resolve()
    })
  })
}

forEachBackend(t, 'a listing made while another device signs in does not end that sign-in (wall clock stepped 5 min ahead)', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const realNow = Date.now
  Date.now = () => realNow() + 5 * 60_000 // the wall clock was stepped forward after this process started
  t.teardown(() => { Date.now = realNow })

  const laptop = newSid()
  await store.addUserSession('12345', laptop, { userAgent: 'laptop', ttlMs: HOUR })
  await store.save(laptop, tokenSet())
  await putRecord(store, laptop)

  // The phone's callback, step by step as oauth-routes makes it: indexed first ...
  const phone = newSid()
  await store.addUserSession('12345', phone, { userAgent: 'phone', ttlMs: HOUR })
  // ... meanwhile the laptop opens its sessions page ...
  await store.listUserSessions('12345')
  // ... then the phone's callback stores its token set and its record.
  await store.save(phone, tokenSet())
  await putRecord(store, phone)

  t.not(await store.sessionOwner(phone), null, 'the phone\'s session is still indexed')
  t.same((await store.listUserSessions('12345')).map((s) => s.userAgent).sort(), ['laptop', 'phone'], 'and listed')
  t.equal(await store.endUserSessions('12345'), 2, 'and "sign out everywhere" ends both')
  t.equal(await store.get(phone), null, 'the phone\'s token set is gone')
})

// During a rolling deploy, an instance of the earlier version signs in as it did: @fastify/session's regenerate()
// stores the new, empty record at once, the session is indexed, then its token set is stored. Meanwhile another device
// signs in on an instance of this version, whose sign-in tidies the user's index: it read the record without a token
// set as a session that had ended, and ended it (the earlier callback then answered "signed in" for a session that
// was not). An entry younger than PENDING_SIGN_IN_MS whose record or token set is missing is a sign-in in progress.
forEachBackend(t, 'a sign-in indexed before its token set is stored (an earlier version\'s order) survives another device\'s sign-in', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const laptop = newSid()
  await store.addUserSession('12345', laptop, { userAgent: 'laptop', ttlMs: HOUR })
  await store.save(laptop, tokenSet())
  await putRecord(store, laptop)

  // The earlier version's callback: the record (regenerate), then the index ...
  const old = newSid()
  await putRecord(store, old)
  await store.addUserSession('12345', old, { userAgent: 'old', ttlMs: HOUR })
  // ... meanwhile the phone signs in on this version (token set, then index: the index is tidied) ...
  const phone = newSid()
  await store.save(phone, tokenSet())
  await store.addUserSession('12345', phone, { userAgent: 'phone', ttlMs: HOUR })
  await putRecord(store, phone)
  // ... then the earlier callback stores its token set.
  await store.save(old, tokenSet())

  t.not(await store.sessionOwner(old), null, 'the earlier version\'s sign-in is still indexed')
  t.not(await store.get(old), null, 'and has its token set')
  t.same((await store.listUserSessions('12345')).map((s) => s.userAgent).sort(), ['laptop', 'old', 'phone'], 'all three listed')
})
