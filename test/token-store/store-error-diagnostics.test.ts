import t from 'tap'
import { once } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { createTokenStore, StoreUnavailableError } from '@fastify-aihubmix/token-store'
import { KEY_A, countingRefresher, sid, tokenSet } from '../helpers/token-store.js'
import { reachableStrings, recordDiagnostics } from '../helpers/diagnostics.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'

// Issue 19: every store command that fails or does not answer in time is one `aihubmix:store-error` message
// naming the store, the command (never its arguments) and why; the error is the StoreUnavailableError the caller
// got. A script Redis has not loaded yet (NOSCRIPT, answered by loading it) is not a failure.

async function listen (server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as { port: number }).port
}

t.test('a refused command: one message with the store, the command and the error the caller got, no key', async (t) => {
  const recorded = recordDiagnostics(t)
  const closed = createServer()
  const port = await listen(closed)
  closed.close()
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const store = createTokenStore({ redis: client, encryptionKeys: KEY_A })
  t.teardown(() => store.close())
  const id = sid()
  const failure = await store.get(id).catch((err: unknown) => err)
  t.ok(failure instanceof StoreUnavailableError)

  const messages = recorded.filter((r) => r.channel === 'aihubmix:store-error')
  t.equal(messages.length, 1)
  const message = messages[0]?.message ?? {}
  t.same(Object.keys(message).sort(), ['command', 'error', 'reason', 'store'])
  t.equal(message.store, store, 'the TokenStore whose backend failed')
  t.equal(message.command, 'GET')
  t.equal(message.reason, 'error')
  t.equal(message.error, failure, 'the very error the caller got')
  t.notOk(reachableStrings(message).some((s) => s.includes(id)), 'no key, so no session id')
})

t.test('a command without an answer: one timeout message, and none more when it fails later', async (t) => {
  const recorded = recordDiagnostics(t)
  // Accepts connections and never answers: Redis stalled.
  const sockets = new Set<Socket>()
  const silent = createServer((socket) => { sockets.add(socket) })
  const port = await listen(silent)
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    silent.close()
  })
  // Connected but never ready: its commands wait in the offline queue.
  const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => null, maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  const store = createTokenStore({ redis: client, encryptionKeys: KEY_A, redisCommandTimeoutMs: 50 })
  t.teardown(() => store.close())
  await t.rejects(store.get(sid()), { code: 'FST_AIHUBMIX_STORE_UNAVAILABLE' })
  const timeouts = recorded.filter((r) => r.channel === 'aihubmix:store-error')
  t.same(timeouts.map((r) => [r.message.command, r.message.reason]), [['GET', 'timeout']])
  t.match(((timeouts[0]?.message.error as Error).cause as Error).message, /did not answer within 50 ms/)

  // The stalled command fails for good when the connection goes: that is not a second failure.
  const ended = once(client, 'end')
  client.disconnect()
  await ended
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(recorded.filter((r) => r.channel === 'aihubmix:store-error').length, 1)
})

t.test('NOSCRIPT (a script a fresh Redis has not loaded) is answered by loading it, and is not a store error', async (t) => {
  const binary = redisServerOrSkip(t, 'NOSCRIPT is not a store error')
  if (binary === undefined) return
  const probe = createServer()
  const port = await listen(probe)
  await new Promise((resolve) => probe.close(resolve))
  const server = await startRedisServer(binary, port)
  t.teardown(() => server.close())
  const recorded = recordDiagnostics(t)
  const client = new Redis(server.url, { lazyConnect: true })
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.disconnect())
  t.same(await client.call('SCRIPT', 'EXISTS', '0'.repeat(40)), [0], 'a fresh server: no script loaded')
  const store = createTokenStore({ redis: client, encryptionKeys: KEY_A })
  t.teardown(() => store.close())
  const id = sid()
  await store.save(id, tokenSet({ expiresInMs: -60_000 }))
  // Lock, compare-and-set and unlock are scripts: each EVALSHA meets NOSCRIPT first.
  const { refresh, calls } = countingRefresher()
  await store.getFresh(id, refresh)
  t.equal(calls.length, 1)
  t.same(recorded.filter((r) => r.channel === 'aihubmix:store-error'), [])
})
