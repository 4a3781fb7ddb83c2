import { readdir } from 'node:fs/promises'
import t from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { createApp, CliInvalidArgumentError, CliInvalidOptionError } from 'aihubmix-oauth'
import { redirectUriProblem } from '../../src/cli/validate.js'
import { lines, runCli, tempDir } from './capture.js'

const REDIRECT = 'https://app.example.com/auth/callback'

t.test('arguments are validated before any request: exit 2, one line naming the argument, nothing written', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const token = mock.developerToken
  const base = ['--base-url', mock.url]

  const cases: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['http redirect URI outside localhost', ['--name', 'x', '--redirect-uri', 'http://app.example.com/auth/callback'], {}, /^error: --redirect-uri must use https \(plain http is accepted only for localhost, 127\.0\.0\.1 and \[::1\]\)$/],
    ['http on a LAN address', ['--name', 'x', '--redirect-uri', 'http://192.168.1.10:3000/auth/callback'], {}, /--redirect-uri must use https/],
    ['a fragment', ['--name', 'x', '--redirect-uri', 'https://app.example.com/auth/callback#x'], {}, /--redirect-uri must not have a fragment/],
    ['a relative URI', ['--name', 'x', '--redirect-uri', '/auth/callback'], {}, /--redirect-uri must be an absolute URL/],
    ['host and port without a scheme', ['--name', 'x', '--redirect-uri', 'localhost:3000/auth/callback'], {}, /^error: --redirect-uri must be an absolute URL such as https:\/\/app\.example\/auth\/callback \(http:\/\/ only on loopback\)$/],
    ['a host name and port without a scheme', ['--name', 'x', '--redirect-uri', 'app.example.com:8443/auth/callback'], {}, /--redirect-uri must be an absolute URL such as/],
    ['a host without a scheme', ['--name', 'x', '--redirect-uri', 'app.example.com/auth/callback'], {}, /--redirect-uri must be an absolute URL such as/],
    ['another scheme', ['--name', 'x', '--redirect-uri', 'javascript:alert(1)'], {}, /--redirect-uri must be an https URL/],
    ['user info', ['--name', 'x', '--redirect-uri', 'https://user:pw@app.example.com/cb'], {}, /--redirect-uri must not carry a user name or password/],
    ['a space', ['--name', 'x', '--redirect-uri', 'https://app.example.com/auth callback'], {}, /--redirect-uri must be printable ASCII/],
    ['a line break', ['--name', 'x', '--redirect-uri', 'https://app.example.com/cb\nPUBLIC_URL=x'], {}, /--redirect-uri must be printable ASCII/],
    ['an empty redirect URI', ['--name', 'x', '--redirect-uri', ''], {}, /--redirect-uri must not be empty/],
    // The provider compares redirect URIs exactly: a trailing slash registers one the app never sends, for good.
    ['a trailing slash', ['--name', 'x', '--redirect-uri', 'http://localhost:3000/auth/callback/'], {}, /^error: --redirect-uri must not end with \/ \(\/auth\/callback\/\): the provider compares redirect URIs exactly and the app's callback route has no trailing slash \(oauth-routes' is \/auth\/callback by default\); use http:\/\/localhost:3000\/auth\/callback$/],
    ['a custom path with a trailing slash', ['--name', 'x', '--redirect-uri', 'https://app.example.com/oauth/done//?x=1'], {}, /^error: --redirect-uri must not end with \/ \(\/oauth\/done\/\/\): .*; use https:\/\/app\.example\.com\/oauth\/done$/],
    ['the bare origin', ['--name', 'x', '--redirect-uri', 'http://localhost:3000'], {}, /^error: --redirect-uri is the site's root, not a callback route: oauth-routes' callback is \/auth\/callback by default; use http:\/\/localhost:3000\/auth\/callback$/],
    ['the root', ['--name', 'x', '--redirect-uri', 'https://app.example.com/'], {}, /^error: --redirect-uri is the site's root, not a callback route: .*; use https:\/\/app\.example\.com\/auth\/callback$/],
    ['an empty name', ['--name', '', '--redirect-uri', REDIRECT], {}, /^error: --name must not be empty$/],
    ['a blank name', ['--name', '   ', '--redirect-uri', REDIRECT], {}, /^error: --name must not be empty$/],
    ['a long name', ['--name', 'n'.repeat(101), '--redirect-uri', REDIRECT], {}, /--name must be at most 100 characters/],
    ['a name with a line break', ['--name', 'a\nb', '--redirect-uri', REDIRECT], {}, /--name must not contain control characters/],
    ['a long description', ['--name', 'x', '--redirect-uri', REDIRECT, '--description', 'd'.repeat(1001)], {}, /--description must be at most 1000 characters/],
    ['an http base URL outside loopback', ['--name', 'x', '--redirect-uri', REDIRECT, '--base-url', 'http://api.aihubmix.com'], {}, /--base-url must use https/],
    ['a base URL ending in /api', ['--name', 'x', '--redirect-uri', REDIRECT, '--base-url', `${mock.url}/api`], {}, new RegExp(`^error: --base-url must be the provider's origin, ${mock.url}, not a URL ending in /api: `)],
    ['a base URL ending in /v1/', ['--name', 'x', '--redirect-uri', REDIRECT, '--base-url', 'https://aihubmix.com/v1/'], {}, /^error: --base-url must be the provider's origin, https:\/\/aihubmix\.com, not a URL ending in \/v1: /],
    ['a base URL ending in /api/oauth2', ['--name', 'x', '--redirect-uri', REDIRECT, '--base-url', 'https://aihubmix.com/api/oauth2'], {}, /must be the provider's origin, https:\/\/aihubmix\.com, not a URL ending in \/api\/oauth2/],
    ['a base URL with a query', ['--name', 'x', '--redirect-uri', REDIRECT, '--base-url', `${mock.url}/?x=1`], {}, /--base-url must not have a query or a fragment/],
    ['no developer token', ['--name', 'x', '--redirect-uri', REDIRECT], { AIHUBMIX_DEVELOPER_TOKEN: '' }, /^error: AIHUBMIX_DEVELOPER_TOKEN is not set: .*never taken from an argument\)$/],
    ['a developer token with a line break', ['--name', 'x', '--redirect-uri', REDIRECT], { AIHUBMIX_DEVELOPER_TOKEN: `${token}\n` }, /AIHUBMIX_DEVELOPER_TOKEN must be printable ASCII/]
  ]
  for (const [label, args, env, message] of cases) {
    const argv = ['create-app', ...base, ...args]
    // --base-url given twice is a usage error: put the case's own one in place of the default.
    const i = args.indexOf('--base-url')
    if (i !== -1) argv.splice(1, 2)
    const result = await runCli(argv, { env: { AIHUBMIX_DEVELOPER_TOKEN: token, ...env }, cwd })
    t.equal(result.code, 2, `${label}: exit 2`)
    t.equal(result.stdout, '', `${label}: no stdout`)
    t.equal(lines(result.stderr).length, 1, `${label}: one line`)
    t.match(lines(result.stderr)[0], message, label)
    t.notOk(result.all.includes(token), `${label}: the token is not printed`)
  }
  t.equal(mock.counts().oauth_apps, 0, 'no request reached the provider')
  t.same(await readdir(cwd), [], 'no file written')
})

