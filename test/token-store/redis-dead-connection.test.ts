import t, { type Test } from 'tap'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import type { RedisStore } from '../../src/token-store/redis-store.js'
import { StoreUnavailableError } from '@fastify-aihubmix/token-store'
import { redisServerOrSkip, startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { startTcpRelay } from '../helpers/tcp-relay.js'
import { kvOf, sid, sleep, startLogged, tokenSet } from '../helpers/token-store.js'

// A Redis connection that ends or dies while Redis itself is fine (an operator review, two instances sharing Redis):
// - Redis closes a connection that was idle for its `timeout` setting (or a proxy does): the client reconnects 100 ms
//   later, and every request in between answered 503 store_unavailable (72 of 360 with `timeout 1`);
// - a connection stops passing anything without closing (a NAT or firewall that dropped it, a host gone): ioredis
//   kept it until the kernel gave up, about 15 minutes; that instance answered 503 all along, and the refreshes it had
//   started blocked the other instances' until their fence ran out, when they presented the rotated-away refresh
//   tokens (3 of 6 users signed out).

/** A redis-server of this test's own on a free port, stopped at teardown; undefined when the test was skipped (or failed). */
async function privateRedis (t: Test, what: string): Promise<RedisServer | undefined> {
  const binary = redisServerOrSkip(t, what)
  if (binary === undefined) return undefined
  const server = await startRedisServer(binary, await freePort())
  t.teardown(() => server.close())
  return server
}

const clientOf = (app: { tokenStore: unknown }): Redis => (kvOf(app.tokenStore as never) as unknown as RedisStore).client as Redis

t.test('Redis closes the store\'s idle connection: a request while the client reconnects waits for it and is answered', async (t) => {
  const server = await privateRedis(t, 'the idle-close case')
  if (server === undefined) return
  const admin = new Redis(server.port, '127.0.0.1')
  t.teardown(() => { admin.disconnect() })
  const name = `idle-close-${process.pid}`
  const logged = await startLogged(t, { redis: `${server.url}?connectionName=${name}`, keyPrefix: 'idle:' })
  const { app } = logged
  const id = sid()
  const set = tokenSet()
  await app.tokenStore.save(id, set)
  const client = clientOf(app)

  for (let round = 1; round <= 3; round++) {
    const list = await admin.call('CLIENT', 'LIST') as string
    const ids = list.split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => /^id=(\d+)/.exec(line)?.[1])
    t.equal(ids.length, 1, `round ${round}: one connection of the store's client`)
    // What Redis does to a connection idle for longer than its `timeout`: it closes it.
    const reconnecting = once(client, 'reconnecting')
    await admin.call('CLIENT', 'KILL', 'ID', ids[0] as string)
    await reconnecting
    t.not(client.status, 'ready', 'the client is reconnecting when the request comes')
    const started = Date.now()
    const read = await app.tokenStore.get(id).then((value) => value, (err: unknown) => err)
    t.equal((read as { accessToken?: string } | null)?.accessToken, set.accessToken, `round ${round}: answered (before: 503 store_unavailable, "Stream isn't writeable")`)
    t.ok(Date.now() - started < 2000, 'within the command timeout')
  }
  t.same(logged.lines.filter((l) => l.level >= 40).map((l) => l.msg), [], 'nothing to warn about: a routine close')
})

t.test('a command that waited for a reconnection past its timeout is not sent once the client is back', async (t) => {
  const server = await privateRedis(t, 'the late-reconnection case')
  if (server === undefined) return
  const admin = new Redis(server.port, '127.0.0.1')
  t.teardown(() => { admin.disconnect() })
  const relay = await startTcpRelay('127.0.0.1', server.port)
  t.teardown(() => relay.close())
  const name = `late-${process.pid}`
  const client = new Redis(relay.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectionName: name })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await once(client, 'ready')
  const { app } = await startLogged(t, { redis: client, keyPrefix: 'late:', redisCommandTimeoutMs: 300 })

  // The client's connection closes; the new one is taken on by the relay, but Redis hears nothing of it for a while.
  relay.holdNew()
  const list = await admin.call('CLIENT', 'LIST') as string
  const connection = /^id=(\d+) .* name=late-/m.exec(list.split('\n').filter((line) => line.includes(` name=${name} `)).join('\n'))?.[1]
  const reconnecting = once(client, 'reconnecting')
  await admin.call('CLIENT', 'KILL', 'ID', connection as string)
  await reconnecting
  const id = sid()
  const failed = await app.tokenStore.save(id, tokenSet()).then(() => undefined, (err: unknown) => err)
  t.ok(failed instanceof StoreUnavailableError, 'the write fails when its time is up (503)')
  relay.releaseNew()
  await once(client, 'ready')
  await sleep(200)
  t.same(await admin.keys(`late:*${id}*`), [], 'and is not sent once the client is back: nothing was written after its failure was reported')
  t.ok(await app.tokenStore.save(id, tokenSet()).then(() => true), 'a write made now is')
})

