import t from 'tap'
import Fastify from 'fastify'
import tokenStore, { RefreshBusyError } from '@fastify-aihubmix/token-store'
import { countingRefresher, deferred, KEY_A, sid, sleep, tokenSet } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from '../helpers/redis.js'

// The call that starts a refresh goes on with its still-valid token when the refresh is slower than that token's
// life; the refresh runs on. close() (a deploy's SIGTERM) did not wait for it: token-store closed the client it had
// made from the URL, the rotated set could not be stored, and after lockLeaseMs it was dropped ("will have to sign in
// again"): the next instance presented the rotated-away refresh token. close() now lets such refreshes end first.

async function app (prefix: string): Promise<ReturnType<typeof Fastify>> {
  const instance = Fastify()
  await instance.register(tokenStore, { encryptionKeys: KEY_A, redis: redisUrl(), keyPrefix: prefix, lockLeaseMs: 5000 })
  await instance.ready()
  return instance
}

t.test('close() while a refresh a caller no longer waits for is at the provider: the rotated set is stored, not dropped', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('close-flight')
  cleanupPrefix(t, admin, prefix)
  const a = await app(prefix)
  const id = sid()
  const old = tokenSet({ expiresInMs: 1500, obtainedAt: Date.now() - 7_200_000 })
  await a.tokenStore.save(id, old)
  const next = tokenSet()
  const atProvider = deferred()
  const refresher = countingRefresher({ before: async () => { atProvider.resolve(); await sleep(1200) }, answer: () => next })

  const got = await a.tokenStore.getFresh(id, refresher.refresh)
  t.equal(got.accessToken, old.accessToken, 'the caller went on with its still-valid set')
  await atProvider.promise
  const closing = Date.now()
  await a.close()
  t.comment(`close() took ${Date.now() - closing} ms`)

  const b = await app(prefix)
  t.teardown(() => b.close())
  t.same(await b.tokenStore.get(id), next, 'the next instance reads the rotated set')
  t.same(refresher.calls, [old.refreshToken], 'one refresh')
})

// close() copied the running refreshes once and let new ones start while it waited for them: a refresh started then (a
// background job's getFresh during shutdown) outlived the wait, and its rotated set was dropped though its caller had
// it (found by the diff review). Now no refresh starts once close() is called.
t.test('a refresh asked for while close() waits: none starts; a valid set is handed back, an expired one is busy', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('close-new-flight')
  cleanupPrefix(t, admin, prefix)
  const a = await app(prefix)
  const [one, two, three] = [sid(), sid(), sid()]
  const due = (): ReturnType<typeof tokenSet> => tokenSet({ expiresInMs: 1500, obtainedAt: Date.now() - 7_200_000 })
  const [oldOne, oldTwo] = [due(), due()]
  const expired = tokenSet({ expiresInMs: -1000 })
  await a.tokenStore.save(one, oldOne)
  await a.tokenStore.save(two, oldTwo)
  await a.tokenStore.save(three, expired)
  const nextOne = tokenSet()
  const atProvider = deferred()
  const first = countingRefresher({ before: async () => { atProvider.resolve(); await sleep(1000) }, answer: () => nextOne })
  const later = countingRefresher({ answer: () => tokenSet() })
  t.equal((await a.tokenStore.getFresh(one, first.refresh)).accessToken, oldOne.accessToken, 'flight 1 runs on')
  await atProvider.promise
  const closing = a.close()
  const got = await a.tokenStore.getFresh(two, later.refresh)
  t.equal(got.accessToken, oldTwo.accessToken, 'a due but valid set: handed back as it is')
  await t.rejects(a.tokenStore.getFresh(three, later.refresh), RefreshBusyError, 'an expired one: busy (503), nothing presented')
  await closing
  t.same(later.calls, [], 'no refresh started during close()')

  const b = await app(prefix)
  t.teardown(() => b.close())
  t.same(await b.tokenStore.get(one), nextOne, 'flight 1 stored')
  t.same(await b.tokenStore.get(two), oldTwo, 'the other set untouched: the next instance refreshes it')
})
