import t, { type Test } from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { TestBrowser, type Answer } from './helpers/browser.js'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from './helpers/redis.js'
import { freePort } from './helpers/free-port.js'
import { repoRoot, workspaces } from './helpers/workspaces.js'

// A brand-new app OUTSIDE this repository, as a Fastify app author builds it: every workspace package packed
// (npm pack), fastify, @fastify/cookie, @fastify/session and @types/node from the registry, and NO ioredis. The
// root README's TypeScript usage, taken from README.md as it is written (so that the test breaks when the README
// drifts), compiles (strict, NodeNext and bundler, no skipLibCheck) and runs: deployed as it says, at
// https://app.example.com behind a TLS proxy, it signs a user in against the mock provider. A CommonJS script
// require()s every package.
// Then today's newest @fastify/redis and ioredis are added: a Redis variant compiles and signs in on the first
// try. The installed commands are spawned from the app's node_modules/.bin. Needs the npm registry (npm's cache
// makes repeated runs quick): without it, it is skipped with a loud notice, or fails under CI=true.

const execFileAsync = promisify(execFile)

// It packs every package and runs `npm install` twice in a fresh app (about three minutes on a
// busy two-core machine), so the file's time limit is raised from the suite's 120 s for this file only.
t.setTimeout(600000)
const root = repoRoot
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const PACKAGES = workspaces()
const CSRF = { 'x-csrf': '1' }
const SESSION_SECRET = 'a-session-secret-of-at-least-32-characters'

async function run (cmd: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}): Promise<string> {
  const { stdout } = await execFileAsync(cmd, args, { cwd, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 })
  return stdout
}

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: false,
    outDir: 'dist',
    rootDir: 'src',
    types: ['node']
  },
  include: ['src']
}

/**
 * The same sources type-checked as a bundler's project compiles them (Vite, esbuild, tsx...): `moduleResolution`
 * bundler, `module` esnext, no skipLibCheck. An error class whose declaration file does not compile here is `any`
 * for anyone who turns skipLibCheck on, so `errors.ts` checks that its `code` is typed.
 */
const BUNDLER_TSCONFIG = {
  compilerOptions: { ...TSCONFIG.compilerOptions, module: 'ESNext', moduleResolution: 'Bundler', noEmit: true },
  include: ['src']
}
const ERRORS_SOURCE = `import { UnauthenticatedError } from '@fastify-aihubmix/token-store'
import { UpstreamError } from '@fastify-aihubmix/aihubmix-proxy'
// @ts-expect-error the code is a string
export const a: number = new UnauthenticatedError().code
// @ts-expect-error the code is a string
export const b: number = new UpstreamError().code
`

/**
 * The root README's TypeScript usage: the first \`\`\`ts block under "## Usage", as written, but for the port it
 * listens on (which must be in it, once). It reads the provider's URL, the public URL and the secrets from the
 * environment.
 */
function readmeUsage (): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const usage = readme.slice(readme.indexOf('\n## Usage\n'))
  let code = /```ts\n([\s\S]*?)```/.exec(usage)?.[1]
  if (code === undefined) throw new Error('README.md has no ```ts block under "## Usage"')
  const changes: Array<[string, string]> = [
    ['await app.listen({ port: 3000 })', "await app.listen({ port: Number(process.env.APP_PORT), host: '127.0.0.1' })"]
  ]
  for (const [from, to] of changes) {
    if (code.split(from).length !== 2) throw new Error(`README.md's TypeScript usage no longer has \`${from}\` once: update test/packed-app.test.ts`)
    code = code.replace(from, to)
  }
  return code
}

/** A Redis variant: the README's composition with the mock provider's demo app and @fastify/redis. */
function redisAppSource (): string {
  return `import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyRedis from '@fastify/redis'
import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes from '@fastify-aihubmix/oauth-routes'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { readConfig } from 'aihubmix-oauth'

const port = Number(process.env.APP_PORT)
const publicUrl = \`http://127.0.0.1:\${port}\`
const config = readConfig({ PORT: String(port), PUBLIC_URL: publicUrl, SESSION_SECRET: '${SESSION_SECRET}' })
const mock = await startMockProvider({ port: 0 })
const demo = mock.createApp({ name: 'fresh app', redirectUri: config.redirectUri })
const cookieName = 'sid'
const secret = config.sessionSecret

const app = Fastify({ logger: false })
await app.register(fastifyCookie)
await app.register(fastifyRedis, { url: process.env.REDIS_URL })
const storeOptions: TokenStoreOptions = {
  encryptionKeys: config.tokenEncryptionKeys,
  backend: 'redis',
  keyPrefix: process.env.KEY_PREFIX,
  sessionCookie: { name: cookieName, secret }
}
await app.register(tokenStore, storeOptions)
await app.register(aihubmixProxy, {
  baseUrl: mock.url,
  clientId: demo.clientId,
  clientSecret: demo.clientSecret,
  redirectUri: config.redirectUri,
  allowInsecureHttp: true
})
await app.register(async (scope) => {
  await scope.register(fastifySession, {
    secret,
    cookieName,
    store: scope.tokenStore.sessionStore,
    saveUninitialized: false,
    rolling: false,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false }
  })
  await scope.register(oauthRoutes, { publicUrl, cookieName })
  scope.get('/my/balance', async (request) => {
    const info = await request.aihubmix.userinfo()
    return { balance: info.balance_formatted }
  })
})
app.addHook('onClose', async () => { await mock.close() })
await app.listen({ port, host: '127.0.0.1' })
process.stdout.write(\`listening on \${publicUrl}\\n\`)
process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
`
}

