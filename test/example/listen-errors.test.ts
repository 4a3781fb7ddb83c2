import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:net'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath } from 'node:url'
import { main } from '../../example/server.js'

// A listen the machine refused ended the example with `failed to start: listen EADDRINUSE ...` or `getaddrinfo
// ENOTFOUND host.invalid`, naming no variable, after `aihubmix-oauth doctor` had said the configuration was fine
// (it cannot know what this machine will refuse). Each is now one line naming the variable and the fix.

function env (extra: Record<string, string>): Record<string, string> {
  return {
    ENV_FILE: join(tmpdir(), `no-such-env-file-${randomBytes(4).toString('hex')}`),
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'silent',
    ...extra
  }
}

async function taken (t: { teardown: (fn: () => unknown) => void }): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return (server.address() as { port: number }).port
}

t.test('a taken PORT, a taken METRICS_PORT, a HOST or METRICS_HOST that is not this machine\'s: one line naming the variable', async (t) => {
  const port = await taken(t)
  await t.rejects(main(env({ PORT: String(port) })), { name: 'ConfigError', message: `PORT: ${port} is in use on 127.0.0.1 (another server, or another instance of this one?): stop it, or choose another PORT` })
  await t.rejects(main(env({ PORT: '0', METRICS_PORT: String(port) })), { name: 'ConfigError', message: `METRICS_PORT: ${port} is in use on 127.0.0.1 (another server, or another instance of this one?): stop it, or choose another METRICS_PORT` })
  await t.rejects(main(env({ PORT: '0', HOST: '192.0.2.99' })), { name: 'ConfigError', message: /^HOST: 192\.0\.2\.99 is not an address of this machine \(PORT=0\): use 127\.0\.0\.1, 0\.0\.0\.0/ })
  await t.rejects(main(env({ PORT: '0', METRICS_PORT: '0', METRICS_HOST: 'host.invalid' })), { name: 'ConfigError', message: /^METRICS_HOST: host\.invalid does not resolve to an address of this machine/ })
})

t.test('npm start\'s server (the built bin): the same one line, exit 1', async (t) => {
  const port = await taken(t)
  const server = fileURLToPath(new URL('../../example/dist/server.js', import.meta.url))
  const child = spawn(process.execPath, [server], { env: { PATH: process.env.PATH ?? '', ...env({ PORT: String(port) }) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  t.equal(code, 1)
  t.equal(stderr, `configuration error: PORT: ${port} is in use on 127.0.0.1 (another server, or another instance of this one?): stop it, or choose another PORT\n`)
})
