import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { MockApp, MockIssued } from '@fastify-aihubmix/mock-provider'
import { DEFAULT_DEMO_REDIRECT_URI, main } from '@fastify-aihubmix/mock-provider/standalone'
import { authorize, backParams, call, exchange, refresh, userinfo } from '../helpers/mock-client.js'
import { SOURCE_NODE_ARGS } from '../helpers/source-node-args.js'

async function run (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string>): Promise<{ lines: string[], provider: Awaited<ReturnType<typeof main>> }> {
  const lines: string[] = []
  const provider = await main({ env: { PORT: '0', ...env }, print: (line) => { lines.push(line) } })
  t.teardown(() => provider.close())
  return { lines, provider }
}

t.test('main(): a demo app with generated credentials; the secret is not printed', async (t) => {
  const { lines, provider } = await run(t, {})
  const app = provider.apps[0] as MockApp
  t.equal(provider.apps.length, 1)
  t.equal(app.redirectUri, DEFAULT_DEMO_REDIRECT_URI)
  t.equal(DEFAULT_DEMO_REDIRECT_URI, 'http://localhost:3000/auth/callback')
  t.same(lines, [
    `demo app client id: ${app.clientId}`,
    `demo app redirect URI: ${DEFAULT_DEMO_REDIRECT_URI}`,
    'demo app client secret: not printed (set MOCK_PRINT_SECRET=1, or MOCK_CONTROL_API=1 and GET /__mock/apps)',
    `mock AIHubMix provider listening on ${provider.url}`
  ])
  t.notMatch(lines.join('\n'), app.clientSecret)
  t.match(provider.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal((await call(`${provider.url}/__mock/apps`)).status, 404, 'no control API unless asked')
})

t.test('main(): credentials from the environment, control API, printed secret', async (t) => {
  const { lines, provider } = await run(t, {
    MOCK_CLIENT_ID: 'client_example',
    MOCK_CLIENT_SECRET: 'secret_example_value',
    MOCK_REDIRECT_URI: 'http://localhost:8080/auth/callback',
    MOCK_CONTROL_API: '1',
    MOCK_PRINT_SECRET: '1'
  })
  t.match(provider.apps, [{ clientId: 'client_example', clientSecret: 'secret_example_value', redirectUri: 'http://localhost:8080/auth/callback' }])
  t.same(lines, [
    'demo app client id: client_example',
    'demo app redirect URI: http://localhost:8080/auth/callback',
    'demo app client secret: secret_example_value',
    `developer token (AIHUBMIX_DEVELOPER_TOKEN for aihubmix-oauth create-app --base-url ${provider.url}): ${provider.developerToken}`,
    `control API: ${provider.url}/__mock`,
    `mock AIHubMix provider listening on ${provider.url}`
  ])
  const apps = (await call(`${provider.url}/__mock/apps`)).json()
  t.equal(apps[0].clientSecret, 'secret_example_value', 'the secret is also in the control API')
})

t.test('main(): a bad variable is refused by name, before anything listens', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '99999' }, 'PORT'],
    [{ MOCK_CONTROL_API: 'yes' }, 'MOCK_CONTROL_API'],
    [{ MOCK_PRINT_SECRET: 'true' }, 'MOCK_PRINT_SECRET'],
    [{ MOCK_REDIRECT_URI: '/auth/callback' }, 'MOCK_REDIRECT_URI'],
    [{ MOCK_CLIENT_ID: 'has space' }, 'MOCK_CLIENT_ID'],
    [{ MOCK_CLIENT_SECRET: 'has space' }, 'MOCK_CLIENT_SECRET']
  ]
  for (const [env, name] of cases) {
    const lines: string[] = []
    await t.rejects(main({ env, print: (line) => { lines.push(line) } }), {
      code: 'FST_AIHUBMIX_MOCK_INVALID_OPTION',
      message: new RegExp(`^Invalid mock provider option "${name}": `)
    }, name)
    t.same(lines, [], `${name}: nothing printed`)
  }
})

t.test('the CLI: serves, logs without secrets, and exits on SIGTERM', async (t) => {
  const cli = fileURLToPath(new URL('../../src/mock-provider/cli.ts', import.meta.url))
  const child = spawn(process.execPath, [...SOURCE_NODE_ARGS, cli], {
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', PORT: '0', MOCK_CONTROL_API: '1', MOCK_LOG: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      const found = /mock AIHubMix provider listening on (http:\/\/\S+)/.exec(output)
      if (found?.[1] !== undefined) resolve(found[1])
    })
    child.once('exit', (code) => { reject(new Error(`the CLI exited (${String(code)}) before listening:\n${output}`)) })
  })

  // a whole login through the CLI's server, with every secret-bearing request there is
  const app = (await call(`${url}/__mock/apps`)).json()[0] as MockApp
  const provider = { url } as never
  const back = backParams(await authorize(provider, app, { state: 'state_secret_value' }))
  const code = back.get('code') as string
  const tokens = (await exchange(provider, app, code)).json()
  t.equal((await userinfo(provider, tokens.access_token)).status, 200)
  t.equal((await refresh(provider, app, tokens.refresh_token)).status, 200)
  t.equal((await exchange(provider, app, code)).status, 400)
  t.equal((await call(`${url}/nowhere?code=${code}&access_token=${tokens.access_token}`)).status, 404)
  const issued = (await call(`${url}/__mock/issued`)).json() as MockIssued

  child.kill('SIGTERM')
  const [exitCode] = await once(child, 'exit')
  t.equal(exitCode, 0, 'a clean exit on SIGTERM')

  t.match(output, '"url":"/api/oauth2/authorize?[redacted]"', 'request logging is on, query strings redacted')
  const secrets = [...issued.accessTokens, ...issued.refreshTokens, ...issued.codes, ...issued.clientSecrets, ...issued.developerTokens, 'state_secret_value']
  t.equal(issued.accessTokens.length, 2)
  t.equal(issued.codes.length, 1)
  for (const secret of secrets) t.notMatch(output, secret, 'no secret in the output')
})