/**
 * Starts `dist/<file>` of the app, signs a user in through it, and checks the API answers. With `publicUrl` (an
 * https origin), the app is reached as behind a TLS proxy at that origin: every request for it goes to the app's
 * port with `X-Forwarded-Proto: https` and `X-Forwarded-Host`, which the app trusts from the loopback.
 */
async function signIn (t: Test, dir: string, file: string, env: Record<string, string> = {}, publicUrl?: string): Promise<void> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(dir, 'dist', file)], { cwd: dir, env: { PATH: process.env.PATH ?? '', APP_PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  let output = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (/listening (on|at) http/.test(output)) resolve()
    })
    child.once('exit', (code) => { reject(new Error(`${file} exited (${String(code)}) before listening:\n${output}`)) })
  })
  try {
    const local = `http://127.0.0.1:${port}`
    const url = publicUrl ?? local
    const browser = new TestBrowser()
    const proxy: Record<string, string> = publicUrl === undefined ? {} : { 'x-forwarded-proto': new URL(publicUrl).protocol.slice(0, -1), 'x-forwarded-host': new URL(publicUrl).host }
    /** GET as the browser sees it: the app's public URLs go through the "proxy". */
    const get = async (href: string, headers: Record<string, string> = {}): Promise<Answer & { href: string }> => {
      const answer = href.startsWith(`${url}/`)
        ? await browser.get(local + href.slice(url.length), { ...proxy, ...headers })
        : await browser.get(href, headers)
      return { ...answer, href }
    }
    /** Where a redirect goes, from the URL the browser asked for. */
    const next = (answer: Answer & { href: string }): string => {
      const location = answer.headers.location
      if (typeof location !== 'string') throw new Error(`expected a redirect, got ${answer.status}`)
      return new URL(location, answer.href).href
    }
    const start = await get(`${url}/auth/login`)
    t.equal(start.status, 302, `${file}: /auth/login redirects to the provider`)
    const back = await get(next(start))
    t.equal(next(back).split('?')[0], `${url}/auth/callback`, `${file}: the provider sends the browser back to ${url}/auth/callback`)
    const final = await get(next(back))
    t.equal(final.status, 302, `${file}: the callback signs in`)
    t.equal(next(final), `${url}/`, 'and goes home, no error')
    if (publicUrl?.startsWith('https:') === true) t.match(String(final.headers['set-cookie']), /; Secure/i, `${file}: over https, the session cookie is Secure`)
    t.match(JSON.parse((await get(`${url}/auth/session`)).body), { authenticated: true }, `${file}: signed in on the first try`)
    const info = await get(`${url}/api/user/info`, CSRF)
    t.equal(info.status, 200)
    t.equal(JSON.parse(info.body).username, 'user123')
    t.same(JSON.parse((await get(`${url}/my/balance`)).body), { balance: JSON.parse(info.body).balance_formatted }, 'a route of the app as the user')
    const home = await get(`${url}/`)
    if (file === 'readme.js') {
      t.match(home, { status: 200, body: /href="\/auth\/login"/ }, `${file}: the page a sign-in comes back to`)
      t.match((await get(`${url}/?error=access_denied`)).body, /access_denied/, `${file}: the page shows a login error code`)
      t.notMatch((await get(`${url}/?error=%3Cb%3Ex%3C%2Fb%3E`)).body, /<b>|x<\//, `${file}: and never echoes anything else of the query`)
    }
  } finally {
    child.kill('SIGTERM')
    await exited
  }
}

/**
 * Starts `dist/<file>` with a configuration a newcomer gets wrong, and checks that it stops (exit status 1) with
 * one line on stderr that matches `line`: no stack trace, no second line, nothing that looks like a secret.
 */
