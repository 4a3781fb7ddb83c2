import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { Agent } from 'undici'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { parseEnvFile } from 'aihubmix-oauth'
import { lines, runCli, tempDir } from './capture.js'

const REDIRECT = 'https://app.example.com/auth/callback'

t.test('create-app registers the app on the provider and writes its credentials to .env (0600)', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)

  const result = await runCli(
    ['create-app', '--name', '  My app  ', '--redirect-uri', REDIRECT, '--description', 'Sign in with AIHubMix', '--base-url', mock.url],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(result.code, 0, 'exit 0', { output: result.all })
  t.equal(result.stderr, '')
  t.equal(mock.counts().oauth_apps, 1)

  const [app] = mock.apps
  if (app === undefined) throw new Error('no app registered')
  t.equal(app.name, 'My app', 'the name is sent trimmed')
  t.equal(app.description, 'Sign in with AIHubMix')
  t.equal(app.redirectUri, REDIRECT)

  const path = join(cwd, '.env')
  const info = await stat(path)
  t.equal(info.mode & 0o777, 0o600)
  const values = parseEnvFile(await readFile(path, 'utf8'))
  t.same(values, {
    AIHUBMIX_CLIENT_ID: app.clientId,
    AIHUBMIX_CLIENT_SECRET: app.clientSecret,
    AIHUBMIX_REDIRECT_URI: REDIRECT,
    AIHUBMIX_BASE_URL: mock.url
  }, 'with --base-url, the origin the app was registered with is written too')
  t.equal(lines(result.stdout).at(-1), 'next: set PUBLIC_URL, SESSION_SECRET and TOKEN_ENCRYPTION_KEY, then run aihubmix-oauth doctor (it reads them as the example server does: an app of your own may need more, see the README)')

  // Only the client id and where the secret went; never the secret or the developer token.
  t.match(result.stdout, `client id: ${app.clientId}`)
  t.match(result.stdout, `client secret: written to ${path} as AIHUBMIX_CLIENT_SECRET`)
  t.notOk(result.all.includes(app.clientSecret), 'the client secret is not printed')
  t.notOk(result.all.includes(mock.developerToken), 'the developer token is not printed')
  t.ok(lines(result.stdout).every((l) => !l.includes('secret_')))
})

t.test('without --description an empty description is sent; --env-file picks another file', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const result = await runCli(
    ['create-app', '--name', 'Local dev', '--redirect-uri', 'http://localhost:3000/auth/callback', '--base-url', `${mock.url}/`, '--env-file', 'config/../prod.env'],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(result.code, 0, 'exit 0', { output: result.all })
  t.equal(mock.apps[0]?.description, '')
  const values = parseEnvFile(await readFile(join(cwd, 'prod.env'), 'utf8'))
  t.equal(values.AIHUBMIX_CLIENT_ID, mock.apps[0]?.clientId)
  t.equal(values.AIHUBMIX_REDIRECT_URI, 'http://localhost:3000/auth/callback')
  t.equal(values.AIHUBMIX_BASE_URL, mock.url, 'written without the trailing slash')
  await t.rejects(stat(join(cwd, '.env')), { code: 'ENOENT' }, 'the default .env is untouched')
})

t.test('plain http redirect URIs are accepted for localhost, 127.0.0.1 and [::1]', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const uris = ['http://localhost:3000/auth/callback', 'http://127.0.0.1/auth/callback', 'http://[::1]:8080/auth/callback?x=1']
  for (const [i, uri] of uris.entries()) {
    const result = await runCli(
      ['create-app', '--name', `dev ${i}`, '--redirect-uri', uri, '--base-url', mock.url, '--env-file', `dev${i}.env`],
      { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
    )
    t.equal(result.code, 0, `${uri}: exit 0`, { output: result.all })
    t.equal(parseEnvFile(await readFile(join(cwd, `dev${i}.env`), 'utf8')).AIHUBMIX_REDIRECT_URI, uri)
  }
  t.equal(mock.counts().oauth_apps, uris.length)
})

t.test('AIHUBMIX_BASE_URL: the same origin already in the file is kept; another one is a conflict like the credentials', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const env = { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }
  const argv = ['create-app', '--name', 'x', '--redirect-uri', REDIRECT, '--base-url', mock.url]

  await writeFile(join(cwd, 'same.env'), `AIHUBMIX_BASE_URL=${mock.url}/\n`)
  const same = await runCli([...argv, '--env-file', 'same.env'], { env, cwd })
  t.equal(same.code, 0, 'the same origin (a trailing slash aside) is no conflict', { output: same.all })
  t.match(same.stdout, 'added AIHUBMIX_CLIENT_ID, AIHUBMIX_CLIENT_SECRET, AIHUBMIX_REDIRECT_URI\n')
  t.equal((await readFile(join(cwd, 'same.env'), 'utf8')).split('\n')[0], `AIHUBMIX_BASE_URL=${mock.url}/`, 'that line is left as it is')

  const before = 'AIHUBMIX_BASE_URL=https://provider.example\nAIHUBMIX_CLIENT_ID=client_old\n'
  await writeFile(join(cwd, 'other.env'), before)
  const refused = await runCli([...argv, '--env-file', 'other.env'], { env, cwd })
  t.equal(refused.code, 1)
  t.same(lines(refused.stderr), [`error: refusing to overwrite AIHUBMIX_CLIENT_ID, AIHUBMIX_BASE_URL in ${join(cwd, 'other.env')}: pass --force to replace them`])
  t.equal(mock.counts().oauth_apps, 1, 'no app was created for it')
  t.equal(await readFile(join(cwd, 'other.env'), 'utf8'), before)

  // Without --base-url the app would be registered at the default origin, which is written too: another one in the
  // file is the same conflict (checked before any request: the default origin is never reached here).
  const noBase = await runCli(['create-app', '--name', 'x', '--redirect-uri', REDIRECT, '--env-file', 'other.env'], { env, cwd })
  t.same(lines(noBase.stderr), [`error: refusing to overwrite AIHUBMIX_CLIENT_ID, AIHUBMIX_BASE_URL in ${join(cwd, 'other.env')}: pass --force to replace them`])
  t.equal(noBase.code, 1)

  const forced = await runCli([...argv, '--env-file', 'other.env', '--force'], { env, cwd })
  t.equal(forced.code, 0, { output: forced.all })
  t.match(forced.stdout, 'replaced AIHUBMIX_BASE_URL, AIHUBMIX_CLIENT_ID; added AIHUBMIX_CLIENT_SECRET, AIHUBMIX_REDIRECT_URI')
  t.equal(parseEnvFile(await readFile(join(cwd, 'other.env'), 'utf8')).AIHUBMIX_BASE_URL, mock.url)
})

