import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { readConfig } from 'aihubmix-oauth'
import { freePort } from '../helpers/free-port.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'
import { lines, runInstalled, tempDir, configRefusal } from './capture.js'

// A REDIS_URL whose password holds a bare `%` (`redis://:Wrong%PW@host`) passed readConfig; the server then stopped
// with `failed to start: URI malformed` (ioredis percent-decodes the password), naming no variable, and doctor with
// `unexpected failure (URIError)`. readConfig refuses it now, naming REDIS_URL and the fix (`%` is written %25), and
// doctor says so in one FAIL line; neither prints the password.

const PASSWORD = 'Wrong%PW'
const URL_AS_TYPED = (port: number): string => `redis://:${PASSWORD}@127.0.0.1:${port}`
const PROBLEM = 'its password is not valid percent-encoding (a % must start an escape such as %40 for @): write each % in the password as %25'

/** A redis-server of this test's own on a free port with `requirepass`; stopped at teardown. */
async function startRedis (t: Test, binary: string, password: string): Promise<number> {
  const server = await startRedisServer(binary, await freePort(), ['--requirepass', password])
  t.teardown(() => server.close())
  return server.port
}

t.test('readConfig refuses a bare % in the password or user name, naming REDIS_URL and the fix, never the password', async (t) => {
  const err = configRefusal({ REDIS_URL: URL_AS_TYPED(6392) })
  t.equal(err.variable, 'REDIS_URL')
  t.equal(err.message, `REDIS_URL: ${PROBLEM}`)
  t.notOk(err.message.includes('Wrong'), 'the password is not in the message')
  t.equal(configRefusal({ REDIS_URL: 'redis://us%er:pw@127.0.0.1:6392' }).message,
    'REDIS_URL: its user name is not valid percent-encoding (a % must start an escape such as %40 for @): write each % in the user name as %25')
  t.equal(configRefusal({ REDIS_URL: 'rediss://:a%C3b@127.0.0.1:6392/2' }).message, `REDIS_URL: ${PROBLEM}`, 'an escape that is no UTF-8 too')
  t.equal(readConfig({ REDIS_URL: 'redis://:Wrong%25PW@127.0.0.1:6392' }).redisUrl, 'redis://:Wrong%25PW@127.0.0.1:6392', 'written with %25: accepted')
})

t.test('the example server stops with one line naming REDIS_URL (it was `failed to start: URI malformed`)', async (t) => {
  const server = fileURLToPath(new URL('../../example/dist/server.js', import.meta.url))
  const env = {
    PATH: process.env.PATH ?? '',
    ENV_FILE: join(tmpdir(), `no-such-env-file-${randomBytes(4).toString('hex')}`),
    PORT: '0',
    LOG_LEVEL: 'silent',
    REDIS_URL: URL_AS_TYPED(await freePort())
  }
  const child = spawn(process.execPath, [server], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  t.equal(code, 1)
  t.equal(stderr, `configuration error: REDIS_URL: ${PROBLEM}\n`)
  t.notOk((stdout + stderr).includes('Wrong'), 'no password printed')
})

t.test('doctor: one FAIL line naming REDIS_URL and the fix, no unexpected failure; written with %25 it reaches Redis', async (t) => {
  const binary = redisServerOrSkip(t, 'doctor against a redis-server whose password has a %')
  if (binary === undefined) return
  const port = await startRedis(t, binary, PASSWORD)
  const cwd = await tempDir(t)

  const typed = await runInstalled(['doctor'], { env: { REDIS_URL: URL_AS_TYPED(port) }, cwd })
  t.equal(typed.code, 1, 'exit 1', { output: typed.all })
  t.equal(typed.stderr, '')
  t.same(lines(typed.stdout).filter((l) => l.startsWith('FAIL')), [`FAIL Redis: REDIS_URL: ${PROBLEM}`], { output: typed.stdout })
  t.notOk(typed.all.includes('Wrong'), 'no password printed')

  const encoded = await runInstalled(['doctor'], { env: { REDIS_URL: `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}` }, cwd })
  t.match(lines(encoded.stdout).find((l) => l.includes(' Redis: ')), new RegExp(`^ok {3}Redis: redis://127\\.0\\.0\\.1:${port} answered PONG`), { output: encoded.all })
  t.notOk(encoded.all.includes('Wrong'), 'no password printed')
})