t.test('usage errors: exit 2, the usage, and no value is echoed', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const token = mock.developerToken
  const cases: Array<[string, string[], RegExp]> = [
    ['a token as an option', ['--developer-token', token, '--name', 'x', '--redirect-uri', REDIRECT], /^error: unknown option --developer-token$/],
    ['a token as --token=', [`--token=${token}`, '--name', 'x', '--redirect-uri', REDIRECT], /^error: unknown option --token$/],
    ['a token as a positional', [token, '--name', 'x', '--redirect-uri', REDIRECT], /^error: unexpected argument \(this command takes options only\)$/],
    ['a missing --name', ['--redirect-uri', REDIRECT], /^error: --name is required$/],
    ['a missing --redirect-uri', ['--name', 'x'], /^error: --redirect-uri is required$/],
    ['--name without its value', ['--redirect-uri', REDIRECT, '--name'], /^error: --name needs a value$/],
    ['--force with a value', ['--name', 'x', '--redirect-uri', REDIRECT, '--force=yes'], /^error: --force takes no value$/],
    ['an option given twice', ['--name', 'x', '--name', 'y', '--redirect-uri', REDIRECT], /^error: --name is given more than once$/],
    ['a short unknown flag', ['-x', '--name', 'x', '--redirect-uri', REDIRECT], /^error: unknown option -x$/]
  ]
  for (const [label, args, message] of cases) {
    const result = await runCli(['create-app', '--base-url', mock.url, ...args], { env: { AIHUBMIX_DEVELOPER_TOKEN: token }, cwd })
    t.equal(result.code, 2, `${label}: exit 2`)
    t.match(lines(result.stderr)[0], message, label)
    t.match(result.stderr, /Usage: aihubmix-oauth create-app --name <name> --redirect-uri <uri>/, `${label}: usage shown`)
    t.notOk(result.all.includes(token), `${label}: the token is not echoed`)
  }
  t.equal(mock.counts().oauth_apps, 0)
})

