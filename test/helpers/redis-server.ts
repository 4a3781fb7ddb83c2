import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * A private redis-server on 127.0.0.1 for tests that stop and start Redis (the
 * shared one on 6379 must keep serving the other test files). It persists to an
 * append-only file, so a stop and a start keep the data, as a production Redis would.
 */
export interface RedisServer {
  readonly port: number
  readonly url: string
  stop (): Promise<void>
  start (): Promise<void>
  close (): Promise<void>
}

export function redisServerBinary (): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path !== '' ? path : undefined
}

function ping (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let answer = ''
    socket.setTimeout(500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => {
      answer += d.toString()
      if (answer.includes('\r\n')) {
        socket.destroy()
        resolve(answer.startsWith('+PONG') || answer.startsWith('-NOAUTH')) // up (with a password, it wants AUTH first)
      }
    })
    socket.on('error', () => resolve(false))
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
  })
}

/** Polls `check` until it answers true; throws naming `what` after `timeoutMs`. */
export async function until (check: () => Promise<boolean>, what: string, { timeoutMs = 10_000, everyMs = 50 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/**
 * The redis-server binary, or undefined after marking the test: FAILED under `CI=true` (CI installs it), else
 * SKIPPED with a loud notice naming `what` would have been tested.
 */
export function redisServerOrSkip (t: { fail (message: string): unknown, plan (n: number, comment?: string): void }, what: string): string | undefined {
  const binary = redisServerBinary()
  if (binary !== undefined) return binary
  if (process.env.CI === 'true') {
    t.fail('redis-server is not installed (required under CI=true)')
  } else {
    process.stderr.write(`\n!!!!! SKIPPING ${what}: redis-server is not installed !!!!!\n\n`)
    t.plan(0, 'SKIP: redis-server is not installed')
  }
  return undefined
}

export async function startRedisServer (binary: string, port: number, extraArgs: readonly string[] = []): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'aihubmix-redis-'))
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    child = spawn(binary, [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--dir', dir, '--logfile', '', ...extraArgs
    ], { stdio: 'ignore' })
    await until(() => ping(port), `redis-server on port ${port}`)
  }
  const stop = async (): Promise<void> => {
    const c = child
    if (c === undefined || c.exitCode !== null) return
    const exited = new Promise((resolve) => c.once('exit', resolve))
    c.kill('SIGTERM')
    await exited
    child = undefined
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    async close () {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
