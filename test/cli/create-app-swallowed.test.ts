import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { parseEnvFile, updateEnvFile } from 'aihubmix-oauth'
import { lines, runCli, tempDir } from './capture.js'

// Node 20's --env-file reads a line of spaces, or an indented `# comment`, and everything up to the next `=` as one
// name. create-app appends its block after the file's last line, so a .env ending in such a line lost
// AIHUBMIX_CLIENT_ID (glued to that line and the block's comment) while create-app reported success. A line of
// spaces is made empty; a line create-app would not change silently (a comment) is a refusal before the request.

const REDIRECT = 'https://app.example.com/auth/callback'
const HEAD = 'PORT=3000\nSESSION_SECRET=0123456789abcdef0123456789abcdef\n'

function nodeReads (path: string): Promise<Record<string, string | undefined>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [`--env-file=${path}`, '-e', 'process.stdout.write(JSON.stringify(process.env))'], { env: {}, encoding: 'utf8' }, (err, stdout) => {
      if (err !== null) reject(err)
      else resolve(JSON.parse(stdout) as Record<string, string>)
    })
  })
}

async function createApp (t: Test, text: string, extra: string[] = []): Promise<{ code: number, stderr: string, path: string, before: string, apps: number, clientId: string | undefined, clientSecret: string | undefined }> {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const path = join(cwd, '.env')
  await writeFile(path, text, { mode: 0o600 })
  const result = await runCli(['create-app', '--name', 'My app', '--redirect-uri', REDIRECT, '--base-url', mock.url, ...extra], { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd })
  const app = mock.apps[0]
  return { code: result.code, stderr: result.stderr, path, before: text, apps: mock.counts().oauth_apps, clientId: app?.clientId, clientSecret: app?.clientSecret }
}

t.test('a .env ending in a line of spaces: the line is made empty and node --env-file reads every key written', async (t) => {
  const run = await createApp(t, `${HEAD}   \n`)
  t.equal(run.code, 0, { output: run.stderr })
  t.equal(run.stderr, '')
  const text = await readFile(run.path, 'utf8')
  t.ok(text.startsWith(`${HEAD}\n# AIHubMix OAuth app`), 'the spaces are gone, the rest is kept')
  const node = await nodeReads(run.path)
  t.equal(node.AIHUBMIX_CLIENT_ID, run.clientId, 'node --env-file sees the client id')
  t.equal(node.AIHUBMIX_CLIENT_SECRET, run.clientSecret)
  t.equal(node.SESSION_SECRET, '0123456789abcdef0123456789abcdef')
  t.equal(parseEnvFile(text).AIHUBMIX_CLIENT_ID, run.clientId, 'and so do doctor and the example server')
})

t.test('spaces or tabs lines above the block, across a comment and blank lines, are made empty too', async (t) => {
  const run = await createApp(t, `${HEAD} \t \n# mine\n\n  \n`)
  t.equal(run.code, 0, { output: run.stderr })
  const text = await readFile(run.path, 'utf8')
  t.ok(text.startsWith(`${HEAD}\n# mine\n\n\n# AIHubMix`), 'the lines of spaces are empty, the comment kept')
  t.equal((await nodeReads(run.path)).AIHUBMIX_CLIENT_ID, run.clientId)
})

t.test('a .env ending in an indented # comment: refused before the request, naming the line, the file untouched', async (t) => {
  const run = await createApp(t, `${HEAD}  # old settings\n`)
  t.equal(run.code, 1)
  t.equal(run.apps, 0, 'no app was registered')
  t.same(lines(run.stderr), [`error: cannot write ${run.path}: line 3: spaces before '#': Node.js would read it and AIHUBMIX_CLIENT_ID as one name: remove the spaces before '#' (nothing was written)`])
  t.equal(await readFile(run.path, 'utf8'), run.before)
})

t.test('--force: a line of spaces above a key replaced in place is made empty', async (t) => {
  const run = await createApp(t, `${HEAD}   \nAIHUBMIX_CLIENT_ID=old\nAIHUBMIX_CLIENT_SECRET=old\nAIHUBMIX_REDIRECT_URI=${REDIRECT}\n`, ['--force'])
  t.equal(run.code, 0, { output: run.stderr })
  const node = await nodeReads(run.path)
  t.equal(node.AIHUBMIX_CLIENT_ID, run.clientId)
  t.equal(node.AIHUBMIX_CLIENT_SECRET, run.clientSecret)
})

t.test('updateEnvFile refuses to write a key Node.js would not read back (a line =value ends the file for Node)', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, '.env')
  await writeFile(path, 'A=1\n=oops\n')
  await t.rejects(updateEnvFile(path, { B: '2' }), { message: `cannot write ${path}: line 2: no name before '=': Node.js reads nothing after it, B included: give it a NAME or remove it (nothing was written)` })
  t.equal(await readFile(path, 'utf8'), 'A=1\n=oops\n')
  await writeFile(path, 'A=1\njunk\n')
  await t.rejects(updateEnvFile(path, { B: '2' }), { message: `cannot write ${path}: line 2: no '=': Node.js would read it and B as one name: make it NAME=value, a # comment or empty (nothing was written)` })
})
