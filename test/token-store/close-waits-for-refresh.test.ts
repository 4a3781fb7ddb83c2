import t from 'tap'
import Fastify from 'fastify'
import tokenStore from '@fastify-aihubmix/token-store'
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
