import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { request } from 'undici'
import { connect } from 'node:net'
import { startStack } from '../helpers/stack.js'

// The security rules for the proxy routes.

const CSRF = { 'x-csrf': '1' }

/** GET `path` exactly as written, over a raw socket; resolves with the status code. */
function rawGet (origin: string, path: string, cookie: string): Promise<number> {
  const { hostname, port } = new URL(origin)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nX-CSRF: 1\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`)
    })
    let head = ''
    socket.on('data', (chunk) => { head += chunk.toString('latin1') })
    socket.on('end', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head)
      if (m === null) reject(new Error(`no status line for ${path}`))
      else resolve(Number(m[1]))
    })
    socket.on('error', reject)
  })
}

t.test('no CORS for foreign origins', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const preflight = await browser.fetch(`${stack.url}/api/user/info`, {
    method: 'OPTIONS' as 'GET',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-csrf' }
  })
  t.equal(preflight.headers['access-control-allow-origin'], undefined, 'the preflight grants nothing')
  t.equal(preflight.headers['access-control-allow-headers'], undefined)
  const simple = await browser.get(`${stack.url}/api/user/info`, { ...CSRF, origin: 'https://evil.example' })
  t.equal(simple.headers['access-control-allow-origin'], undefined)
  t.equal(simple.headers['access-control-allow-credentials'], undefined)
})

t.test('a path from the browser never reaches another host or path upstream', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.resetCounts() // the sign-in's own userinfo call
  const cookie = browser.cookieHeader(stack.url) as string
  const paths = [
    '/api//evil.example/api/oauth2/userinfo',
    '/api/user/info/..%2f..%2f..%2fevil',
    '/api/%2e%2e/%2e%2e/evil',
    '/api/@evil.example/user/info',
    '/api/user/info@evil.example',
    '/api/user/%2e%2e/topup/../../../admin',
    '/api/https:%2f%2fevil.example'
  ]
  for (const path of paths) {
    // Sent byte for byte over a raw socket: an HTTP client would normalise some of these.
    const status = await rawGet(stack.url, path, cookie)
    t.ok(status === 404 || status === 400, `${path}: ${status}`)
  }
  t.equal(stack.mock.counts().userinfo, 0, 'no upstream call at all')
  t.equal(stack.mock.counts().topup, 0)
})

t.test('a client that goes away cancels its upstream call', async (t) => {
  // A provider that never answers userinfo, and records when the proxy hangs up.
  let upstreamClosed = 0
  let upstreamRequests = 0
  const slow = createServer((req: IncomingMessage, res: ServerResponse) => {
    upstreamRequests++
    req.socket.once('close', () => { upstreamClosed++ })
    res.on('error', () => {}) // never answered on purpose
  })
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { slow.closeAllConnections(); slow.close(() => resolve()) }))
  // The proxy alone, pointed at the silent provider, with one stored token set.
  const { default: Fastify } = await import('fastify')
  const { default: aihubmixProxy } = await import('@fastify-aihubmix/aihubmix-proxy')
  const { default: tokenStore } = await import('@fastify-aihubmix/token-store')
  const { default: fastifyCookie } = await import('@fastify/cookie')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: 'k'.repeat(32) })
  app.addHook('onRequest', async (req) => {
    // A fixed session: enough to reach the upstream call.
    (req as unknown as { session: { sessionId: string } }).session = { sessionId: 'abort-test' }
  })
  await app.register(aihubmixProxy, {
    baseUrl: `http://127.0.0.1:${(slow.address() as { port: number }).port}`,
    clientId: 'c',
    clientSecret: 's',
    redirectUri: 'http://127.0.0.1/cb',
    timeoutMs: 30_000
  })
  await app.tokenStore.save('abort-test', { accessToken: 'at', refreshToken: 'rt', tokenType: 'Bearer', expiresAt: Date.now() + 3600_000, scope: ['profile'], obtainedAt: Date.now() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  const controller = new AbortController()
  const pending = request(`http://127.0.0.1:${port}/api/user/info`, { headers: CSRF, signal: controller.signal }).catch(() => 'aborted')
  const waitFor = async (check: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000
    while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await waitFor(() => upstreamRequests > 0)
  t.equal(upstreamRequests, 1, 'the upstream call started')
  controller.abort()
  t.equal(await pending, 'aborted')
  await waitFor(() => upstreamClosed > 0)
  t.equal(upstreamClosed, 1, 'the proxy cancelled the upstream call when the browser left')
})
