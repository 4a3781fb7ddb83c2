import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDir } from './capture.js'

// `aihubmix-oauth doctor | head -3`: the reader closes the pipe before the command has written everything. That
// is the reader's choice: the command exits quietly with its own status, no `write EPIPE` stack trace. Spawned as
// a user runs it, the command npm installed, with stdout a pipe whose reading end is closed before it writes.

const installed = fileURLToPath(new URL('../../node_modules/.bin/aihubmix-oauth', import.meta.url))

async function withStdoutClosed (args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null, signal: string | null, stderr: string }> {
  const child = spawn(installed, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.destroy()
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const [code, signal] = await once(child, 'close') as [number | null, string | null]
  return { code, signal, stderr }
}

t.test('a closed stdout ends the command quietly, with the command\'s own exit status', async (t) => {
  const cwd = await tempDir(t)
  const cases: Array<[string, string[], Record<string, string>, number]> = [
    ['doctor, all checks pass', ['doctor'], {}, 0],
    ['doctor, a check fails', ['doctor'], { NODE_ENV: 'production' }, 1],
    ['--help', ['--help'], {}, 0],
    ['doctor --help', ['doctor', '--help'], {}, 0]
  ]
  for (const [name, args, env, expected] of cases) {
    const result = await withStdoutClosed(args, env, cwd)
    t.same(result, { code: expected, signal: null, stderr: '' }, name)
  }
})
