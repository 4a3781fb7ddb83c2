import t from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// The packages are ES modules; a CommonJS app can still `require()` them on Node.js 20.19+ (and 22.12+), where
// require(esm) is on by default: none of them has a top-level await. This runs a CommonJS script in a plain
// `node` (no export condition: the built dist/ files, as an installed package is loaded) on the Node.js running
// the tests.

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))

const SCRIPT = `
const Fastify = require('fastify')
const tokenStore = require('@fastify-aihubmix/token-store')
const proxy = require('@fastify-aihubmix/aihubmix-proxy')
const routes = require('@fastify-aihubmix/oauth-routes')
const mock = require('@fastify-aihubmix/mock-provider')
const cli = require('aihubmix-oauth')
const app = Fastify()
app.register(tokenStore.default, { encryptionKeys: 'hex:' + 'a1'.repeat(32) })
app.register(proxy.aihubmixProxy, { baseUrl: 'http://127.0.0.1:1', clientId: 'c', clientSecret: 's', redirectUri: 'http://localhost/auth/callback' })
app.ready().then(async () => {
  const provider = await mock.startMockProvider({ port: 0 })
  await provider.close()
  await app.close()
  console.log(JSON.stringify([typeof routes.oauthRoutes, typeof cli.readConfig, typeof app.tokenStore.get, typeof app.aihubmix.authorizeUrl]))
})
`

t.test(`require() of every package from CommonJS works on this Node.js (${process.version})`, async (t) => {
  const { stdout, stderr } = await run(process.execPath, ['-e', SCRIPT], { cwd: root, env: { PATH: process.env.PATH ?? '' } })
  t.same(JSON.parse(stdout), ['function', 'function', 'function', 'function'], 'each package loads and registers')
  t.equal(stderr, '', 'no warning')
})
