import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { tempDir } from './capture.js'

const bin = fileURLToPath(new URL('../../src/cli/aihubmix-oauth.js', import.meta.url))
const built = fileURLToPath(new URL('../../src/cli/dist/bin.js', import.meta.url))

interface Exit { code: number, stdout: string, stderr: string }

async function spawnBin (args: string[], env: Record<string, string>, cwd: string): Promise<Exit> {
  return await new Promise((resolve) => {
    // Executed as the installed command is: through its shebang, not `node <file>`.
    execFile(bin, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
    })
  })
}

t.test('the committed launcher is executable and needs no build to exist', async (t) => {
  t.equal((await stat(bin)).mode & 0o111, 0o111, 'mode +x (git keeps it; npm links it before dist/ is built)')
  t.match(await readFile(bin, 'utf8'), /^#!\/usr\/bin\/env -S node --\n/, 'node -- : Node.js reads no --env-file of the arguments')
})

t.test('the command sets the process exit status', { skip: existsSync(built) ? false : 'src/cli/dist/bin.js is not built (npx tsc -b)' }, async (t) => {
  const cwd = await tempDir(t)
  const version = await spawnBin(['--version'], {}, cwd)
  t.same(version, { code: 0, stdout: '0.1.0\n', stderr: '' })
  const usage = await spawnBin(['nope'], {}, cwd)
  t.equal(usage.code, 2)
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const wrong = await spawnBin(
    ['create-app', '--name', 'x', '--redirect-uri', 'https://app.example.com/auth/callback', '--base-url', mock.url],
    { AIHUBMIX_DEVELOPER_TOKEN: 'dev_wrong_token' },
    cwd
  )
  t.equal(wrong.code, 1)
  t.equal(wrong.stderr, 'error: the provider refused the developer token (HTTP 401): check AIHUBMIX_DEVELOPER_TOKEN\n')
  const doctor = await spawnBin(['doctor'], { NODE_ENV: 'production' }, cwd)
  t.equal(doctor.code, 1)
  t.match(doctor.stdout, /^FAIL provider: /m)
})
