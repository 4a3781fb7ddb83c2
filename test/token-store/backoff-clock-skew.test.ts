import t from 'tap'
import type { Redis } from 'ioredis'
import { RefreshBackoffError } from '@fastify-aihubmix/token-store'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { buildApp, countingRefresher, sid, sleep, tokenSet } from '../helpers/token-store.js'

// The backoff a failed refresh shares through Redis (`{sid}:backoff`) lasts as long as the key lives: no instance
// reads another machine's clock from it. Before, the key held "until" by the writer's clock and readers subtracted
// their own: a writer 10 minutes ahead blocked every other instance for 10 minutes, one behind shared no backoff.

const BACKOFF = { refreshBackoffMs: 300, refreshBackoffMaxMs: 1000 }

for (const [skew, label] of [[600_000, 'ahead'], [-600_000, 'behind']] as const) {
  t.test(`a backoff written by an instance whose clock is 10 minutes ${label} lasts its refreshBackoffMs on the others`, async t => {
    const admin = await connectRedis(t)
    if (admin === undefined) return
    const prefix = uniquePrefix('skew')
    cleanupPrefix(t, admin, prefix)
    const a = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, ...BACKOFF })
    const b = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, ...BACKOFF })
    const id = sid()
    await a.tokenStore.save(id, tokenSet({ expiresInMs: -3_600_000 })) // expired by either clock

    // A's token call fails while A's clock is off: it writes the session's backoff by that clock.
    const realNow = Date.now
    t.teardown(() => { Date.now = realNow })
    const failing = countingRefresher({ before: async () => { Date.now = () => realNow() + skew; throw new Error('provider answered 503') } })
    await t.rejects(a.tokenStore.getFresh(id, failing.refresh), /503/)
    Date.now = realNow

    const next = tokenSet()
    const working = countingRefresher({ answer: () => next })
    const err = await b.tokenStore.getFresh(id, working.refresh).then(() => undefined, (e: unknown) => e)
    t.type(err, RefreshBackoffError, 'B finds the backoff under the lock')
    const left = (err as RefreshBackoffError).retryAfterMs
    t.ok(left > 0 && left <= BACKOFF.refreshBackoffMs, `B waits what is left of refreshBackoffMs (${left} ms)`)
    t.same(working.calls, [], 'B does not call the token endpoint meanwhile')

    await sleep(Math.min(left, BACKOFF.refreshBackoffMaxMs) + 50)
    t.same(await b.tokenStore.getFresh(id, working.refresh), next, 'B refreshes once the backoff is over')
    t.equal(working.calls.length, 1)
  })
}

t.test('a wait read from the backoff key is never longer than refreshBackoffMaxMs (a key written under another configuration)', async t => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('skew')
  cleanupPrefix(t, admin, prefix)
  const b = await buildApp(t, { redis: admin, keyPrefix: prefix, ...BACKOFF })
  const id = sid()
  await b.tokenStore.save(id, tokenSet({ expiresInMs: -60_000 }))
  await admin.set(`${prefix}{${id}}:backoff`, String(Date.now() + 600_000), 'PX', 600_000)
  const err = await b.tokenStore.getFresh(id, countingRefresher().refresh).then(() => undefined, (e: unknown) => e)
  t.type(err, RefreshBackoffError)
  t.ok((err as RefreshBackoffError).retryAfterMs <= BACKOFF.refreshBackoffMaxMs, `capped (${(err as RefreshBackoffError).retryAfterMs} ms)`)
})