t.test('without --base-url: registered at https://api.aihubmix.com, and that origin is written as AIHUBMIX_BASE_URL', async (t) => {
  // The example server reads an unset AIHUBMIX_BASE_URL as "start the embedded mock provider" and ignores the
  // credentials, which work at the origin they were registered with only: create-app writes the default too.
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  // api.aihubmix.com cannot be reached from here: the requests for it go to the mock provider instead, through the
  // command line's own dispatcher hook (what a ProxyAgent would use), and each is recorded as it was asked.
  const asked: string[] = []
  const agent = new Agent()
  t.teardown(() => agent.close())
  const dispatcher = agent.compose((dispatch) => (opts, handler) => {
    asked.push(`${String(opts.origin)}${opts.path}`)
    return dispatch({ ...opts, origin: mock.url }, handler)
  })
  const env = { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }
  const result = await runCli(['create-app', '--name', 'x', '--redirect-uri', REDIRECT], { env, cwd, dispatcher })
  t.equal(result.code, 0, { output: result.all })
  t.same(asked, ['https://api.aihubmix.com/api/oauth_apps'], 'one request, to the default origin')
  const [app] = mock.apps
  t.same(parseEnvFile(await readFile(join(cwd, '.env'), 'utf8')), {
    AIHUBMIX_CLIENT_ID: app?.clientId,
    AIHUBMIX_CLIENT_SECRET: app?.clientSecret,
    AIHUBMIX_REDIRECT_URI: REDIRECT,
    AIHUBMIX_BASE_URL: 'https://api.aihubmix.com'
  })
  t.match(result.stdout, 'added AIHUBMIX_CLIENT_ID, AIHUBMIX_CLIENT_SECRET, AIHUBMIX_REDIRECT_URI, AIHUBMIX_BASE_URL\n')
  t.equal(lines(result.stdout).at(-1), 'next: set PUBLIC_URL, SESSION_SECRET and TOKEN_ENCRYPTION_KEY, then run aihubmix-oauth doctor (it reads them as the example server does: an app of your own may need more, see the README)')

  // A file that already names that origin (a trailing slash aside) keeps its line: no conflict.
  await writeFile(join(cwd, 'same.env'), 'AIHUBMIX_BASE_URL=https://api.aihubmix.com/\n')
  const same = await runCli(['create-app', '--name', 'y', '--redirect-uri', REDIRECT, '--env-file', 'same.env'], { env, cwd, dispatcher })
  t.equal(same.code, 0, { output: same.all })
  t.equal((await readFile(join(cwd, 'same.env'), 'utf8')).split('\n')[0], 'AIHUBMIX_BASE_URL=https://api.aihubmix.com/', 'that line is left as it is')
  t.equal(asked.length, 2)
})

t.test('a redirect URI path other than /auth/callback: registered, with one warning line saying what the app must match', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const uri = 'https://app.example.com/oauth/callback'
  const result = await runCli(
    ['create-app', '--name', 'custom path', '--redirect-uri', uri, '--base-url', mock.url],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(result.code, 0, 'exit 0: registered all the same', { output: result.all })
  t.equal(mock.apps[0]?.redirectUri, uri)
  t.same(lines(result.stderr), [
    'warning: the redirect URI\'s path is /oauth/callback, not /auth/callback, oauth-routes\' default callback: registering it all the ' +
    'same; the app must serve its callback there (oauth-routes\' prefix and routes.callback, and aihubmix-proxy\'s redirectUri)'
  ])
  t.equal(parseEnvFile(await readFile(join(cwd, '.env'), 'utf8')).AIHUBMIX_REDIRECT_URI, uri)
  // /auth/callback itself: no warning.
  const usual = await runCli(
    ['create-app', '--name', 'usual path', '--redirect-uri', 'http://localhost:3000/auth/callback', '--base-url', mock.url, '--env-file', 'usual.env'],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(usual.code, 0, { output: usual.all })
  t.equal(usual.stderr, '')
  // With a query: registered, and a warning that the app must send it as it is (the provider compares exactly).
  const query = await runCli(
    ['create-app', '--name', 'with a query', '--redirect-uri', 'http://localhost:3000/auth/callback?x=1', '--base-url', mock.url, '--env-file', 'query.env'],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken }, cwd }
  )
  t.equal(query.code, 0, { output: query.all })
  t.same(lines(query.stderr), [
    'warning: the redirect URI has a query (?x=1): registering it all the same; the app must send it exactly so, query included ' +
    '(aihubmix-proxy\'s redirectUri, the example\'s AIHUBMIX_REDIRECT_URI), not PUBLIC_URL + /auth/callback'
  ])
})
