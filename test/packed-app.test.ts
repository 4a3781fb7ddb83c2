import t, { type Test } from 'tap'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { TestBrowser } from './helpers/browser.js'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from './helpers/redis.js'

// A brand-new app OUTSIDE this repository, as a Fastify app author builds it: the five packed tarballs, fastify,
// @fastify/cookie, @fastify/session and @types/node from the registry, and NO ioredis. Its TypeScript (strict,
// NodeNext, no skipLibCheck) compiles, it signs a user in against the mock provider (from its tarball), and a
// CommonJS script require()s every package. Then today's newest @fastify/redis and ioredis are added: the Redis
// variant compiles and signs in on the first try. The installed commands are spawned from the app's
// node_modules/.bin. Needs the npm registry (npm's cache makes repeated runs quick): without it, it is skipped
// with a loud notice, or fails under CI=true.

const execFileAsync = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const PACKAGES = ['token-store', 'aihubmix-proxy', 'oauth-routes', 'mock-provider', 'cli']
const CSRF = { 'x-csrf': '1' }

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

/** The app: the root README's composition, with the mock provider's demo app; `redis` adds @fastify/redis. */
function appSource (redis: boolean): string {
  return `import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
${redis ? "import fastifyRedis from '@fastify/redis'\n" : ''}import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes from '@fastify-aihubmix/oauth-routes'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { readConfig } from 'aihubmix-oauth'

const port = Number(process.env.APP_PORT)
const publicUrl = \`http://127.0.0.1:\${port}\`
const config = readConfig({ PORT: String(port), PUBLIC_URL: publicUrl, SESSION_SECRET: 'a-session-secret-of-at-least-32-characters' })
const mock = await startMockProvider({ port: 0 })
const demo = mock.createApp({ name: 'fresh app', redirectUri: config.redirectUri })
const cookieName = 'sid'
const secret = config.sessionSecret

const app = Fastify({ logger: false })
await app.register(fastifyCookie)
${redis ? 'await app.register(fastifyRedis, { url: process.env.REDIS_URL })\n' : ''}const storeOptions: TokenStoreOptions = {
  encryptionKeys: config.tokenEncryptionKeys,
  ${redis ? "backend: 'redis',\n  keyPrefix: process.env.KEY_PREFIX,\n  " : ''}sessionCookie: { name: cookieName, secret }
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

async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Starts `dist/<file>` of the app, signs a user in through it, and checks the API answers. */
async function signIn (t: Test, dir: string, file: string, env: Record<string, string> = {}): Promise<void> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(dir, 'dist', file)], { cwd: dir, env: { PATH: process.env.PATH ?? '', APP_PORT: String(port), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  let output = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (output.includes('listening on ')) resolve()
    })
    child.once('exit', (code) => { reject(new Error(`${file} exited (${String(code)}) before listening:\n${output}`)) })
  })
  try {
    const url = `http://127.0.0.1:${port}`
    const browser = new TestBrowser()
    const start = await browser.get(`${url}/auth/login`)
    t.equal(start.status, 302, `${file}: /auth/login redirects to the provider`)
    const back = await browser.get(TestBrowser.location(start))
    const final = await browser.get(TestBrowser.location(back))
    t.equal(final.status, 302, `${file}: the callback signs in`)
    t.equal(TestBrowser.location(final), `${url}/`, 'and goes home, no error')
    t.match(JSON.parse((await browser.get(`${url}/auth/session`)).body), { authenticated: true }, `${file}: signed in on the first try`)
    const info = await browser.get(`${url}/api/user/info`, CSRF)
    t.equal(info.status, 200)
    t.equal(JSON.parse(info.body).username, 'user123')
    t.same(JSON.parse((await browser.get(`${url}/my/balance`)).body), { balance: JSON.parse(info.body).balance_formatted }, 'a route of the app as the user')
  } finally {
    child.kill('SIGTERM')
    await exited
  }
}

t.test('a fresh app outside the repository, from the packed tarballs', async (t) => {
  for (const pkg of PACKAGES) {
    if (!existsSync(join(root, 'src', pkg, 'dist', 'index.js'))) {
      t.fail(`src/${pkg}/dist is not built: run \`npx tsc -b\` (npm install and npm test do)`)
      return
    }
  }
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const work = await mkdtemp(join(tmpdir(), 'aihubmix-fresh-app-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  const tarballs = join(work, 'tarballs')
  await mkdir(tarballs)
  for (const pkg of PACKAGES) await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tarballs], join(root, 'src', pkg))
  const packed = (await readdir(tarballs)).map((f) => join(tarballs, f))
  t.equal(packed.length, PACKAGES.length, 'five tarballs')

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

  // 1. Memory only: no ioredis anywhere.
  if (!await install([...packed, 'fastify@5', '@fastify/cookie@11', '@fastify/session@11', '@types/node@20'])) return
  t.notOk(existsSync(join(dir, 'node_modules', 'ioredis')), 'ioredis is not installed')
  await writeFile(join(dir, 'src', 'memory.ts'), appSource(false))
  await run(process.execPath, [tsc, '-p', dir], dir)
  t.pass('strict NodeNext TypeScript, no skipLibCheck, compiles without ioredis')
  await signIn(t, dir, 'memory.js')

  const cjs = await run(process.execPath, ['-e', `
    const names = ['@fastify-aihubmix/token-store', '@fastify-aihubmix/aihubmix-proxy', '@fastify-aihubmix/oauth-routes', '@fastify-aihubmix/mock-provider', 'aihubmix-oauth']
    console.log(JSON.stringify(names.map((name) => Object.keys(require(name)).length > 0)))`], dir)
  t.same(JSON.parse(cjs), [true, true, true, true, true], `require() of every package from CommonJS (Node.js ${process.version})`)

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
  await writeFile(join(dir, 'src', 'redis.ts'), appSource(true))
  await run(process.execPath, [tsc, '-p', dir], dir)
  t.pass(`with @fastify/redis ${versions[0] ?? '?'} and ioredis ${versions[1] ?? '?'}: compiles`)
  const prefix = uniquePrefix('fresh')
  cleanupPrefix(t, redis, prefix)
  await signIn(t, dir, 'redis.js', { REDIS_URL: redisUrl(), KEY_PREFIX: prefix })
})
