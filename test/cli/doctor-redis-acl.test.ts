import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { freePort } from '../helpers/free-port.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'
import { lines, runInstalled, tempDir } from './capture.js'

// doctor sent AUTH, SELECT and PING only, so it said "ok" for an ACL user who may not run EVALSHA (or reach the app's
// keys or channels), and then every sign-in failed with store_unavailable. It now runs what the app runs, on a
// throwaway key, hash and channel under the app's prefix (aihubmix:), and says what is missing in one line that
// names the permission, the grant and where the whole list is. Against a redis-server of this test's own (users are
// made with ACL SETUSER; the shared Redis is not touched), as the installed command.

const DOCS = 'every command, key and channel the app needs is listed under "Redis ACL" in @fastify-aihubmix/token-store\'s README ' +
  '(https://github.com/fastify-aihubmix/fastify-aihubmix/tree/main/src/token-store#redis-acl)'
const PASSWORD = 'acl-password-do-not-print'
/** What the suite needs, as its reviewer listed it: nothing more. */
const NEEDED = ['+get', '+set', '+mget', '+del', '+getdel', '+eval', '+evalsha', '+hdel', '+hgetall', '+hlen', '+hset', '+pexpire', '+ping', '+pttl',
  '+publish', '+subscribe', '+unsubscribe', '+time', '+info', '+select', '+auth', '+hello', '+client|setname', '+client|id', '+client|tracking',
  '~aihubmix:*', '&aihubmix:*']

/** A redis-server of this test's own on a free port, and an admin client; stopped at teardown. */
async function startRedis (t: Test, binary: string): Promise<{ port: number, admin: Redis }> {
  const server = await startRedisServer(binary, await freePort())
  t.teardown(() => server.close())
  const admin = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true })
  await admin.connect()
  t.teardown(() => { admin.disconnect() })
  return { port: server.port, admin }
}

t.test('a user who may not run a command, reach the app\'s keys or its channels: one FAIL line naming it and the grant', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor against a redis-server with ACL users')
  if (binary === undefined) return
  const { port, admin } = await startRedis(t, binary)
  const cwd = await tempDir(t)
  const doctor = async (user: string, rules: string[]): Promise<Awaited<ReturnType<typeof runInstalled>>> => {
    await admin.call('ACL', ['SETUSER', user, 'reset', 'on', `>${PASSWORD}`, ...rules])
    return await runInstalled(['doctor'], { env: { REDIS_URL: `redis://${user}:${PASSWORD}@127.0.0.1:${port}` }, cwd })
  }
  const fails = (stdout: string): string[] => lines(stdout).filter((l) => l.startsWith('FAIL'))
  const pong = `FAIL Redis: redis://127.0.0.1:${port} answered PONG, but this Redis user may not use`
  const store = 'which the app\'s store needs (its requests would answer 503 store_unavailable)'

  const noEvalsha = await doctor('no-evalsha', ['~aihubmix:*', '&aihubmix:*', '+@all', '-evalsha'])
  t.equal(noEvalsha.code, 1, 'exit 1', { output: noEvalsha.all })
  t.same(fails(noEvalsha.stdout), [`${pong} the command evalsha (NOPERM), ${store}: grant it (ACL SETUSER <user> +evalsha); ${DOCS}`])

  // Redis 7 gives a new user no channel unless told (acl-pubsub-default resetchannels): the lock release's PUBLISH.
  const noChannels = await doctor('no-channels', ['~aihubmix:*', '+@all'])
  t.same(fails(noChannels.stdout), [`${pong} channels aihubmix:* (&aihubmix:*) (NOPERM), ${store}: grant it (ACL SETUSER <user> &aihubmix:*); ${DOCS}`])

  const otherKeys = await doctor('other-keys', ['~other:*', '&aihubmix:*', '+@all'])
  t.same(fails(otherKeys.stdout), [`${pong} keys aihubmix:* (~aihubmix:*) (NOPERM), ${store}: grant it (ACL SETUSER <user> ~aihubmix:*); ${DOCS}`])

  const several = await doctor('several', ['~aihubmix:*', '+@all', '-eval', '-evalsha', '-getdel'])
  t.same(fails(several.stdout), [`${pong} the commands getdel, eval, evalsha, channels aihubmix:* (&aihubmix:*) (NOPERM), ${store}: ` +
    `grant them (ACL SETUSER <user> +getdel +eval +evalsha &aihubmix:*); ${DOCS}`])

  for (const result of [noEvalsha, noChannels, otherKeys, several]) t.notOk(result.all.includes(PASSWORD), 'no password printed')
  t.same(await admin.keys('aihubmix:*'), [], 'nothing is left behind')
})

t.test('the reviewed list of commands, keys and channels is enough; without TIME the app runs degraded: a warning', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor against a redis-server with ACL users')
  if (binary === undefined) return
  const { port, admin } = await startRedis(t, binary)
  const cwd = await tempDir(t)
  const run = async (user: string, rules: string[]): Promise<Awaited<ReturnType<typeof runInstalled>>> => {
    await admin.call('ACL', ['SETUSER', user, 'reset', 'on', `>${PASSWORD}`, ...rules])
    return await runInstalled(['doctor'], { env: { REDIS_URL: `redis://${user}:${PASSWORD}@127.0.0.1:${port}` }, cwd })
  }
  const redisLine = (stdout: string): string | undefined => lines(stdout).find((l) => l.slice(5).startsWith('Redis:'))

  const enough = await run('app', NEEDED)
  t.equal(redisLine(enough.stdout), `ok   Redis: redis://127.0.0.1:${port} answered PONG`, { output: enough.all })
  t.equal(enough.code, 0, 'exit 0 (CONFIG refused is a note)', { output: enough.all })

  const noTime = await run('no-time', NEEDED.filter((rule) => rule !== '+time'))
  t.equal(redisLine(noTime.stdout), `warn Redis: redis://127.0.0.1:${port} answered PONG, but this Redis user may not use the command time (NOPERM) ` +
    `(without TIME, refresh fences go by each machine's clock instead of Redis's): grant it (ACL SETUSER <user> +time); ${DOCS}`)
  t.equal(noTime.code, 0, 'a warning does not fail the doctor', { output: noTime.all })

  // PEXPIRE refused: the throwaway hash, which could not be given a TTL, is never made.
  const noPexpire = await run('no-pexpire', NEEDED.filter((rule) => rule !== '+pexpire'))
  t.match(redisLine(noPexpire.stdout), /^FAIL Redis: .* may not use the command pexpire \(NOPERM\)/)
  t.same(await admin.keys('aihubmix:*'), [], 'nothing is left behind')
  for (const result of [enough, noTime, noPexpire]) t.notOk(result.all.includes(PASSWORD), 'no password printed')
})
