import { spawn } from 'node:child_process'
import { createConnection } from 'node:net'
import t, { type Test } from 'tap'
import { freePort } from '../helpers/free-port.js'
import { redisServerOrSkip, until } from '../helpers/redis-server.js'
import { lines, runInstalled, startTcpServer, tempDir } from './capture.js'

// What `doctor` says when Redis refuses REDIS_URL's credentials, from the installed command against redis-servers of
// this test's own (never the shared one on 6379): which part of REDIS_URL is wrong and how to write it, in one line
// that never holds the password.

/** Whether something answers RESP on `port` (`+PONG`, or `-NOAUTH` from a Redis with a password). */
function answers (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.setTimeout(500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => { socket.destroy(); resolve(/^[+-]/.test(d.toString())) })
    socket.on('error', () => resolve(false))
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
  })
}

/** A redis-server on a free port with `args`, no persistence; stopped at teardown. */
async function startRedis (t: Test, binary: string, args: string[]): Promise<number> {
  const port = await freePort()
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', '', ...args], { stdio: 'ignore' })
  t.teardown(async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  })
  await until(() => answers(port), `redis-server on port ${port}`)
  return port
}

const redisLine = (stdout: string): string | undefined => lines(stdout).find((l) => l.includes(' Redis: '))

t.test('a Redis with a password: a wrong or missing one in REDIS_URL names REDIS_URL and its shape, never the password', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor against a redis-server with requirepass')
  if (binary === undefined) return
  const password = 'right-password-not-printed'
  const port = await startRedis(t, binary, ['--requirepass', password])
  const cwd = await tempDir(t)
  const wrongPassword = 'wrong-password-not-printed'

  const wrong = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://:${wrongPassword}@127.0.0.1:${port}` }, cwd })
  t.equal(wrong.code, 1, 'exit 1', { output: wrong.all })
  t.equal(redisLine(wrong.stdout), `FAIL Redis: redis://127.0.0.1:${port}: Redis refused the password in REDIS_URL (WRONGPASS): set REDIS_URL to redis://:<password>@127.0.0.1:${port} with this Redis's password`)

  const user = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://app:${wrongPassword}@127.0.0.1:${port}/2` }, cwd })
  t.equal(user.code, 1)
  t.equal(redisLine(user.stdout), `FAIL Redis: redis://127.0.0.1:${port}/2: Redis refused the user name and password in REDIS_URL (WRONGPASS): set REDIS_URL to redis://<user>:<password>@127.0.0.1:${port}/2 with this Redis's user and password`)

  const none = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://127.0.0.1:${port}` }, cwd })
  t.equal(none.code, 1)
  t.equal(redisLine(none.stdout), `FAIL Redis: redis://127.0.0.1:${port}: this Redis requires a password and REDIS_URL has none (NOAUTH): set REDIS_URL to redis://:<password>@127.0.0.1:${port}`)

  // With a database in the URL, NOAUTH answers its SELECT first: it was `Redis refused: NOAUTH Authentication required.`
  const noneDb = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://127.0.0.1:${port}/3` }, cwd })
  t.equal(noneDb.code, 1)
  t.equal(redisLine(noneDb.stdout), `FAIL Redis: redis://127.0.0.1:${port}/3: this Redis requires a password and REDIS_URL has none (NOAUTH): set REDIS_URL to redis://:<password>@127.0.0.1:${port}/3`)

  const right = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://:${password}@127.0.0.1:${port}` }, cwd })
  t.equal(redisLine(right.stdout), `ok   Redis: redis://127.0.0.1:${port} answered PONG`, 'the right password: PONG')

  for (const result of [wrong, user, none, noneDb, right]) {
    t.equal(result.stderr, '')
    t.notOk(result.all.includes(password) || result.all.includes(wrongPassword), 'no password printed')
  }
})

t.test('a Redis without a password, a password in REDIS_URL: a warning (the app ignores it and works) saying to remove it or set requirepass', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor against a redis-server without a password')
  if (binary === undefined) return
  const port = await startRedis(t, binary, [])
  const cwd = await tempDir(t)
  const password = 'a-password-this-redis-does-not-have'
  const result = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://:${password}@127.0.0.1:${port}` }, cwd })
  // ioredis goes on when Redis answers that it has no password (a console warning), and the app works: it was a FAIL
  // and exit 1. Now a warning, with the exit status of any warning, and the rest of the Redis checks still made.
  t.equal(result.code, 0, 'exit 0, as for any warning', { output: result.all })
  t.equal(redisLine(result.stdout), `warn Redis: redis://127.0.0.1:${port} answered PONG, but REDIS_URL has a password this Redis does not have (AUTH refused: it has none), which the app ignores as it connects; remove it from REDIS_URL (redis://127.0.0.1:${port}), or give this Redis one (requirepass)`)
  t.ok(lines(result.stdout).some((l) => l.includes(' Redis persistence: ')), 'the next Redis checks are made')
  t.notOk(result.all.includes(password))
  // With a database in the URL: selected after the refused AUTH, as the app's client does.
  const db = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://:${password}@127.0.0.1:${port}/3` }, cwd })
  t.equal(db.code, 0, { output: db.all })
  t.equal(redisLine(db.stdout), `warn Redis: redis://127.0.0.1:${port}/3 answered PONG, but REDIS_URL has a password this Redis does not have (AUTH refused: it has none), which the app ignores as it connects; remove it from REDIS_URL (redis://127.0.0.1:${port}/3), or give this Redis one (requirepass)`)
  t.notOk(db.all.includes(password))
})

t.test('a long Redis error is cut at a word boundary, with an ellipsis', async (t) => {
  const said = 'ERR this Redis answers with an error that goes on and on, longer than any line of the report should be, so it must be shortened somewhere'
  const server = await startTcpServer(t, (_chunk, socket) => { socket.write(`-${said}\r\n`) })
  const cwd = await tempDir(t)
  const result = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://127.0.0.1:${server.port}` }, cwd })
  t.equal(result.code, 1)
  const prefix = `FAIL Redis: redis://127.0.0.1:${server.port}: Redis refused: `
  const line = redisLine(result.stdout) ?? ''
  t.ok(line.startsWith(prefix), line)
  const quoted = line.slice(prefix.length)
  t.ok(quoted.endsWith('…'), 'an ellipsis says it was cut')
  const kept = quoted.slice(0, -1)
  t.ok(said.startsWith(kept) && said[kept.length] === ' ', `cut between words: ${quoted}`)
  // Cut at 120 characters, it was `... so it must be sh`.
  t.equal(kept, 'ERR this Redis answers with an error that goes on and on, longer than any line of the report should be, so it must be')
})