async function startRefused (t: Test, dir: string, file: string, env: Record<string, string>, line: RegExp, what: string): Promise<void> {
  const port = await freePort()
  const result = await new Promise<{ code: number | null, stdout: string, stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(dir, 'dist', file)], { cwd: dir, env: { PATH: process.env.PATH ?? '', APP_PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
  t.equal(result.code, 1, `${what}: the app stops (exit status 1)`)
  const lines = result.stderr.split('\n').filter((l) => l !== '')
  t.equal(lines.length, 1, `${what}: one line on stderr (got: ${JSON.stringify(result.stderr)})`)
  t.match(lines[0], line, `${what}: the line names the fix`)
  t.notMatch(result.stdout + result.stderr, /\n\s+at |node:internal|Node\.js v\d/, `${what}: no stack trace`)
  for (const value of Object.values(env)) {
    if (value.length >= 8 && !/^https?:/.test(value)) t.notOk((result.stdout + result.stderr).includes(value), `${what}: a configured value is not echoed`)
  }
}

t.test('a fresh app outside the repository, from the packed tarballs', async (t) => {
  for (const { dir, built } of PACKAGES) {
    if (!built) {
      t.fail(`${dir}/dist is not built: run \`npx tsc -b\` (npm install and npm test do)`)
      return
    }
  }
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const work = await mkdtemp(join(tmpdir(), 'aihubmix-fresh-app-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  const tarballs = join(work, 'tarballs')
  await mkdir(tarballs)
  for (const { path } of PACKAGES) await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tarballs], path)
  const packed = (await readdir(tarballs)).map((f) => join(tarballs, f))
  t.equal(packed.length, PACKAGES.length, `one tarball per package (${PACKAGES.length})`)

  const dir = join(work, 'app')
  await mkdir(join(dir, 'src'), { recursive: true })
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'fresh-app', private: true, type: 'module' }))
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2))
  const install = async (specs: string[]): Promise<boolean> => {
    try {
      await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', ...specs], dir)
      return true
    } catch (err) {
      const message = (err as { stderr?: string }).stderr ?? (err as Error).message
      if (!/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH|network/i.test(message)) throw err
      if (process.env.CI === 'true') {
        t.fail(`the npm registry is unreachable (required under CI=true): ${message.split('\n')[0] ?? ''}`)
      } else {
        process.stderr.write('\n!!!!! SKIPPING the fresh-app test: the npm registry is unreachable (npm install failed) !!!!!\n\n')
        t.plan(0, 'SKIP: the npm registry is unreachable')
      }
      return false
    }
  }

  // 1. The README's TypeScript usage, memory only: no ioredis anywhere.
  if (!await install([...packed, 'fastify@5', '@fastify/cookie@11', '@fastify/session@11', '@types/node@20'])) return
  t.notOk(existsSync(join(dir, 'node_modules', 'ioredis')), 'ioredis is not installed')
  await writeFile(join(dir, 'src', 'readme.ts'), readmeUsage())
  await run(process.execPath, [tsc, '-p', dir], dir)
  t.pass('the README\'s TypeScript usage compiles: strict NodeNext, no skipLibCheck, without ioredis')
  await writeFile(join(dir, 'tsconfig.bundler.json'), JSON.stringify(BUNDLER_TSCONFIG, null, 2))
  await writeFile(join(dir, 'src', 'errors.ts'), ERRORS_SOURCE)
  await run(process.execPath, [tsc, '-p', join(dir, 'tsconfig.bundler.json')], dir)
  t.pass('and under moduleResolution bundler (module esnext, no skipLibCheck), with typed error classes')
  const mock = await startMockProvider()
  t.teardown(() => mock.close())
  // In production (PUBLIC_URL https, behind a proxy: a __Host- cookie, Secure), and as the README's "Try it
  // locally" runs it: no PUBLIC_URL (http://localhost:3000, a plain cookie), two keys as a comma-separated list.
  const publicUrl = 'https://app.example.com'
  const demo = mock.createApp({ name: 'readme app', redirectUri: `${publicUrl}/auth/callback` })
  await signIn(t, dir, 'readme.js', {
    PUBLIC_URL: publicUrl,
    SESSION_SECRET,
    TOKEN_ENCRYPTION_KEY: 'hex:' + 'a1'.repeat(32),
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: demo.clientId,
    AIHUBMIX_CLIENT_SECRET: demo.clientSecret
  }, publicUrl)
  const local = mock.createApp({ name: 'readme app, locally', redirectUri: 'http://localhost:3000/auth/callback' })
  await signIn(t, dir, 'readme.js', {
    SESSION_SECRET: `${SESSION_SECRET}x,${SESSION_SECRET}`,
    TOKEN_ENCRYPTION_KEY: 'base64:' + Buffer.alloc(32, 7).toString('base64') + ',hex:' + 'a1'.repeat(32),
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: local.clientId,
    AIHUBMIX_CLIENT_SECRET: local.clientSecret
  }, 'http://localhost:3000')

  // The mistakes a newcomer makes with the snippet: each stops the start with one line that names the fix.
  const good = {
    SESSION_SECRET,
    TOKEN_ENCRYPTION_KEY: 'hex:' + 'a1'.repeat(32),
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: local.clientId,
    AIHUBMIX_CLIENT_SECRET: local.clientSecret
  }
  const { SESSION_SECRET: _unset, ...noSecret } = good
  await startRefused(t, dir, 'readme.js', noSecret, /^cannot start: set SESSION_SECRET in the environment$/, 'SESSION_SECRET unset')
  await startRefused(t, dir, 'readme.js', { ...good, SESSION_SECRET: 'short' }, /^cannot start: .*secret.*32/i, 'a 5-character SESSION_SECRET')
  await startRefused(t, dir, 'readme.js', { ...good, AIHUBMIX_BASE_URL: 'http://api.aihubmix.example' }, /^cannot start: .*baseUrl.*https/, 'an http provider URL')
  await startRefused(t, dir, 'readme.js', { ...good, TOKEN_ENCRYPTION_KEY: 'too short' }, /^cannot start: .*encryptionKeys/, 'a short TOKEN_ENCRYPTION_KEY')

  const names = PACKAGES.map((w) => w.manifest.name)
  const cjs = await run(process.execPath, ['-e', `
    const names = ${JSON.stringify(names)}
    console.log(JSON.stringify(names.map((name) => Object.keys(require(name)).length > 0)))`], dir)
  t.same(JSON.parse(cjs), names.map(() => true), `require() of every package from CommonJS (Node.js ${process.version})`)

  // 2. The installed commands: the mock provider's, and create-app --env-file with a file that does not exist yet.
  const mockBin = spawn(join(dir, 'node_modules', '.bin', 'aihubmix-mock-provider'), [], { cwd: dir, env: { PATH: process.env.PATH ?? '', PORT: '0' }, stdio: ['ignore', 'pipe', 'ignore'] })
  const mockExited = new Promise((resolve) => mockBin.once('exit', resolve))
  let printed = ''
  await new Promise<void>((resolve, reject) => {
    mockBin.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      printed += chunk
      if (printed.includes('listening on ')) resolve()
    })
    mockBin.once('exit', (code) => { reject(new Error(`aihubmix-mock-provider exited (${String(code)}):\n${printed}`)) })
  })
  try {
    const mockUrl = /listening on (\S+)/.exec(printed)?.[1] as string
    const token = /^developer token \(.*\): (\S+)$/m.exec(printed)?.[1] as string
    await mkdir(join(work, 'x'))
    await run(join(dir, 'node_modules', '.bin', 'aihubmix-oauth'),
      ['create-app', '--name', 'fresh', '--redirect-uri', 'http://localhost:3000/auth/callback', '--base-url', mockUrl, '--env-file', '../x/.env'],
      dir, { AIHUBMIX_DEVELOPER_TOKEN: token })
    t.match(await readFile(join(work, 'x', '.env'), 'utf8'), /^AIHUBMIX_CLIENT_ID=client_/m, 'create-app --env-file ../x/.env, from the installed command')
  } finally {
    mockBin.kill('SIGTERM')
    await mockExited
  }

  // 3. Redis with today's newest @fastify/redis and ioredis.
  if (!await install(['@fastify/redis@latest', 'ioredis@latest'])) return
  const versions = await Promise.all(['@fastify/redis', 'ioredis'].map(async (name) => JSON.parse(await readFile(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version as string))
  t.comment(`newest: @fastify/redis ${versions[0] ?? '?'}, ioredis ${versions[1] ?? '?'}`)
  await writeFile(join(dir, 'src', 'redis.ts'), redisAppSource())
  await run(process.execPath, [tsc, '-p', dir], dir)
  t.pass(`with @fastify/redis ${versions[0] ?? '?'} and ioredis ${versions[1] ?? '?'}: compiles`)
  const prefix = uniquePrefix('fresh')
  cleanupPrefix(t, redis, prefix)
  await signIn(t, dir, 'redis.js', { REDIS_URL: redisUrl(), KEY_PREFIX: prefix })
})
