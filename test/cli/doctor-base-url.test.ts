import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { lines, runInstalled, tempDir } from './capture.js'

// AIHUBMIX_BASE_URL copied with a path (the AI API's base https://aihubmix.com/v1, or .../api): every endpoint would
// be missed. doctor says so on the provider line, naming the origin to use, instead of calling a 404 "reachable"
// and blaming the app's registration.

function providerLine (stdout: string): string | undefined {
  return lines(stdout).find((l) => l.slice(5).startsWith('provider:'))
}

t.test('a base URL ending in /api or /v1: the provider line fails, naming the origin; nothing is asked of it', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const app = mock.createApp({ name: 'doctor', redirectUri: 'http://localhost:3000/auth/callback' })
  const cwd = await tempDir(t)
  for (const suffix of ['/api', '/api/', '/v1']) {
    const env = { AIHUBMIX_BASE_URL: `${mock.url}${suffix}`, AIHUBMIX_CLIENT_ID: app.clientId, AIHUBMIX_CLIENT_SECRET: app.clientSecret }
    const before = mock.counts().token
    const result = await runInstalled(['doctor'], { env, cwd })
    t.equal(result.code, 1, `${suffix}: exit 1`, { output: result.all })
    t.equal(providerLine(result.stdout), `FAIL provider: AIHUBMIX_BASE_URL ends in ${suffix.replace(/\/$/, '')}, but the endpoints are AIHUBMIX_BASE_URL + /api/oauth2/*: set it to the provider's origin, ${mock.url}`)
    t.notOk(lines(result.stdout).some((l) => l.slice(5).startsWith('app registration')), `${suffix}: the app is not blamed`)
    t.equal(mock.counts().token, before, 'no token request')
  }
  // Control: the origin itself passes.
  const good = await runInstalled(['doctor'], { env: { AIHUBMIX_BASE_URL: mock.url, AIHUBMIX_CLIENT_ID: app.clientId, AIHUBMIX_CLIENT_SECRET: app.clientSecret }, cwd })
  t.match(providerLine(good.stdout), /^ok {3}provider: /)
})

t.test('a base URL where the authorize endpoint answers 404: the provider line fails and says why', async (t) => {
  const server = createServer((_req, res) => { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/gateway`
  const cwd = await tempDir(t)
  const result = await runInstalled(['doctor'], { env: { AIHUBMIX_BASE_URL: base, AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_x' }, cwd })
  t.equal(result.code, 1)
  t.equal(providerLine(result.stdout), `FAIL provider: ${base} answered HTTP 404 to GET /api/oauth2/authorize for this app: no OAuth endpoint there; AIHUBMIX_BASE_URL must be the AIHubMix provider's origin (its endpoints are under /api/oauth2/*)`)
  t.notOk(lines(result.stdout).some((l) => l.slice(5).startsWith('app registration')), 'the app is not blamed')
})
