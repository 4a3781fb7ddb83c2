import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
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
const repository = fileURLToPath(new URL('../..', import.meta.url))
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

t.test('doctor --env-file naming a missing file: the CLI answers, not Node, with one FAIL line naming it', async (t) => {
  const cwd = await tempDir(t)
  const result = await spawnInstalled(['doctor', '--env-file', 'missing/.env'], {}, cwd)
  // It warned and went on to check the environment alone, exit 0: another configuration than the one meant.
  t.equal(result.stdout, `FAIL env file: no file at ${join(cwd, 'missing', '.env')}: check the path (nothing else was checked)\n`)
  t.equal(result.code, 1)
  t.equal(result.stderr, '')
})

// `npx aihubmix-oauth doctor --env-file x.env`: npx is itself a node process, started without `--`, so Node.js 20
// and 22 take the option there, before npx runs at all (`node: x.env: not found`, exit 9). `--env` and `-e` are the
// command's aliases of --env-file that Node.js does not read.

t.test('--env and -e name the env file of create-app, even one that does not exist yet', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const root = await tempDir(t)
  const cwd = join(root, 'app')
  await mkdir(cwd)
  await mkdir(join(root, 'x'))
  const spellings = [['--env', '../x/long.env'], ['-e', '../x/short.env'], ['--env=../x/equals.env']]
  for (const [i, args] of spellings.entries()) {
    const result = await spawnInstalled(
      ['create-app', '--name', `app ${i}`, '--redirect-uri', REDIRECT, '--base-url', mock.url, ...args],
      { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken },
      cwd
    )
    t.equal(result.code, 0, `${args.join(' ')}: exit 0`, { output: result.stdout + result.stderr })
    const file = join(root, 'x', `${['long', 'short', 'equals'][i] as string}.env`)
    t.match(result.stdout, `created ${file} (mode 0600)`)
    t.equal(parseEnvFile(await readFile(file, 'utf8')).AIHUBMIX_CLIENT_ID, mock.apps[i]?.clientId)
  }
})

t.test('doctor reads the file named by --env-file, --env or -e alike; naming it twice is a usage error', async (t) => {
  const cwd = await tempDir(t)
  await writeFile(join(cwd, 'app.env'), 'PUBLIC_URL=http://localhost:4321\nSESSION_SECRET=0123456789abcdef0123456789abcdef\n', { mode: 0o600 })
  // The spellings at once: each spawn starts a node process, and one after the other they took most of the file's
  // 120 s on a loaded machine (a CI run timed out here, with every assertion passing).
  const spellings = [['--env-file', 'app.env'], ['--env', 'app.env'], ['-e', 'app.env'], ['--env=app.env']]
  const results = await Promise.all(spellings.map((args) => spawnInstalled(['doctor', ...args], {}, cwd)))
  for (const [i, args] of spellings.entries()) {
    const result = results[i] as Exit
    t.equal(result.code, 0, args.join(' '), { output: result.stdout + result.stderr })
    t.match(result.stdout, /^ok {3}env file: .*app\.env \(2 variables, mode 0600\)$/m, args.join(' '))
    t.match(result.stdout, /^ok {3}redirect URI: http:\/\/localhost:4321\/auth\/callback /m)
  }
  const missingSpellings = [['--env', 'missing/.env'], ['-e', 'missing/.env'], ['--env=missing/.env']]
  const missingResults = await Promise.all(missingSpellings.map((args) => spawnInstalled(['doctor', ...args], {}, cwd)))
  for (const [i, args] of missingSpellings.entries()) {
    const missing = missingResults[i] as Exit
    t.equal(missing.stdout, `FAIL env file: no file at ${join(cwd, 'missing', '.env')}: check the path (nothing else was checked)\n`, `${args.join(' ')} naming a missing file: one FAIL line`)
    t.equal(missing.code, 1, `${args.join(' ')}: exit 1`)
  }
  // ENV_FILE naming a missing file stays a warning (the example server starts without it) and the checks go on.
  const [viaVariable, twice, empty] = await Promise.all([
    spawnInstalled(['doctor'], { ENV_FILE: 'missing/.env', PUBLIC_URL: 'http://localhost:4321' }, cwd),
    spawnInstalled(['doctor', '--env-file', 'app.env', '-e', 'app.env'], {}, cwd),
    spawnInstalled(['doctor', '-e'], {}, cwd)
  ])
  t.equal(viaVariable.code, 0, 'ENV_FILE missing: exit 0', { output: viaVariable.stdout + viaVariable.stderr })
  t.match(viaVariable.stdout, /^warn env file: none at .*missing\/\.env: using the environment only$/m)
  t.match(viaVariable.stdout, /^ok {3}redirect URI: http:\/\/localhost:4321\/auth\/callback /m)
  t.equal(twice.code, 2)
  t.equal(twice.stderr.split('\n')[0], 'error: --env-file and --env (-e) are the same option: give one')
  t.equal(empty.code, 2)
  t.equal(empty.stderr.split('\n')[0], 'error: --env needs a value')
})

t.test('through npx, --env and -e reach the command where --env-file would stop at npx\'s own node', async (t) => {
  const cwd = await tempDir(t)
  const missing = join(cwd, 'not-yet.env')
  for (const flag of ['--env', '-e']) {
    // npx finds the command in this repository's node_modules/.bin (--no-install: never the registry).
    const result = await new Promise<Exit>((resolve) => {
      execFile('npx', ['--no-install', 'aihubmix-oauth', 'doctor', flag, missing], { cwd: repository, env: process.env }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
      })
    })
    t.notMatch(result.stderr, /not found/, `${flag}: Node did not take the option`)
    t.equal(result.stdout, `FAIL env file: no file at ${missing}: check the path (nothing else was checked)\n`, flag)
    t.equal(result.code, 1, `${flag}: exit 1`)
  }
})
