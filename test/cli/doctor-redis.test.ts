import t from 'tap'
import { doctor } from 'aihubmix-oauth'
import { pingRedis } from '../../src/cli/redis-ping.js'
import { connectRedis, redisUrl } from '../helpers/redis.js'
import { closedPort, lines, runCli, startFakeRedis, startTcpServer, tempDir } from './capture.js'

t.test('doctor pings the real Redis of REDIS_URL: PONG', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const cwd = await tempDir(t)
  const url = new URL(redisUrl())
  const result = await runCli(['doctor'], { env: { REDIS_URL: redisUrl() }, cwd })
  const line = lines(result.stdout).find((l) => l.includes('Redis:'))
  t.equal(line, `ok   Redis: redis://${url.hostname}:${url.port === '' ? 6379 : url.port} answered PONG`)
  t.equal(result.code, 0, 'exit 0', { output: result.all })
})

t.test('a closed port, a silent server and an error reply are FAIL lines', async (t) => {
  const cwd = await tempDir(t)
  const port = await closedPort()
  const refused = await runCli(['doctor'], { env: { REDIS_URL: `redis://127.0.0.1:${port}` }, cwd })
  t.equal(refused.code, 1)
  t.equal(lines(refused.stdout).at(-1), `FAIL Redis: redis://127.0.0.1:${port}: connection refused`)

  const silent = await startTcpServer(t, () => {})
  const report = await doctor({ env: { REDIS_URL: `redis://127.0.0.1:${silent.port}` }, cwd, timeoutMs: 200 })
  t.equal(report.ok, false)
  t.same(report.checks.at(-1), { status: 'fail', name: 'Redis', detail: `redis://127.0.0.1:${silent.port}: no answer within 200 ms` })

  const noauth = await startTcpServer(t, (_chunk, socket) => { socket.write('-NOAUTH Authentication required.\r\n') })
  const refusedPing = await pingRedis(`redis://127.0.0.1:${noauth.port}`, { timeoutMs: 2000 })
  t.same(refusedPing, { ok: false, target: `redis://127.0.0.1:${noauth.port}`, detail: `this Redis requires a password and REDIS_URL has none (NOAUTH): set REDIS_URL to redis://:<password>@127.0.0.1:${noauth.port}` })

  const http = await startTcpServer(t, (_chunk, socket) => { socket.end('HTTP/1.1 400 Bad Request\r\n\r\n') })
  t.same(await pingRedis(`redis://127.0.0.1:${http.port}`, { timeoutMs: 2000 }), {
    ok: false, target: `redis://127.0.0.1:${http.port}`, detail: 'unexpected answer (not Redis?): check REDIS_URL, the host and port of your Redis (6379 by default)'
  })
})

t.test('rediss:// at a Redis without TLS: the FAIL line says rediss:// needs a Redis that speaks TLS', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const cwd = await tempDir(t)
  const hint = ' (rediss:// needs a Redis that speaks TLS; for a plain Redis use redis://)'
  const url = new URL(redisUrl())
  url.protocol = 'rediss:'
  const target = `rediss://${url.hostname}:${url.port === '' ? 6379 : url.port}`
  // The plain Redis waits for a command that the TLS handshake never is: it said only "no answer within ... ms".
  const report = await doctor({ env: { REDIS_URL: url.href }, cwd, timeoutMs: 300 })
  t.same(report.checks.at(-1), { status: 'fail', name: 'Redis', detail: `${target}: no answer within 300 ms${hint}` })
  const closing = await startTcpServer(t, (_chunk, socket) => { socket.destroy() })
  const closed = await pingRedis(`rediss://127.0.0.1:${closing.port}`, { timeoutMs: 2000 })
  t.ok(closed.detail.endsWith(hint), closed.detail)
  // Control: nothing listening is not a TLS matter, nor is a plain URL.
  const port = await closedPort()
  t.equal((await pingRedis(`rediss://127.0.0.1:${port}`, { timeoutMs: 2000 })).detail, 'connection refused')
  // A plain URL at a server that hangs up on a Redis command (PostgreSQL, an MQTT broker): not a TLS matter, but maybe
  // not Redis at all.
  t.equal((await pingRedis(`redis://127.0.0.1:${closing.port}`, { timeoutMs: 2000 })).detail,
    'the connection closed before PONG (something that is not Redis may listen there: check the host and port, 6379 by default)')
})