t.test('the building block validates too, naming the option', async (t) => {
  await t.rejects(createApp({ developerToken: 'dev_x', name: 'x', redirectUri: 'http://app.example.com/cb' }), CliInvalidArgumentError)
  await t.rejects(createApp({ developerToken: 'dev_x', name: 'x', redirectUri: 'http://app.example.com/cb' }), {
    code: 'FST_AIHUBMIX_CLI_INVALID_ARGUMENT',
    message: /^redirectUri must use https/
  })
  await t.rejects(createApp({ developerToken: 'dev_x', name: ' ', redirectUri: REDIRECT }), { message: 'name must not be empty' })
  await t.rejects(createApp({ developerToken: 'dev_x', name: 'x', redirectUri: `${REDIRECT}/`, baseUrl: 'http://127.0.0.1:1' }), {
    code: 'FST_AIHUBMIX_CLI_INVALID_ARGUMENT',
    message: /^redirectUri must not end with \/ \(\/auth\/callback\/\): .*; use https:\/\/app\.example\.com\/auth\/callback$/
  }, 'a trailing slash, before any request (nothing listens at that base URL: a request would fail otherwise)')
  await t.rejects(createApp({ developerToken: 'dev_x', name: 'x', redirectUri: REDIRECT, timeoutMs: 0 }), CliInvalidOptionError)
  await t.rejects(createApp({ developerToken: 'dev_x', name: 'x', redirectUri: REDIRECT, timeoutMs: 0 }), { message: /^Invalid aihubmix-oauth option "timeoutMs": expected / })
  await t.rejects(createApp({ developerToken: 'dev_x', name: 'x', redirectUri: REDIRECT, extra: 1 } as never), { message: /^Invalid aihubmix-oauth option "extra": is not an option/ })
  await t.rejects(createApp(null as never), { message: 'Invalid aihubmix-oauth option "(options)": must be an object' })
})

t.test('redirect URI rule, case by case', async (t) => {
  const accepted = [
    'https://app.example.com/auth/callback',
    'https://app.example.com:8443/x/auth/callback?tenant=1',
    'http://localhost/auth/callback',
    'http://localhost:3000/auth/callback',
    'http://127.0.0.1:3000/auth/callback',
    'http://[::1]/auth/callback'
  ]
  for (const uri of accepted) t.equal(redirectUriProblem(uri), null, uri)
  const refused = [
    'http://app.example.com/cb',
    'http://127.0.0.2/cb',
    'http://localhost.evil.example/cb',
    'http://0.0.0.0/cb',
    'https://app.example.com/cb#',
    'ftp://app.example.com/cb',
    'app.example.com/cb',
    'https://app.example.com/é'
  ]
  for (const uri of refused) t.type(redirectUriProblem(uri), 'string', uri)
})
