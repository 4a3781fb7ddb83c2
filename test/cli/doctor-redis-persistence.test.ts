import t from 'tap'
import { Redis } from 'ioredis'
import { closedPort, lines, runCli, tempDir } from './capture.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'

// Issue 14, point 5: sessions survive a Redis restart only when Redis persists; doctor says so, from what the
// configured Redis answers to CONFIG GET appendonly / appendfsync / save.

async function persistenceLine (url: string, cwd: string): Promise<{ line: string | undefined, code: number }> {
  const result = await runCli(['doctor'], { env: { REDIS_URL: url }, cwd })
  return { line: lines(result.stdout).find((l) => l.includes('Redis persistence:')), code: result.code }
}

t.test('doctor reads the persistence of the configured Redis: AOF ok, snapshots only or nothing a warning, CONFIG refused a note', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor\'s Redis persistence check')
  if (binary === undefined) return
  const server = await startRedisServer(binary, await closedPort()) // appendonly yes, appendfsync always
  t.teardown(() => server.close())
  const admin = new Redis(server.url)
  t.teardown(() => admin.quit())
  const cwd = await tempDir(t)

  const aof = await persistenceLine(server.url, cwd)
  t.equal(aof.line, 'ok   Redis persistence: appendonly yes (appendfsync always): sessions survive a Redis restart; nothing acknowledged is lost')
  t.equal(aof.code, 0)

  await admin.config('SET', 'appendfsync', 'everysec')
  t.match((await persistenceLine(server.url, cwd)).line, /^ok {3}Redis persistence: appendonly yes \(appendfsync everysec\): .*about the last second/)

  await admin.config('SET', 'appendonly', 'no')
  await admin.config('SET', 'save', '900 1 300 10')
  const snapshots = await persistenceLine(server.url, cwd)
  t.equal(snapshots.line, 'warn Redis persistence: snapshots only (save "900 1 300 10", appendonly no): a restart brings back the last snapshot, and users who signed in or whose tokens were refreshed since must sign in again; set appendonly yes')
  t.equal(snapshots.code, 0, 'a warning does not fail the doctor')

  await admin.config('SET', 'save', '')
  const nothing = await persistenceLine(server.url, cwd)
  t.equal(nothing.line, 'warn Redis persistence: this Redis persists nothing (appendonly no, save ""): a restart ends every session and every user must sign in again; set appendonly yes')
  t.equal(nothing.code, 0)

  // A user whose ACL refuses CONFIG (as managed Redis services often do): a note, not a failure.
  await admin.call('ACL', ['SETUSER', 'app', 'on', '>app-password-do-not-print', '~*', '&*', '+@all', '-config'])
  const limited = new URL(server.url)
  limited.username = 'app'
  limited.password = 'app-password-do-not-print'
  const refused = await runCli(['doctor'], { env: { REDIS_URL: limited.href }, cwd })
  t.match(lines(refused.stdout).find((l) => l.includes('Redis persistence:')), /^ok {3}Redis persistence: not checked \(CONFIG GET refused: NOPERM .*\): make sure this Redis keeps its data across a restart \(appendonly yes\), or every user must sign in again after one$/)
  t.equal(refused.code, 0)
  t.notOk(refused.all.includes('app-password-do-not-print'), 'the password is never printed')
})
