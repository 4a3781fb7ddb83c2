import t from 'tap'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'
import tokenStore from '@fastify-aihubmix/token-store'
import { reconnectOnReadonly } from '../../src/token-store/redis-url.js'
import { REDIS_ERROR_LOG_INTERVAL_MS } from '../../src/token-store/connection-errors.js'
import { redisServerOrSkip, startRedisServer, until } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { startTcpRelay } from '../helpers/tcp-relay.js'
import { countingRefresher, sid, tokenSet } from '../helpers/token-store.js'

// A Redis failover (Sentinel promotes the replica, or a managed Redis' primary endpoint moves; the old primary comes
// back as a replica of the new one). The app reaches Redis through one address (`REDIS_URL`, a DNS name), which now
// leads to the new primary: new connections go there. But the connection the client made before the failover is
// still open, to the old primary, which is a replica now: reads work, every write answers
// `READONLY You can't write against a read only replica.` Redis keeps its clients on a role change, and ioredis
// reconnects on a reply error only when `reconnectOnError` says so. Before the fix, the client token-store makes
// from the URL had none: no refresh (the lock's SET is refused), no sign-in, no sign-out until the app restarted.

const PASSWORD = `pw-${randomBytes(8).toString('hex')}`

t.test('a redis URL: after a failover the next write reaches the new primary (READONLY reconnects), one warning without the password', async (t) => {
  const binary = redisServerOrSkip(t, 'the failover case')
  if (binary === undefined) return
  const auth = ['--requirepass', PASSWORD, '--masterauth', PASSWORD]
  const primary = await startRedisServer(binary, await freePort(), auth)
  t.teardown(() => primary.close())
  const replica = await startRedisServer(binary, await freePort(), auth)
  t.teardown(() => replica.close())
  const adminA = new Redis(primary.port, '127.0.0.1', { password: PASSWORD })
  const adminB = new Redis(replica.port, '127.0.0.1', { password: PASSWORD })
  t.teardown(() => { adminA.disconnect(); adminB.disconnect() })
  await adminB.call('REPLICAOF', '127.0.0.1', String(primary.port))
  await until(async () => /master_link_status:up/.test(await adminB.info('replication')), 'the replica to sync')

  // The DNS name: new connections go to the primary of the moment, those open stay where they are.
  const dns = await startTcpRelay('127.0.0.1', primary.port)
  t.teardown(() => dns.close())
  const raw: string[] = []
  const app = Fastify({ logger: { level: 'info', stream: new Writable({ write (c: Buffer, _e, cb) { raw.push(c.toString()); cb() } }) } })
  t.teardown(() => app.close())
  await app.register(tokenStore, {
    encryptionKeys: `base64:${randomBytes(32).toString('base64')}`,
    redis: `redis://:${PASSWORD}@127.0.0.1:${dns.port}`,
    keyPrefix: 'failover:'
  })
  await app.ready()

  const id = sid()
  // The user's set, whose access token has just expired: the next request must refresh and store the rotated set.
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -1000 }))
  t.ok(await app.tokenStore.get(id), 'stored before the failover')

  // The failover: the replica is promoted, the name leads to it, the old primary follows it.
  await adminB.call('REPLICAOF', 'NO', 'ONE')
  dns.moveTo(replica.port)
  await adminA.call('REPLICAOF', '127.0.0.1', String(replica.port))
  await until(async () => /master_link_status:up/.test(await adminA.info('replication')), 'the old primary to follow the new one')
  t.equal(await adminA.info('replication').then((s) => /role:slave/.test(s)), true, 'the old primary is a replica now')

  const failures: string[] = []
  let refreshed: Awaited<ReturnType<typeof app.tokenStore.getFresh>> | undefined
  const deadline = Date.now() + 5000
  const onRefresh = countingRefresher()
  while (refreshed === undefined && Date.now() < deadline) {
    try {
      refreshed = await app.tokenStore.getFresh(id, onRefresh.refresh)
    } catch (err) {
      failures.push(`${(err as { code?: string }).code ?? ''} ${String((err as { cause?: Error }).cause?.message ?? err)}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  t.ok(refreshed, `within 5 s of the failover, a refresh is stored again (${failures.length} failures, the last: ${failures.at(-1) ?? 'none'})`)
  // The write that met the old primary fails (no offline queue to hold its resend); it says why.
  t.ok(failures.length <= 1, `at most the one write that met the replica fails (got ${failures.length})`)
  t.ok(failures.every((f) => /READONLY/.test(f)), 'that failure names READONLY (not "Stream isn\'t writeable")')
  t.equal(onRefresh.calls.length, 1, 'the provider is asked once, after the lock could be taken')
  t.equal((await app.tokenStore.get(id))?.accessToken, refreshed?.accessToken, 'the rotated set is stored')
  t.equal(await adminB.dbsize() > 0, true, 'on the new primary')

  const warnings = raw.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((l) => l.level === 40)
  t.equal(warnings.filter((l) => /READONLY/.test(l.msg)).length, 1, 'one warning about the replica')
  t.match(warnings[0]?.msg, /read-only replica.*failover.*reconnecting/)
  t.notOk(raw.join('').includes(PASSWORD), 'the password is in no log line')
})

function capture (): { log: FastifyBaseLogger, warnings: string[] } {
  const warnings: string[] = []
  const noop = (): void => {}
  const log = { warn: (msg: string) => { warnings.push(msg) }, error: noop, info: noop, debug: noop, trace: noop, fatal: noop } as unknown as FastifyBaseLogger
  return { log, warnings }
}

t.test('reconnectOnReadonly: READONLY only, resend only with an offline queue, at most one warning per interval', async (t) => {
  const { log, warnings } = capture()
  let now = 0
  let offlineQueue = false
  const decide = reconnectOnReadonly('redis://127.0.0.1:6379', log, () => offlineQueue, () => now)
  const readonly = new Error("READONLY You can't write against a read only replica.")
  t.equal(decide(new Error('ERR wrong number of arguments')), false, 'other errors: no reconnect')
  t.equal(decide(new Error('OOM command not allowed when used memory > \'maxmemory\'.')), false, 'OOM: no reconnect (another connection is refused the same)')
  t.equal(decide(readonly), 1, 'READONLY, offline queue off: reconnect (the command fails with its own error)')
  offlineQueue = true
  t.equal(decide(readonly), 2, 'READONLY, offline queue on: reconnect and resend')
  t.equal(warnings.length, 1, 'one warning for both')
  now += REDIS_ERROR_LOG_INTERVAL_MS - 1
  decide(readonly)
  t.equal(warnings.length, 1, 'still one within the interval')
  now += 1
  decide(readonly)
  t.equal(warnings.length, 2, 'a second one after it')
  t.match(warnings[1], /2 more since the last line/, 'counting those not logged')
  t.match(warnings[0], /redis:\/\/127\.0\.0\.1:6379/, 'naming the URL')
})
