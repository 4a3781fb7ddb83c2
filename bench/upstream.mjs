// The fast local upstream of the throughput runs: a bare node:http server that plays the
// provider just enough for every target to sign in (authorize → token) and then answers the
// userinfo JSON from a prebuilt buffer, so that the upstream is never the bottleneck.
import { createServer } from 'node:http'
import { randomBytes } from 'node:crypto'
import { failStart, serveUntilStopped } from './lib.mjs'

const USERINFO = Buffer.from(JSON.stringify({
  id: 12345,
  username: 'user123',
  email: 'user@example.com',
  quota: 1000000,
  used_quota: 250000,
  balance_formatted: '750.00',
  created_time: 1640995200,
  status: 1
}))
const JSON_HEADERS = { 'content-type': 'application/json', 'content-length': String(USERINFO.length) }

let userinfoCalls = 0
let tokenCalls = 0

function tokenAnswer () {
  return JSON.stringify({
    access_token: 'bench_at_' + randomBytes(24).toString('base64url'),
    token_type: 'Bearer',
    expires_in: 7200,
    refresh_token: 'bench_rt_' + randomBytes(24).toString('base64url'),
    scope: 'profile balance'
  })
}

const server = createServer((req, res) => {
  const q = req.url.indexOf('?')
  const path = q === -1 ? req.url : req.url.slice(0, q)
  if (req.method === 'GET' && path === '/api/oauth2/userinfo') {
    userinfoCalls++
    const auth = req.headers.authorization
    if (typeof auth !== 'string' || !auth.startsWith('Bearer ') || auth.length < 16) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}')
      return
    }
    res.writeHead(200, JSON_HEADERS).end(USERINFO)
    return
  }
  if (req.method === 'GET' && path === '/api/oauth2/authorize') {
    const params = new URL(req.url, 'http://127.0.0.1').searchParams
    const target = new URL(params.get('redirect_uri') ?? 'http://127.0.0.1/')
    if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost') {
      res.writeHead(400).end()
      return
    }
    target.searchParams.set('code', 'bench_code_' + randomBytes(16).toString('base64url'))
    target.searchParams.set('state', params.get('state') ?? '')
    res.writeHead(302, { location: target.href }).end()
    return
  }
  if (req.method === 'POST' && path === '/api/oauth2/token') {
    tokenCalls++
    req.resume()
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(tokenAnswer())
    })
    return
  }
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}')
})
server.keepAliveTimeout = 60_000

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address()
  serveUntilStopped(`http://127.0.0.1:${port}`, () => new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
})
server.on('error', failStart)

process.on('message', (msg) => {
  if (msg?.type === 'counts') process.send({ type: 'counts', userinfo: userinfoCalls, token: tokenCalls })
})