t.test('credentials in REDIS_URL: AUTH is sent, the password is never printed', async (t) => {
  const password = 'redis-password-do-not-print'
  // This user may not read the configuration; everything else is answered as allowed.
  const server = await startFakeRedis(t, ([name]) => name === 'PING'
    ? '+PONG\r\n'
    : name === 'CONFIG' ? "-NOPERM this user has no permissions to run the 'config|get' command\r\n" : '+OK\r\n')
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: { REDIS_URL: `redis://default:${encodeURIComponent(password)}@127.0.0.1:${server.port}/2` }, cwd })
  t.equal(lines(result.stdout).find((l) => l.includes('Redis:')), `ok   Redis: redis://127.0.0.1:${server.port}/2 answered PONG`, 'the database named, not the password')
  const config = (name: string): string[] => ['CONFIG', 'GET', name]
  t.same(server.commands().slice(0, 8), [['AUTH', 'default', password], ['SELECT', '2'], ['PING'], config('appendonly'), config('appendfsync'), config('save'), config('maxmemory-policy'), config('maxmemory')])
  t.same(server.commands().slice(8).map(([name]) => name), ['SET', 'GET', 'MGET', 'PTTL', 'PEXPIRE', 'GETDEL', 'DEL', 'HSET', 'PEXPIRE', 'HLEN', 'HGETALL', 'HDEL', 'DEL', 'EVAL', 'EVALSHA', 'PUBLISH', 'TIME', 'INFO', 'HELLO', 'SUBSCRIBE', 'UNSUBSCRIBE'],
    'then what the app runs, on a throwaway key under its prefix (the access check)')
  t.match(lines(result.stdout).find((l) => l.includes('Redis persistence:')), /^ok {3}Redis persistence: not checked \(CONFIG GET refused: NOPERM .*\): make sure this Redis keeps its data across a restart/, 'a refused CONFIG is a note, not a failure')
  t.match(lines(result.stdout).at(-1), /^ok {3}Redis eviction: not checked \(CONFIG GET refused: NOPERM .*\): make sure this Redis's maxmemory-policy is noeviction/, 'for the eviction check too')
  t.equal(result.code, 0)
  t.notOk(result.all.includes(password))

  const wrong = await startTcpServer(t, (_chunk, socket) => { socket.write('-WRONGPASS invalid username-password pair or user is disabled.\r\n') })
  const denied = await runCli(['doctor'], { env: { REDIS_URL: `redis://:${password}@127.0.0.1:${wrong.port}` }, cwd })
  t.equal(denied.code, 1)
  t.equal(lines(denied.stdout).at(-1), `FAIL Redis: redis://127.0.0.1:${wrong.port}: Redis refused the password in REDIS_URL (WRONGPASS): set REDIS_URL to redis://:<password>@127.0.0.1:${wrong.port} with this Redis's password`)
  t.notOk(denied.all.includes(password))
})

t.test('a REDIS_URL naming a database this Redis does not have fails, naming the fix', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const cwd = await tempDir(t)
  const url = new URL(redisUrl())
  url.pathname = '/99'
  const result = await runCli(['doctor'], { env: { REDIS_URL: url.href }, cwd })
  t.equal(result.code, 1)
  const base = `${url.protocol}//${url.hostname}:${url.port === '' ? '6379' : url.port}`
  t.equal(lines(result.stdout).find((l) => l.includes('Redis:')), `FAIL Redis: ${base}/99: REDIS_URL names database 99, which this Redis does not have (ERR DB index is out of range): use a number below its "databases" setting (16 by default), such as ${url.protocol}//${url.host}/0`)
  url.pathname = '/1'
  const one = await runCli(['doctor'], { env: { REDIS_URL: url.href }, cwd })
  t.equal(lines(one.stdout).find((l) => l.includes('Redis:')), `ok   Redis: ${base}/1 answered PONG`, 'a database it has')
})

// One mistake, one FAIL line: the Redis line says it in readConfig's words, and the configuration line is left out.
t.test('a REDIS_URL that is not a redis URL fails the Redis check only, in the words of the example server', async (t) => {
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: { REDIS_URL: 'http://127.0.0.1:6379' }, cwd })
  t.equal(result.code, 1)
  t.same(lines(result.stdout).filter((l) => l.startsWith('FAIL')), ['FAIL Redis: REDIS_URL: must be a redis:// or rediss:// URL'], { output: result.stdout })
})

t.test('REDIS_CLIENT_CACHE=on: doctor checks that Redis allows CLIENT TRACKING and INFO (warns when an ACL refuses one)', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const cwd = await tempDir(t)
  const url = new URL(redisUrl())
  const target = `redis://${url.hostname}:${url.port === '' ? 6379 : url.port}`
  const allowed = await runCli(['doctor'], { env: { REDIS_URL: redisUrl(), REDIS_CLIENT_CACHE: 'on' }, cwd })
  t.equal(lines(allowed.stdout).find((l) => l.includes('Redis:')), `ok   Redis: ${target} answered PONG; CLIENT TRACKING and INFO allowed (REDIS_CLIENT_CACHE=on)`)
  t.equal(allowed.code, 0, 'exit 0', { output: allowed.all })

  // A user whose ACL denies CLIENT, or INFO (which tells the cache which server a connection is on): the app still
  // works (uncached), so a warning, not a failure.
  for (const [denied, said] of [['client', 'CLIENT TRACKING'], ['info', 'INFO']]) {
    const user = `aihubmix-doctor-no${denied}-${process.pid}`
    const password = 'pw-' + process.pid
    await admin.call('ACL', ['SETUSER', user, 'on', '>' + password, '~*', '&*', '+@all', '-' + denied])
    t.teardown(async () => { await admin.call('ACL', ['DELUSER', user]) })
    const limited = new URL(redisUrl())
    limited.username = user
    limited.password = password
    const refused = await runCli(['doctor'], { env: { REDIS_URL: limited.href, REDIS_CLIENT_CACHE: 'on' }, cwd })
    const line = lines(refused.stdout).find((l) => l.includes('Redis:')) ?? ''
    t.match(line, new RegExp(`^warn Redis: ${target.replace(/[.]/g, '\\.')} answered PONG, but ${said} refused: NOPERM .*every value is still read from Redis`))
    t.equal(refused.code, 0, 'a warning does not fail the doctor', { output: refused.all })
    t.notOk(refused.all.includes(password), 'the password is never printed')
  }

  const plain = await pingRedis(redisUrl(), { timeoutMs: 2000 })
  t.equal(plain.tracking, undefined, 'without tracking: true, nothing is tried')
})
