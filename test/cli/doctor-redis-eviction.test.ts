import t from 'tap'
import { Redis } from 'ioredis'
import { closedPort, lines, runCli, tempDir } from './capture.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'

// A full Redis evicts keys under every maxmemory-policy but noeviction, and every key the app writes has a TTL, so
// volatile-* policies evict them as allkeys-* do: sessions and token sets (users signed out), refresh locks (two
// instances refreshing with one refresh token). doctor reads CONFIG GET maxmemory-policy / maxmemory and warns.

async function evictionLine (url: string, cwd: string): Promise<{ line: string | undefined, code: number, all: string }> {
  const result = await runCli(['doctor'], { env: { REDIS_URL: url }, cwd })
  return { line: lines(result.stdout).find((l) => l.includes('Redis eviction:')), code: result.code, all: result.all }
}

t.test('doctor reads the maxmemory-policy of the configured Redis: noeviction ok, allkeys-* and volatile-* a warning, CONFIG refused a note', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor\'s Redis eviction check')
  if (binary === undefined) return
  const server = await startRedisServer(binary, await closedPort())
  t.teardown(() => server.close())
  const admin = new Redis(server.url)
  t.teardown(() => admin.quit())
  const cwd = await tempDir(t)

  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '0')
  t.equal((await evictionLine(server.url, cwd)).line, 'ok   Redis eviction: maxmemory-policy noeviction, maxmemory 0 (no limit): nothing is evicted')

  await admin.config('SET', 'maxmemory', String(256 * 1024 * 1024))
  const noeviction = await evictionLine(server.url, cwd)
  t.equal(noeviction.line, 'ok   Redis eviction: maxmemory-policy noeviction (maxmemory 256 MB): nothing is evicted; when full, sign-ins and refreshes answer 503 until there is room, so keep maxmemory above what sessions need')
  t.equal(noeviction.code, 0)

  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru')
  const allkeys = await evictionLine(server.url, cwd)
  t.equal(allkeys.line, 'warn Redis eviction: maxmemory-policy allkeys-lru (maxmemory 256 MB): a full Redis evicts sessions, token sets and refresh locks, ' +
    'signing users out; an evicted session index (read least often, so first to go under an LRU policy) has "sign out everywhere" ' +
    'leave other devices signed in; and a lost refresh lock lets two instances refresh with the same refresh token; set maxmemory-policy noeviction, ' +
    'with enough maxmemory: a full Redis then refuses new sign-ins and refreshes (503) and keeps everyone signed in')
  t.equal(allkeys.code, 0, 'a warning does not fail the doctor')

  await admin.config('SET', 'maxmemory-policy', 'volatile-ttl')
  t.match((await evictionLine(server.url, cwd)).line,
    /^warn Redis eviction: maxmemory-policy volatile-ttl \(maxmemory 256 MB\): a full Redis evicts sessions, token sets and refresh locks \(every key this app writes has a TTL, so a volatile-\* policy evicts them too\), .*set maxmemory-policy noeviction/)

  // No limit: nothing is evicted whatever the policy; a note for the day one is set.
  await admin.config('SET', 'maxmemory', '0')
  t.equal((await evictionLine(server.url, cwd)).line, 'ok   Redis eviction: maxmemory 0 (no limit): nothing is evicted; should a limit be set, set maxmemory-policy noeviction with it (volatile-ttl would evict sessions)')

  // A user whose ACL refuses CONFIG (as managed Redis services often do): said, not a failure.
  await admin.call('ACL', ['SETUSER', 'app', 'on', '>app-password-do-not-print', '~*', '&*', '+@all', '-config'])
  const limited = new URL(server.url)
  limited.username = 'app'
  limited.password = 'app-password-do-not-print'
  const refused = await evictionLine(limited.href, cwd)
  t.match(refused.line, /^ok {3}Redis eviction: not checked \(CONFIG GET refused: NOPERM .*\): make sure this Redis's maxmemory-policy is noeviction, or a full Redis evicts sessions, token sets and refresh locks$/)
  t.equal(refused.code, 0)
  t.notOk(refused.all.includes('app-password-do-not-print'), 'the password is never printed')
})
