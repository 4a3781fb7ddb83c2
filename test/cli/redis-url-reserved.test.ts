import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { readConfig } from 'aihubmix-oauth'
import { freePort } from '../helpers/free-port.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'
import { lines, runCli, runInstalled, tempDir, configRefusal } from './capture.js'

// A REDIS_URL whose password holds a raw `#`, `/` or `?` ends its user info early: the URL parser refuses it or reads a
// port, a path or a query out of the password. The answer was "must be a redis:// or rediss:// URL" (it is one) and
// doctor printed two FAIL lines. It now says to percent-encode them, in one line that never quotes the password. In an
// env file, `REDIS_URL=redis://:pa#ss@host` is cut at `#` by Node.js: doctor names that cut, as it does for the secrets.

const PASSWORD = 'pa#ss/wo?rd'
const HINT = 'looks like redis://user:password@host with a #, / or ? in its user name or password, which ends that part of the URL early: ' +
  'percent-encode them in it (# as %23, / as %2F, ? as %3F, and % as %25)'

/** A redis-server of this test's own on a free port with `requirepass`; stopped at teardown. */
async function startRedis (t: Test, binary: string, password: string): Promise<number> {
  const server = await startRedisServer(binary, await freePort(), ['--requirepass', password])
  t.teardown(() => server.close())
  return server.port
}

t.test('readConfig: a raw #, / or ? in the user info is said as such, with the escapes; never the password', async (t) => {
  for (const url of [
    'redis://:pa#ss@127.0.0.1:6379',
    'redis://:pa/ss@127.0.0.1:6379/2',
    'redis://:pa?ss@cache.internal',
    'rediss://app:12/34@[::1]:6380/0?family=6',
    'redis://:123#ss@127.0.0.1:6379', // parsed as port 123 and a fragment: no host
    'redis://us/er:pw@127.0.0.1:6379' // parsed as host "us" and a path
  ]) {
    const err = configRefusal({ REDIS_URL: url })
    t.equal(err.message, `REDIS_URL: ${HINT}`, url)
    t.notMatch(err.message, /pa#|pa\/|pa\?|12\/34|us\/er/, 'no part of the password or user name is quoted')
  }
  t.equal(readConfig({ REDIS_URL: `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:6379` }).redisUrl, `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:6379`, 'percent-encoded: accepted')
  // Other mistakes keep their own words.
  t.equal(configRefusal({ REDIS_URL: 'http://127.0.0.1:6379' }).message, 'REDIS_URL: must be a redis:// or rediss:// URL')
  t.equal(configRefusal({ REDIS_URL: 'redis://127.0.0.1:6379/cache' }).message, 'REDIS_URL: its path must be a database number (redis://host:6379/0), or nothing')
})

t.test('doctor: one FAIL line with the escapes; percent-encoded, the same password reaches a real Redis', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor against a redis-server whose password has # / ?')
  if (binary === undefined) return
  const port = await startRedis(t, binary, PASSWORD)
  const cwd = await tempDir(t)

  const raw = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${port}` }, cwd })
  t.equal(raw.code, 1, 'exit 1', { output: raw.all })
  t.same(lines(raw.stdout).filter((l) => l.startsWith('FAIL')), [`FAIL Redis: REDIS_URL: ${HINT}`], { output: raw.stdout })

  const encoded = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}` }, cwd })
  t.match(lines(encoded.stdout).find((l) => l.includes(' Redis: ')), new RegExp(`^ok {3}Redis: redis://127\\.0\\.0\\.1:${port} answered PONG`), { output: encoded.all })
  for (const result of [raw, encoded]) t.notOk(result.all.includes('pa#ss') || result.all.includes(encodeURIComponent(PASSWORD)), 'no password printed')
})

t.test('doctor: REDIS_URL cut at a # of its password in the env file is named, with the escape; a comment after a blank is not', async (t) => {
  const cwd = await tempDir(t)
  await writeFile(join(cwd, '.env'), 'REDIS_URL=redis://:pa#ss@127.0.0.1:6379\n', { mode: 0o600 })
  const cut = await runCli(['doctor'], { cwd })
  t.same(lines(cut.stdout).filter((l) => l.includes('cut at')),
    ['warn REDIS_URL: cut at \'#\' (Node.js reads the rest as a comment): write each # in its password as %23 (quotes would not help: in a URL a # starts a fragment)'],
    { output: cut.stdout })
  t.notOk(cut.all.includes('ss@'), 'nothing after the # is shown')

  await writeFile(join(cwd, '.env'), 'REDIS_URL=redis://127.0.0.1:6379/13  # dev\n', { mode: 0o600 })
  const comment = await runCli(['doctor'], { cwd })
  t.same(lines(comment.stdout).filter((l) => l.includes('cut at')), [], { output: comment.stdout })

  // Set in the environment, the file's value is not the one used.
  await writeFile(join(cwd, '.env'), 'REDIS_URL=redis://:pa#ss@127.0.0.1:6379\n', { mode: 0o600 })
  const overridden = await runCli(['doctor'], { cwd, env: { REDIS_URL: 'redis://127.0.0.1:1' } })
  t.same(lines(overridden.stdout).filter((l) => l.includes('cut at')), [], { output: overridden.stdout })
})
