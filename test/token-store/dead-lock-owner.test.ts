import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { DEFAULT_LOCK_LEASE_MS, DEFAULT_LOCK_WAIT_MS } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, sid, tokenSet } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from '../helpers/redis.js'
import { SOURCE_NODE_ARGS } from '../helpers/source-node-args.js'

// Issue 14, point 4: a process killed while it refreshes leaves the session's lock behind. It frees when its lease
// runs out (the lease is renewed only by a living owner). The refresh token the dead process presented is marked in
// the stored set (refreshFenceMs): it may have been rotated already, so nobody presents it again before the mark is
// over (a lease also runs out when Redis is away for everyone, with the owner alive and the provider's answer in
// hand); then the session is refreshed as before.

const HOLDER = fileURLToPath(new URL('../helpers/lock-holder.ts', import.meta.url))

t.test('the default lease frees a dead owner\'s lock within seconds, and waiters outlast it', async t => {
  t.ok(DEFAULT_LOCK_LEASE_MS <= 10_000, `lease ${DEFAULT_LOCK_LEASE_MS} ms`)
  t.ok(DEFAULT_LOCK_WAIT_MS > DEFAULT_LOCK_LEASE_MS, `a waiter waits ${DEFAULT_LOCK_WAIT_MS} ms, longer than a lease`)
})

t.test('a lock left by a process killed (SIGKILL) mid-refresh frees within the lease; after the fence, the waiter refreshes', async t => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('dead')
  cleanupPrefix(t, redis, prefix)
  const lease = 1500
  const fence = 5000
  const app = await buildApp(t, { redis, keyPrefix: prefix, lockLeaseMs: lease, refreshFenceMs: fence })
  const id = sid()
  const old = tokenSet({ expiresInMs: -60_000 })
  await app.tokenStore.save(id, old)

  const child = spawn(process.execPath, [...SOURCE_NODE_ARGS, HOLDER, redisUrl(), prefix, id, String(lease)], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => { out += chunk; if (out.includes('refreshing')) resolve() })
    child.once('exit', (code) => { reject(new Error(`the lock holder exited early (${code})`)) })
  })
  const presented = Date.now()
  const lockKey = `${prefix}{${id}}:lock`
  t.not(await redis.get(lockKey), null, 'the child holds the lock')
  child.kill('SIGKILL')
  await once(child, 'exit')

  const left = await redis.pttl(lockKey)
  t.ok(left > 0 && left <= lease, `the dead owner's lock lives at most one lease more (${left} ms)`)
  const r = countingRefresher()
  // Default lockWaitMs: longer than the lease. The lock frees, the mark of the dead process's refresh stays.
  await t.rejects(app.tokenStore.getFresh(id, r.refresh), { code: 'FST_AIHUBMIX_REFRESH_BUSY' }, 'within the fence: 503, not a second presentation')
  t.ok(Date.now() - presented < fence, 'that answer came within the fence')
  t.same(r.calls, [], 'the refresh token was not presented')
  t.equal(await redis.exists(lockKey), 0, 'the lock was released')
  await new Promise((resolve) => setTimeout(resolve, fence - (Date.now() - presented) + 100))
  const fresh = await app.tokenStore.getFresh(id, r.refresh)
  t.same(r.calls, [old.refreshToken], 'refreshed once the fence was over, with the stored refresh token')
  t.same(await app.tokenStore.get(id), fresh)
  t.equal(await redis.exists(lockKey), 0, 'and released')
})