t.test('Redis down: a request while the client reconnects fails as soon as an attempt fails, not after the timeout', async (t) => {
  const server = await privateRedis(t, 'the Redis-down case')
  if (server === undefined) return
  const { app } = await startLogged(t, { redis: server.url, keyPrefix: 'down:', redisCommandTimeoutMs: 5000 })
  const id = sid()
  await app.tokenStore.save(id, tokenSet())
  const client = clientOf(app)

  const reconnecting = once(client, 'reconnecting')
  await server.stop()
  await reconnecting
  // Sent while the first attempt is still ahead: it waits for that attempt, which fails (nothing listens).
  let started = Date.now()
  const first = await app.tokenStore.get(id).then(() => undefined, (err: unknown) => err)
  t.ok(first instanceof StoreUnavailableError, 'store_unavailable')
  t.ok(Date.now() - started < 2000, `after the failed attempt, not the 5 s timeout (${Date.now() - started} ms)`)
  // Attempts keep failing: at once.
  started = Date.now()
  const second = await app.tokenStore.get(id).then(() => undefined, (err: unknown) => err)
  t.ok(second instanceof StoreUnavailableError, 'store_unavailable again')
  t.ok(Date.now() - started < 500, `at once (${Date.now() - started} ms)`)

  await server.start()
  await once(client, 'ready')
  t.ok(await app.tokenStore.get(id), 'answered once Redis is back')
})

t.test('a connection that stops answering without closing is replaced (redis URL: ioredis\' socketTimeout)', async (t) => {
  const server = await privateRedis(t, 'the dead-connection case')
  if (server === undefined) return
  const relay = await startTcpRelay('127.0.0.1', server.port)
  t.teardown(() => relay.close())
  const logged = await startLogged(t, { redis: `redis://127.0.0.1:${relay.port}`, keyPrefix: 'dead:', redisCommandTimeoutMs: 500 })
  const { app } = logged
  const id = sid()
  const set = tokenSet()
  await app.tokenStore.save(id, set)

  relay.freeze()
  const frozenAt = Date.now()
  const failed = await app.tokenStore.get(id).then(() => undefined, (err: unknown) => err)
  t.ok(failed instanceof StoreUnavailableError, 'the read on the dead connection fails (503)')
  let answered: unknown
  while (answered === undefined && Date.now() - frozenAt < 5000) {
    answered = await app.tokenStore.get(id).then((value) => value ?? undefined, () => undefined)
    if (answered === undefined) await sleep(100)
  }
  t.equal((answered as { accessToken?: string } | undefined)?.accessToken, set.accessToken,
    `answered again on a new connection within 5 s (before: never, until the kernel gave up), after ${Date.now() - frozenAt} ms`)
  const warned = logged.lines.filter((l) => l.level === 40 && l.msg.includes('did not answer on this client\'s connection'))
  t.equal(warned.length, 1, 'one warning')
  t.match(warned[0]?.msg, /^token-store: Redis at redis:\/\/127\.0\.0\.1:\d+\/? did not answer on this client's connection for 500 ms: the connection is closed and a new one opened;/)
  t.notOk(logged.lines.some((l) => l.msg.includes('socketTimeout option')), 'no advice about a client it made itself')
})

t.test('a client given without socketTimeout: the first command timeout says once what the option is for', async (t) => {
  const server = await privateRedis(t, 'the given-client case')
  if (server === undefined) return
  const relay = await startTcpRelay('127.0.0.1', server.port)
  t.teardown(() => relay.close())
  for (const socketTimeout of [undefined, 400]) {
    const client = new Redis(relay.port, '127.0.0.1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, ...(socketTimeout === undefined ? {} : { socketTimeout }) })
    client.on('error', () => {})
    t.teardown(() => { client.disconnect() })
    await once(client, 'ready')
    const logged = await startLogged(t, { redis: client, keyPrefix: `given${socketTimeout ?? ''}:`, redisCommandTimeoutMs: 400 })
    const { app } = logged
    const id = sid()
    await app.tokenStore.save(id, tokenSet())
    relay.freeze()
    for (let i = 0; i < 2; i++) await app.tokenStore.get(id).catch(() => {})
    const advice = logged.lines.filter((l) => l.msg.includes('socketTimeout option'))
    if (socketTimeout === undefined) {
      t.equal(advice.length, 1, 'without it: one warning, for two timeouts')
      t.match(advice[0]?.msg, /^token-store: a Redis command did not answer within 400 ms\. If Redis is up, .* Fix: give the Redis client you pass ioredis' socketTimeout option \(for example socketTimeout: 400\), which replaces a connection that stops answering$/)
    } else {
      t.equal(advice.length, 0, 'with it: no advice')
      await sleep(1000)
      t.ok(await app.tokenStore.get(id), 'and its connection was replaced: answered again')
    }
    await app.close()
  }
})
