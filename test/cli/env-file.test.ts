import { chmod, lstat, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { EnvFileConflictError, parseEnvFile, updateEnvFile } from 'aihubmix-oauth'
import { formatEnvValue } from '../../src/cli/env-file.js'
import { loadEnvFile } from '../../example/server.js'
import { lines, runCli, tempDir } from './capture.js'

const REDIRECT = 'https://app.example.com/auth/callback'
const NEW = { AIHUBMIX_CLIENT_ID: 'client_new', AIHUBMIX_CLIENT_SECRET: 'secret_new', AIHUBMIX_REDIRECT_URI: REDIRECT }

t.test('parseEnvFile reads exactly what the example server reads (test/cli/env-file-node.test.ts: and node --env-file)', async (t) => {
  const dir = await tempDir(t)
  const text = [
    '# a comment',
    'PLAIN=value',
    'export EXPORTED=yes',
    '  SPACED  =  padded',
    'DOUBLE="quoted value"',
    "SINGLE='single # not a comment'",
    'MISMATCHED="half',
    'EMPTY=',
    'URL=https://x.example/cb?a=1&b=2',
    'DUP=first',
    'DUP=second',
    'not a line',
    '1BAD=x',
    'WINDOWS=crlf\r',
    'TRAILING=x # inline'
  ].join('\n')
  const path = join(dir, '.env')
  await writeFile(path, text)
  const example: Record<string, string | undefined> = {}
  t.ok(loadEnvFile(path, example))
  t.same(parseEnvFile(text), example)
  t.equal(parseEnvFile(text).DUP, 'second', 'the last definition wins, as with node --env-file')
})

t.test('formatted values read back unchanged', async (t) => {
  const values = ['client_abc', 'secret_A-b_c.9', 'https://app.example.com/auth/callback?x=1&y=2', 'a#b', "it's", 'say"hi"', "it's\\n", '\'"both"', 'a\\nb', '$HOME', '', 'x=y']
  for (const value of values) {
    t.equal(parseEnvFile(`K=${formatEnvValue(value)}`).K, value, JSON.stringify(value))
  }
  t.throws(() => formatEnvValue('a b'), TypeError)
  t.throws(() => formatEnvValue('a\nB=c'), TypeError)
  t.throws(() => formatEnvValue('\'"`'), TypeError)
})

t.test('a new file is created with mode 0600, atomically (no temporary file left)', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, '.env')
  const update = await updateEnvFile(path, NEW, { comment: 'AIHubMix OAuth app' })
  t.same(update, { path, created: true, replaced: [], added: Object.keys(NEW), duplicatesRemoved: 0, tightenedFrom: undefined })
  t.equal((await stat(path)).mode & 0o777, 0o600)
  t.equal(await readFile(path, 'utf8'), `# AIHubMix OAuth app\nAIHUBMIX_CLIENT_ID=client_new\nAIHUBMIX_CLIENT_SECRET=secret_new\nAIHUBMIX_REDIRECT_URI=${REDIRECT}\n`)
  t.same(await readdir(dir), ['.env'])
})

t.test('other lines and comments are kept; missing keys are appended', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, '.env')
  const before = '# my settings\nPORT=4000\n\nSESSION_SECRET="a very long secret of at least 32 chars"\n# AIHUBMIX_CLIENT_ID=commented out\n'
  await writeFile(path, before, { mode: 0o600 })
  const update = await updateEnvFile(path, NEW)
  t.same(update.added, Object.keys(NEW))
  t.equal(await readFile(path, 'utf8'), `${before}\nAIHUBMIX_CLIENT_ID=client_new\nAIHUBMIX_CLIENT_SECRET=secret_new\nAIHUBMIX_REDIRECT_URI=${REDIRECT}\n`)
})

