import t from 'tap'
import type { StoredTokenSet } from '../../src/token-store/token-store.js'
import { buildApp, countingRefresher, kvOf, sid, sleep, tokenSet } from '../helpers/token-store.js'

// Storing a refreshed set is a compare-and-set against the marked value read under the lock; a stamp of this
// process's own mark applied late (its reply lost in a stall) changes that value, and the save tries again against
// it, a bounded number of times. When the value was still this process's mark after the last attempt, the save took
// it for someone else's newer set: the refreshed set, with the only copy of the rotated refresh token, was dropped,
// the caller got the old set, and the next refresh would present a refresh token the provider had rotated away.

interface Opener { open: (sid: string, sealed: string | null) => Promise<StoredTokenSet | null>, keys: { tokens: (sid: string) => string } }

t.test('a save that keeps meeting late stamps of its own mark keeps the refreshed set and stores it, never takes the mark for a newer set', async (t) => {
  // A short fence: the mark is stamped anew every 100 ms while the refresh is at the provider.
  const app = await buildApp(t, { refreshFenceMs: 300 })
  const store = app.tokenStore as unknown as Opener
  const kv = kvOf(app.tokenStore)
  const id = sid()
  const old = tokenSet({ expiresInMs: -1000 })
  await app.tokenStore.save(id, old)
  const key = store.keys.tokens(id)

  // Every mark this process writes, as the store received it.
  const marks: string[] = []
  let lateStamps = 0
  const compareAndSet = kv.compareAndSet.bind(kv)
  kv.compareAndSet = async (k, expected, value, ttlMs) => {
    const opened = k === key ? await store.open(id, value) : null
    if (opened?.presented !== undefined) marks.push(value)
    else if (opened !== null && opened.set.refreshToken !== old.refreshToken && lateStamps < 3 && marks.length >= 2) {
      // The refreshed set's save: just before it, an earlier stamp of the mark lands (another value than the one held).
      const held = await kv.get(key)
      await kv.set(key, marks.find((mark) => mark !== held) as string, 60_000)
      lateStamps++
    }
    return await compareAndSet(k, expected, value, ttlMs)
  }

  const next = tokenSet()
  // At the provider until the mark has been stamped anew at least once.
  const refresher = countingRefresher({ before: async () => { while (marks.length < 2) await sleep(20) }, answer: () => next })
  const got = await app.tokenStore.getFresh(id, refresher.refresh)
  t.ok(marks.length >= 2, `the mark was stamped anew during the refresh (${marks.length} marks)`)
  t.equal(lateStamps, 3, 'three late stamps, one before each attempt of the save')
  t.same(got, next, 'the caller got the refreshed set, not the old one under its mark')
  let stored = await app.tokenStore.get(id)
  for (let i = 0; i < 50 && stored?.accessToken !== next.accessToken; i++) {
    await sleep(100)
    stored = await app.tokenStore.get(id)
  }
  t.same(stored, next, 'then stored, once the late stamps were over')
  t.same(refresher.calls, [old.refreshToken], 'one refresh')
})
