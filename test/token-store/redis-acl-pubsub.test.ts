import t from 'tap'
import { Redis } from 'ioredis'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { buildApp, countingRefresher, sid, sleep, tokenSet } from '../helpers/token-store.js'

// A Redis ACL user without PUBLISH or SUBSCRIBE on the lock channel (a plausible operator's ACL: keys and scripting
// allowed, pub/sub not). The unlock script deleted the lock, then failed at its PUBLISH: every refresh logged "could
// not release the refresh lock; it expires with its lease", with a stack, though the lock was released; and each
// wait for another instance's lock logged "cannot subscribe" again. Now: the lock is released and said so; one line
// each names PUBLISH or SUBSCRIBE and the channel, with the fix; the waiter notices the release by polling.

const PREFIX = 'acl-pubsub:'

t.test('an ACL user without PUBLISH and SUBSCRIBE: refreshes work, one line each names what to allow', async (t) => {
  const binary = redisServerOrSkip(t, 'the ACL test')
  if (binary === undefined) return
  const server = await startRedisServer(binary, await freePort())
  t.teardown(() => server.close())
  const admin = new Redis(server.port, '127.0.0.1')
  t.teardown(() => admin.disconnect())
  await admin.call('ACL', 'SETUSER', 'app', 'on', '>app-password-0123456789', `~${PREFIX}*`, 'resetchannels', '+@all', '-publish', '-subscribe')

  const client = (): Redis => {
    const redis = new Redis({ port: server.port, host: '127.0.0.1', username: 'app', password: 'app-password-0123456789' })
    t.teardown(() => redis.disconnect())
    return redis
  }
  const logsA: Array<Record<string, unknown>> = []
  const logsB: Array<Record<string, unknown>> = []
  const a = await buildApp(t, { redis: client(), keyPrefix: PREFIX }, { logs: logsA })
  const b = await buildApp(t, { redis: client(), keyPrefix: PREFIX, lockWaitMs: 5000 }, { logs: logsB })

  const id = sid()
  await a.tokenStore.save(id, tokenSet({ expiresInMs: -60_000 }))
  const onA = countingRefresher({ before: () => sleep(300) })
  const onB = countingRefresher()
  const fromA = a.tokenStore.getFresh(id, onA.refresh)
  await sleep(100) // A holds the lock
  const fromB = b.tokenStore.getFresh(id, onB.refresh)
  const [setA, setB] = await Promise.all([fromA, fromB])
  t.equal(setB.accessToken, setA.accessToken, 'B waited for A\'s refresh and got its set (by polling)')
  t.same(onB.calls, [], 'B never called its refresher')
  t.equal(await admin.exists(`${PREFIX}{${id}}:lock`), 0, 'the lock is released')

  // A second refresh of A: the refusal is not said again.
  await a.tokenStore.save(id, tokenSet({ expiresInMs: -60_000 }))
  await a.tokenStore.getFresh(id, countingRefresher().refresh)

  const text = (logs: Array<Record<string, unknown>>): string[] => logs.map((l) => String(l.msg))
  t.same(text(logsA).filter((m) => m.includes('could not release the refresh lock')), [], 'no "could not release" line: it was released')
  const publish = text(logsA).filter((m) => m.includes('Redis refused PUBLISH'))
  t.equal(publish.length, 1, 'one line for two refreshes')
  t.match(publish[0], `on the channel ${PREFIX}lock-released`)
  t.match(publish[0], /Fix: allow PUBLISH and SUBSCRIBE on that channel/)
  const subscribe = text(logsB).filter((m) => m.includes('Redis refused SUBSCRIBE'))
  t.equal(subscribe.length, 1, 'B: one line naming SUBSCRIBE')
  t.match(subscribe[0], /Fix: allow PUBLISH and SUBSCRIBE on that channel/)
  t.same(text(logsB).filter((m) => m.includes('cannot subscribe to lock releases')), [], 'not the generic line')
  for (const line of [...logsA, ...logsB]) t.notOk('stack' in (line.err as object ?? {}), 'no stack in any line')
  t.notMatch(JSON.stringify([...logsA, ...logsB]), id, 'no session id in the logs')
})
