import { execFile } from 'node:child_process'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { parseEnvFile } from 'aihubmix-oauth'
import { tempDir } from './capture.js'

// `aihubmix-oauth create-app ... --env-file ../x/.env` reaches the CLI. Node.js itself reads every `--env-file`
// of its command line, the script's arguments included, and exits 9 with `node: ../x/.env: not found` when the
// file does not exist yet (nodejs/node#54232, Node 20 and 22): the installed command starts node with `--`, after
// which Node looks no further. Spawned as a user runs it: the command npm installed in node_modules/.bin, through
// its shebang. (The same command from a packed tarball in an app outside this repository: packed-app.test.ts.)

const installed = fileURLToPath(new URL('../../node_modules/.bin/aihubmix-oauth', import.meta.url))
const REDIRECT = 'https://app.example.com/auth/callback'

interface Exit { code: number, stdout: string, stderr: string }

function spawnInstalled (args: string[], env: Record<string, string>, cwd: string): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(installed, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
    })
  })
}

t.test('--env-file naming a file that does not exist yet reaches create-app (both spellings)', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const root = await tempDir(t)
  const cwd = join(root, 'app')
  await mkdir(cwd)
  await mkdir(join(root, 'x'))
  for (const [i, args] of [['--env-file', '../x/.env'], ['--env-file=../x/second.env']].entries()) {
    const result = await spawnInstalled(
      ['create-app', '--name', `app ${i}`, '--redirect-uri', REDIRECT, '--base-url', mock.url, ...args],
      { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken },
      cwd
    )
    t.equal(result.code, 0, `${args.join(' ')}: exit 0`, { output: result.stdout + result.stderr })
    t.notMatch(result.stderr, /not found/, 'Node did not take the option')
    const file = join(root, 'x', i === 0 ? '.env' : 'second.env')
    t.match(result.stdout, `created ${file} (mode 0600)`)
    t.equal(parseEnvFile(await readFile(file, 'utf8')).AIHUBMIX_CLIENT_ID, mock.apps[i]?.clientId)
  }
})

t.test('doctor --env-file naming a missing file: the CLI answers, not Node', async (t) => {
  const cwd = await tempDir(t)
  const result = await spawnInstalled(['doctor', '--env-file', 'missing/.env'], {}, cwd)
  t.match(result.stdout, /^warn env file: none at .*missing\/\.env: using the environment only$/m)
  t.equal(result.stderr, '')
})