t.test('existing keys: refused without force (file untouched), replaced in place with force', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, '.env')
  const before = 'PORT=4000\r\nexport AIHUBMIX_CLIENT_ID=client_old\r\n# keep me\r\nAIHUBMIX_CLIENT_SECRET=\'secret_old\'\r\nAIHUBMIX_CLIENT_ID=client_dup\r\nLOG_LEVEL=debug'
  await writeFile(path, before, { mode: 0o640 })
  const mtime = (await stat(path)).mtimeMs

  const err = await updateEnvFile(path, NEW).catch((e: unknown) => e)
  t.ok(err instanceof EnvFileConflictError)
  t.equal((err as Error).message, `refusing to overwrite AIHUBMIX_CLIENT_ID, AIHUBMIX_CLIENT_SECRET in ${path}: pass --force to replace them`)
  t.equal(await readFile(path, 'utf8'), before, 'content unchanged')
  t.equal((await stat(path)).mode & 0o777, 0o640, 'mode unchanged')
  t.equal((await stat(path)).mtimeMs, mtime)

  const update = await updateEnvFile(path, NEW, { force: true })
  t.same(update.replaced, ['AIHUBMIX_CLIENT_ID', 'AIHUBMIX_CLIENT_SECRET'])
  t.same(update.added, ['AIHUBMIX_REDIRECT_URI'])
  t.equal(update.duplicatesRemoved, 1)
  t.equal(update.tightenedFrom, 0o640)
  t.equal((await stat(path)).mode & 0o777, 0o600, 'tightened to 0600')
  t.equal(await readFile(path, 'utf8'), [
    'PORT=4000',
    'export AIHUBMIX_CLIENT_ID=client_new',
    '# keep me',
    'AIHUBMIX_CLIENT_SECRET=secret_new',
    'LOG_LEVEL=debug',
    '',
    `AIHUBMIX_REDIRECT_URI=${REDIRECT}`,
    ''
  ].join('\r\n'), 'CRLF kept, export prefix kept, the duplicate dropped')
})

t.test('a symlinked env file: the target is updated, the link stays', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'real.env'), 'PORT=1\n', { mode: 0o600 })
  await symlink('real.env', join(dir, '.env'))
  await updateEnvFile(join(dir, '.env'), NEW)
  t.ok((await lstat(join(dir, '.env'))).isSymbolicLink(), 'still a link')
  t.equal(parseEnvFile(await readFile(join(dir, 'real.env'), 'utf8')).AIHUBMIX_CLIENT_ID, 'client_new')
})

t.test('create-app with an existing env file: refused before any request, unless --force', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const path = join(cwd, '.env')
  const before = '# production settings\nPUBLIC_URL=https://app.example.com\nAIHUBMIX_CLIENT_SECRET=secret_existing_value\n'
  await writeFile(path, before)
  await chmod(path, 0o644)
  const argv = ['create-app', '--name', 'My app', '--redirect-uri', REDIRECT, '--base-url', mock.url]
  const env = { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }

  const refused = await runCli(argv, { env, cwd })
  t.equal(refused.code, 1)
  t.equal(refused.stdout, '')
  t.same(lines(refused.stderr), [`error: refusing to overwrite AIHUBMIX_CLIENT_SECRET in ${path}: pass --force to replace them`])
  t.equal(mock.counts().oauth_apps, 0, 'no app was created')
  t.equal(await readFile(path, 'utf8'), before, 'the file is untouched')
  t.equal((await stat(path)).mode & 0o777, 0o644, 'its mode too')
  t.notOk(refused.all.includes('secret_existing_value'))

  const forced = await runCli([...argv, '--force'], { env, cwd })
  t.equal(forced.code, 0, 'exit 0', { output: forced.all })
  const app = mock.apps[0]
  if (app === undefined) throw new Error('no app')
  t.equal(await readFile(path, 'utf8'), [
    '# production settings',
    'PUBLIC_URL=https://app.example.com',
    `AIHUBMIX_CLIENT_SECRET=${app.clientSecret}`,
    '',
    '# AIHubMix OAuth app "My app" (written by aihubmix-oauth create-app)',
    `AIHUBMIX_CLIENT_ID=${app.clientId}`,
    `AIHUBMIX_REDIRECT_URI=${REDIRECT}`,
    `AIHUBMIX_BASE_URL=${mock.url}`,
    ''
  ].join('\n'))
  t.equal((await stat(path)).mode & 0o777, 0o600)
  t.match(forced.stdout, `updated ${path} (mode 0600): replaced AIHUBMIX_CLIENT_SECRET; added AIHUBMIX_CLIENT_ID, AIHUBMIX_REDIRECT_URI, AIHUBMIX_BASE_URL`)
  t.match(forced.stdout, `note: ${path} was readable by others (mode 0644); it is now 0600`)
  t.notOk(forced.all.includes(app.clientSecret))
  t.notOk(forced.all.includes('secret_existing_value'))
})

t.test('create-app with an env file it cannot write: refused before any request', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const result = await runCli(
    ['create-app', '--name', 'x', '--redirect-uri', REDIRECT, '--base-url', mock.url, '--env-file', 'missing-dir/.env'],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(result.code, 1)
  t.same(lines(result.stderr), [`error: cannot write ${join(cwd, 'missing-dir/.env')}: the directory does not exist`])
  t.equal(mock.counts().oauth_apps, 0)

  const dirAsFile = await runCli(
    ['create-app', '--name', 'x', '--redirect-uri', REDIRECT, '--base-url', mock.url, '--env-file', '.'],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(dirAsFile.code, 1)
  t.same(lines(dirAsFile.stderr), [`error: cannot read ${cwd}: it is a directory`])
  t.equal(mock.counts().oauth_apps, 0)
})
