import t, { type Test } from 'tap'
import net from 'node:net'
import http from 'node:http'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy, { type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import aihubmixMetrics from '@fastify-aihubmix/metrics'
import { KEY_A } from '../helpers/token-store.js'
import { parseSamples, series } from '../helpers/prometheus.js'

// The provider misbehaving at the edges of HTTP, through a raw upstream that writes what it wants on the socket: a
// kept-alive connection closed under the next request, a browser gone before a call is sent, an error string that
// echoes what it was sent.

const CSRF = { 'x-csrf': '1' }
interface RawRequest { method: string, path: string, body: string, conn: number, reqNo: number }
type Handler = (req: RawRequest, socket: net.Socket) => void

/** A raw HTTP/1.1 upstream on 127.0.0.1: `handler` writes whatever it wants on the socket. */
async function rawUpstream (t: Test, handler: Handler): Promise<{ url: string, log: RawRequest[] }> {
  const log: RawRequest[] = []
  const sockets = new Set<net.Socket>()
  let conns = 0
  const server = net.createServer((socket) => {
    const conn = ++conns
    let reqNo = 0
    let buf = Buffer.alloc(0)
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buf.subarray(0, end).toString('latin1')
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < end + 4 + length) return
        const [method = '', path = ''] = head.split(' ')
        const req = { method, path, body: buf.subarray(end + 4, end + 4 + length).toString(), conn, reqNo: ++reqNo }
        buf = buf.subarray(end + 4 + length)
        log.push(req)
        handler(req, socket)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, log }
}

function answer (socket: net.Socket, status: number, body: string): void {
  socket.write(`HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

async function proxyApp (t: Test, baseUrl: string, opts: Partial<AihubmixProxyOptions> = {}, logs?: string[]): Promise<FastifyInstance & { base: string }> {
  const app: FastifyInstance = Fastify({ logger: logs === undefined ? false : { level: 'info', stream: new Writable({ write (c: Buffer, _e, cb) { logs.push(c.toString()); cb() } }) } })
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: KEY_A })
  app.addHook('onRequest', async (req) => { (req as unknown as { session: { sessionId: string } }).session = { sessionId: 'sess-1' } })
  await app.register(aihubmixProxy, { baseUrl, clientId: 'client_x', clientSecret: 'secret_x_value', redirectUri: 'http://127.0.0.1/cb', timeoutMs: 3000, ...opts })
  await app.register(aihubmixMetrics, { defaultMetrics: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await app.tokenStore.save('sess-1', { accessToken: 'at_SECRET1', refreshToken: 'rt_SECRET1', tokenType: 'Bearer', expiresAt: Date.now() + 3600_000, scope: ['profile', 'balance'], obtainedAt: Date.now() })
  return Object.assign(app, { base: `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}` })
}

t.test('an idempotent GET on a keep-alive socket the provider closed meanwhile is retried on a new connection', async (t) => {
  // The provider answers the first request, and closes the connection when the next one arrives on it (the race of
  // an idle timeout shorter than the pool's keepAliveTimeout, without a Keep-Alive hint).
  const up = await rawUpstream(t, (req, socket) => {
    if (req.reqNo === 1) answer(socket, 200, JSON.stringify({ id: 1 }))
    else socket.destroy()
  })
  const app = await proxyApp(t, up.url)
  t.equal((await fetch(`${app.base}/api/user/info`, { headers: CSRF })).status, 200)
  const second = await fetch(`${app.base}/api/user/info`, { headers: CSRF })
  t.equal(second.status, 200, `the user's second request (got ${second.status} ${await second.text()}; upstream requests: ${up.log.map((r) => `conn${r.conn}#${r.reqNo}`).join(' ')})`)
  t.same(up.log.map((r) => `conn${r.conn}#${r.reqNo}`), ['conn1#1', 'conn1#2', 'conn2#1'], 'sent once more, on a new connection')
})

t.test('a refresh whose connection is closed under it is not sent again (it could present a rotated-out token)', async (t) => {
  const up = await rawUpstream(t, (req, socket) => {
    if (req.path.endsWith('/token')) socket.destroy()
    else answer(socket, 200, JSON.stringify({ id: 1 }))
  })
  const app = await proxyApp(t, up.url)
  const set = await app.tokenStore.get('sess-1')
  if (set === null) throw new Error('no set')
  await app.tokenStore.save('sess-1', { ...set, expiresAt: Date.now() - 1000, obtainedAt: Date.now() - 3600_000 })
  const res = await fetch(`${app.base}/api/user/info`, { headers: CSRF })
  t.equal(res.status, 502, 'could not be reached')
  t.equal(up.log.filter((r) => r.path.endsWith('/token')).length, 1, 'one token request, not two')
  t.equal((await app.tokenStore.get('sess-1'))?.refreshToken, 'rt_SECRET1', 'the set keeps its refresh token')
})

t.test('a browser that left while its token was refreshed: no userinfo exchange is counted, none was sent', async (t) => {
  const up = await rawUpstream(t, (req, socket) => {
    if (req.path.endsWith('/token')) setTimeout(() => answer(socket, 200, JSON.stringify({ access_token: 'at_NEW', token_type: 'Bearer', expires_in: 7200, refresh_token: 'rt_NEW' })), 500)
    else answer(socket, 200, JSON.stringify({ id: 1 }))
  })
  const app = await proxyApp(t, up.url)
  const set = await app.tokenStore.get('sess-1')
  if (set === null) throw new Error('no set')
  await app.tokenStore.save('sess-1', { ...set, expiresAt: Date.now() - 1000, obtainedAt: Date.now() - 3600_000 })
  const req = http.get(`${app.base}/api/user/info`, { headers: CSRF, agent: false })
  req.on('error', () => {})
  setTimeout(() => req.destroy(), 150)
  await new Promise((resolve) => setTimeout(resolve, 1200))
  const sent = up.log.filter((r) => r.path.endsWith('/userinfo')).length
  const counted = series(parseSamples(await app.aihubmixMetrics.scrape()), 'aihubmix_upstream_requests_total', { endpoint: 'userinfo' })
  t.equal(sent, 0, 'no userinfo request reached the provider')
  t.same(counted, {}, 'and aihubmix_upstream_requests_total counts none')
})

t.test("the provider's error string never reaches the log verbatim (it may echo what it was sent)", async (t) => {
  const up = await rawUpstream(t, (req, socket) => {
    if (req.path.endsWith('/token')) {
      const rt = new URLSearchParams(req.body).get('refresh_token') ?? ''
      answer(socket, 400, JSON.stringify({ error: `invalid_request: refresh_token ${rt} is malformed` }))
    } else answer(socket, 401, '{"error":"invalid_token"}')
  })
  const logs: string[] = []
  const app = await proxyApp(t, up.url, {}, logs)
  const res = await fetch(`${app.base}/api/user/info`, { headers: CSRF })
  t.equal(res.status, 502)
  t.same(logs.filter((line) => line.includes('rt_SECRET1')), [], 'no refresh token in any log line')
})
