import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { MockApp } from '@fastify-aihubmix/mock-provider'
import { parseEnvFile } from 'aihubmix-oauth'
import { authorize, backParams, exchange, userinfo } from '../helpers/mock-client.js'
import { tempDir } from '../cli/capture.js'

// `aihubmix-mock-provider`, the command npm installs: it prints its URL, the demo app's client id and secret, and
// the developer token for `aihubmix-oauth create-app`; with those printed values alone, an app outside this
// repository registers itself (create-app) and signs a user in.

const bin = (name: string): string => fileURLToPath(new URL(`../../node_modules/.bin/${name}`, import.meta.url))

t.test('the installed command prints what an app needs, and those values work', async (t) => {
  const child = spawn(bin('aihubmix-mock-provider'), [], { env: { PATH: process.env.PATH ?? '', PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (/listening on http:\/\/\S+\n/.test(output)) resolve()
    })
    child.once('exit', (code) => { reject(new Error(`exited (${String(code)}) before listening:\n${output}`)) })
  })
  const value = (pattern: RegExp): string => pattern.exec(output)?.[1] ?? t.fail(`no ${String(pattern)} in:\n${output}`) as never
  const url = value(/^mock AIHubMix provider listening on (http:\/\/\S+)$/m)
  const app = {
    clientId: value(/^demo app client id: (\S+)$/m),
    clientSecret: value(/^demo app client secret: (\S+)$/m),
    redirectUri: value(/^demo app redirect URI: (\S+)$/m)
  } as MockApp
  const developerToken = value(/^developer token \(AIHUBMIX_DEVELOPER_TOKEN for aihubmix-oauth create-app --base-url (?:\S+)\): (\S+)$/m)

  // A user signs in with the printed demo app.
  const provider = { url } as never
  const code = backParams(await authorize(provider, app, { state: 'st' })).get('code') as string
  const tokens = (await exchange(provider, app, code)).json()
  t.equal((await userinfo(provider, tokens.access_token)).status, 200, 'the printed client id and secret sign a user in')

  // create-app with the printed developer token registers a new app.
  const cwd = await tempDir(t)
  const created = await new Promise<{ code: number, stdout: string }>((resolve) => {
    execFile(bin('aihubmix-oauth'), ['create-app', '--name', 'mine', '--redirect-uri', 'http://localhost:3000/auth/callback', '--base-url', url],
      { env: { PATH: process.env.PATH ?? '', AIHUBMIX_DEVELOPER_TOKEN: developerToken }, cwd },
      (err, stdout) => { resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout }) })
  })
  t.equal(created.code, 0, 'create-app accepts the printed developer token', { output: created.stdout })
  t.match(parseEnvFile(await readFile(join(cwd, '.env'), 'utf8')).AIHUBMIX_CLIENT_ID, /^client_/)

  child.kill('SIGTERM')
  const [exitCode] = await once(child, 'exit')
  t.equal(exitCode, 0, 'a clean exit on SIGTERM')
})

interface Exit { code: number | null, stdout: string, stderr: string }

/** The installed command with `args`; killed after 10 s (a server started instead of answering). */
function runInstalled (args: string[], port = '0'): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(bin('aihubmix-mock-provider'), args, { env: { PATH: process.env.PATH ?? '', PORT: port }, timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

t.test('--help prints the usage, with every variable it honours, and exits 0 without starting a server', async (t) => {
  for (const flag of ['--help', '-h']) {
    const result = await runInstalled([flag])
    t.equal(result.code, 0, flag)
    t.equal(result.stderr, '')
    t.match(result.stdout, /^Usage: aihubmix-mock-provider \[-h \| --help\]\n/)
    for (const name of ['PORT', 'HOST', 'MOCK_CONTROL_API', 'MOCK_CLIENT_ID', 'MOCK_CLIENT_SECRET', 'MOCK_REDIRECT_URI', 'MOCK_PRINT_SECRET', 'MOCK_LOG']) {
      t.match(result.stdout, new RegExp(`^ {2}(?:\\S+, )?${name}\\b`, 'm'), `${flag}: ${name}`)
    }
    t.notMatch(result.stdout, /listening on/, 'no server')
  }
})

t.test('an unknown option or an argument: one line naming the valid ones, exit 2, no server', async (t) => {
  const cases: Array<[string[], string]> = [
    [['--port', '4000'], 'unknown option --port'],
    [['--token=secret_pasted_value'], 'unknown option --token'],
    [['-x'], 'unknown option -x'],
    [['serve'], 'unexpected argument']
  ]
  for (const [args, start] of cases) {
    const result = await runInstalled(args)
    t.equal(result.code, 2, args.join(' '))
    t.equal(result.stdout, '')
    t.equal(result.stderr, `aihubmix-mock-provider: ${start} (valid: -h, --help; the rest is set by environment variables, e.g. PORT=4000, which --help lists)\n`)
    t.notMatch(result.stderr, /secret_pasted_value/, 'a value is never echoed')
  }
})

t.test('a port in use: one line that says which variable moves it, exit 1', async (t) => {
  const { createServer } = await import('node:net')
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { taken.close() })
  const port = String((taken.address() as { port: number }).port)
  const result = await runInstalled([], port)
  t.equal(result.code, 1)
  t.match(result.stderr, /^mock-provider: .*EADDRINUSE.* \(set PORT to a free port, or PORT=0 for any free port\)\n$/)
})
