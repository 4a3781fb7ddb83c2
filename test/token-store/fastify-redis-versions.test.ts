import t from 'tap'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fastifyRedis7 from '@fastify/redis'
import fastifyRedis9 from 'fastify-redis9'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from '../helpers/redis.js'
import { KEY_A, countingRefresher, sid, sleep, tokenSet } from '../helpers/token-store.js'

// token-store on `fastify.redis`, as an app registers it: @fastify/redis 7 (ioredis 5) and @fastify/redis 9
// (ioredis 6, RESP3 by default), each as npm installs it with its own ioredis. Two instances share one Redis:
// a token set saved on one is read on the other, and a refresh is single-flight across both (lock, lock-release
// messages over pub/sub, re-read). The client-side cache with each major is in client-cache.test.ts.

const require = createRequire(import.meta.url)
const VERSIONS = [
  { name: '@fastify/redis 7', plugin: fastifyRedis7 as unknown as FastifyPluginAsync<{ url: string }>, module: '@fastify/redis', ioredis: 5 },
  { name: '@fastify/redis 9', plugin: fastifyRedis9 as unknown as FastifyPluginAsync<{ url: string }>, module: 'fastify-redis9', ioredis: 6 }
]

/** The major of the ioredis that `module` loads (its own dependency, as npm resolves it). */
function ioredisMajorOf (module: string): number {
  const ioredis = createRequire(require.resolve(module))('ioredis/package.json') as { version: string }
  return Number(ioredis.version.split('.')[0])
}

for (const version of VERSIONS) {
  t.test(`${version.name} (ioredis ${version.ioredis}): two instances on fastify.redis share token sets and refresh once`, async t => {
    const admin = await connectRedis(t)
    if (admin === undefined) return
    t.equal(ioredisMajorOf(version.module), version.ioredis, `${version.name} brings ioredis ${version.ioredis}`)
    const prefix = uniquePrefix('fr')
    cleanupPrefix(t, admin, prefix)
    const instance = async (): Promise<FastifyInstance> => {
      const app = Fastify({ logger: false })
      t.teardown(() => app.close())
      await app.register(version.plugin, { url: redisUrl() })
      await app.register(tokenStore, { encryptionKeys: KEY_A, backend: 'redis', keyPrefix: prefix })
      await app.ready()
      return app
    }
    const a = await instance()
    const b = await instance()

    const id = sid()
    const first = tokenSet({ expiresInMs: -60_000 })
    await a.tokenStore.save(id, first)
    t.same(await b.tokenStore.get(id), first, 'saved on one, read on the other')

    const calls: string[] = []
    const next = tokenSet()
    const onA = countingRefresher({ calls, answer: () => next, before: () => sleep(100) })
    const onB = countingRefresher({ calls, answer: () => next, before: () => sleep(100) })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      (i % 2 === 0 ? a : b).tokenStore.getFresh(id, (i % 2 === 0 ? onA : onB).refresh)))
    t.equal(calls.length, 1, 'one refresh across both instances')
    t.ok(results.every((set) => set.accessToken === next.accessToken), 'every caller got the new set')

    t.same(await b.tokenStore.get(id), next, 'the new set, on the other instance too')
  })
}
