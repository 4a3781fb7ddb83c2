import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parseEnvFile, readConfig } from 'aihubmix-oauth'
import { loadEnvFile } from '../../example/server.js'
import { INSTALLED_BIN, tempDir } from './capture.js'

// env-file.ts's LINE regex ends in `(.*)\s*$`: the greedy `.*` takes the trailing blanks, so `\s*$` trims
// nothing. A line with a blank after its value (an editor, a copy from a web page) keeps it: `PORT=3000 ` stops the
// server, and a quoted value followed by a blank keeps its quotes (the quote check needs the quote at the very end).

t.test('a blank after a value is not part of it; quotes before it are still removed', async (t) => {
  const values = parseEnvFile('PORT=3000 \nSECRET="quoted value"  \nTABBED=x\t\n')
  t.equal(values.PORT, '3000')
  t.equal(values.SECRET, 'quoted value')
  t.equal(values.TABBED, 'x\t', 'a tab stays, as with node --env-file, which trims spaces only')
})

t.test('a quoted TOKEN_ENCRYPTION_KEY with a trailing blank is not silently taken as another key', async (t) => {
  const key = randomBytes(32).toString('base64')
  const env: Record<string, string | undefined> = {}
  const dir = await tempDir(t)
  const path = join(dir, '.env')
  await writeFile(path, `TOKEN_ENCRYPTION_KEY="base64:${key}" \nSESSION_SECRET=${'s'.repeat(40)}\n`, { mode: 0o600 })
  loadEnvFile(path, env) // as the example server reads it
  const config = readConfig(env)
  t.same(config.tokenEncryptionKeys, [`base64:${key}`], 'the key that was written, not a 50-character passphrase with quotes in it')

  // What `aihubmix-oauth doctor` says about the same file: every check ok, exit 0.
  const result = await new Promise<{ code: number, stdout: string }>((resolve) => {
    execFile(INSTALLED_BIN, ['doctor', '--env-file', path], { env: { PATH: process.env.PATH ?? '' }, cwd: dir }, (err, stdout) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout })
    })
  })
  t.comment(result.stdout)
})

t.test('PORT=3000 followed by a blank starts the server (doctor agrees)', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, '.env')
  await writeFile(path, 'PORT=3000 \n', { mode: 0o600 })
  const result = await new Promise<{ code: number, stdout: string }>((resolve) => {
    execFile(INSTALLED_BIN, ['doctor', '--env-file', path], { env: { PATH: process.env.PATH ?? '' }, cwd: dir }, (err, stdout) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout })
    })
  })
  t.notMatch(result.stdout, /FAIL configuration: PORT/, 'PORT is read as 3000')
  t.equal(result.code, 0)
})

// an empty --env-file value (`--env-file=`, `--env-file ""`, `--env=`) reaches doctor(), whose option check
// (CliInvalidOptionError, envFile minLength 1) run() does not map: "unexpected failure (FastifyError)", exit 1,
// where a usage error says what is wrong, exit 2.
t.test('doctor --env-file= (empty): a usage error naming the option, exit 2', async (t) => {
  const dir = await tempDir(t)
  for (const args of [['doctor', '--env-file='], ['doctor', '--env-file', ''], ['doctor', '--env=']]) {
    const result = await new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
      execFile(INSTALLED_BIN, args, { env: { PATH: process.env.PATH ?? '' }, cwd: dir }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr })
      })
    })
    t.comment(`${JSON.stringify(args)} -> ${result.code}: ${result.stderr.split('\n')[0] ?? ''}`)
    t.equal(result.code, 2, `${JSON.stringify(args)}: exit 2`)
    t.notMatch(result.stderr, /unexpected failure/, 'not an unexpected failure')
  }
})
