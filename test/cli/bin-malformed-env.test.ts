import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { parseEnvFile } from 'aihubmix-oauth'
import { lines, runCli, tempDir } from './capture.js'

// Lines of an env file that are not NAME=value (nor a comment or blank) are misread by node --env-file and the example
// server, silently: skipped, or taken with the next line as one name, so a variable meant to be set there is not. `doctor` warns once per such line, by number only (the line may be a
// secret pasted whole), and `create-app` says so on stderr and keeps them. Spawned as a user runs it.

const installed = fileURLToPath(new URL('../../node_modules/.bin/aihubmix-oauth', import.meta.url))
const REDIRECT = 'https://app.example.com/auth/callback'
const PASTED = 'secret_pasted_without_a_name_0123456789'
const NO_EQUALS_LOST = (lost: string): string => `no '=': Node.js reads it as the start of the next variable's name (${lost}): make it NAME=value, a # comment or empty`
// Each misread line with what is wrong with it and its fix; the line a bad one swallows is named as lost, not as bad.
const SAID: Array<[number, string]> = [
  [2, NO_EQUALS_LOST('line 8 is lost')],
  [5, 'only spaces: Node.js reads it as the start of the next variable\'s name (line 8 is lost): make line 5 empty (remove the spaces)'],
  [6, NO_EQUALS_LOST('line 8 is lost')],
  [7, NO_EQUALS_LOST('line 8 is lost')],
  [8, 'the name before \'=\' is not letters, digits and _ (not starting with a digit): Node.js sets a variable no app reads: make it NAME=value'],
  [10, NO_EQUALS_LOST('line 11: SPACED is lost')]
]

interface Exit { code: number, stdout: string, stderr: string }

function spawnInstalled (args: string[], env: Record<string, string>, cwd: string): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(installed, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
    })
  })
}

const TEXT = Buffer.concat([
  Buffer.from([
    'PUBLIC_URL=http://localhost:3000', //                       1
    'this is not a valid line', //                               2 malformed
    '# 本番の設定 (UTF-8 comments stay UTF-8)', //              3
    '', //                                                       4
    '   ', //                                                    5 malformed (spaces)
    `AIHUBMIX_CLIENT_SECRET ${PASTED}`, //                       6 malformed (no =)
    PASTED, //                                                   7 malformed
    'MY-SETTING=1', //                                           8 malformed (not a name; 2 to 7 swallow it)
    'export SESSION_SECRET=0123456789abcdef0123456789abcdef', // 9
    ''
  ].join('\n')),
  Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x1b, 0x5b, 0x32, 0x4a, 0x0a]), // 10 malformed: binary junk, an escape sequence
  Buffer.from('SPACED = padded\n') //                                     11 lost: taken into line 10's name
])

t.test('doctor: one warning per malformed line, by number, never its content; warnings do not fail', async (t) => {
  const cwd = await tempDir(t)
  await writeFile(join(cwd, '.env'), TEXT, { mode: 0o600 })
  const result = await spawnInstalled(['doctor'], {}, cwd)
  t.equal(result.code, 0, 'exit 0: warnings only', { output: result.stdout + result.stderr })
  t.equal(result.stderr, '')
  const warnings = lines(result.stdout).filter((l) => l.startsWith('warn env file: line '))
  t.same(warnings, SAID.map(([n, said]) => `warn env file: line ${n}: ${said}`))
  t.match(result.stdout, /^ok {3}env file: .*\.env \(2 variables, mode 0600\)$/m, 'the well-formed lines are read')
  t.notOk(result.stdout.includes(PASTED), 'no content of a malformed line is shown')
  t.notMatch(result.stdout, /not a valid|MY-SETTING/, 'nor its words')
  t.ok([...result.stdout].every((c) => c === '\n' || (c >= ' ' && c <= '~')), 'nor its junk: printable ASCII only')
})

t.test('doctor: past ten malformed lines, one more line counts the rest', async (t) => {
  const cwd = await tempDir(t)
  await writeFile(join(cwd, '.env'), Array.from({ length: 25 }, (_, i) => `junk ${i}`).join('\n') + '\n', { mode: 0o600 })
  const result = await runCli(['doctor'], { cwd })
  const warnings = lines(result.stdout).filter((l) => l.startsWith('warn env file: '))
  t.equal(warnings.length, 11)
  t.equal(warnings[9], 'warn env file: line 10: no \'=\': Node.js ignores it: make it NAME=value, a # comment or empty')
  t.equal(warnings[10], 'warn env file: 15 more lines Node.js misreads, from line 11')
})

t.test('create-app: warns about malformed lines (before the request), keeps them, and writes its keys', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const path = join(cwd, '.env')
  await writeFile(path, TEXT, { mode: 0o600 })
  const result = await spawnInstalled(
    ['create-app', '--name', 'アプリ', '--redirect-uri', REDIRECT, '--base-url', mock.url],
    { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken },
    cwd
  )
  t.equal(result.code, 0, { output: result.stdout + result.stderr })
  t.same(lines(result.stderr), SAID.map(([n, said]) => `warning: ${path} line ${n}: ${said} (kept as is)`))
  t.notOk((result.stdout + result.stderr).includes(PASTED))
  const after = await readFile(path)
  t.ok(after.subarray(0, TEXT.length).equals(TEXT), 'every line of the file is kept, byte for byte')
  t.match(after.toString('utf8'), '\n# AIHubMix OAuth app "アプリ" (written by aihubmix-oauth create-app)\n', 'the comment it adds is UTF-8')
  t.equal(parseEnvFile(after.toString('utf8')).AIHUBMIX_CLIENT_ID, mock.apps[0]?.clientId)
})
