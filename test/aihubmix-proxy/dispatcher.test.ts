import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent, Dispatcher, MockAgent, interceptors } from 'undici'
import { createAihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'

// The provider client speaks undici's dispatcher interface itself (src/aihubmix-proxy/exchange.ts), so it must work
// with any dispatcher a user passes as `dispatcher`: undici's MockAgent in their tests, an Agent composed with
// interceptors, and one that throws. And a caller's own AbortSignal cancels a call.

const ORIGIN = 'https://provider.test'
const USERINFO = { id: 7, username: 'mocked', email: 'm@example.com', quota: 10, used_quota: 1, balance_formatted: '9.00', created_time: 1, status: 1 }

function clientFor (dispatcher: Dispatcher, baseUrl = ORIGIN, maxBodyBytes = 4096): ReturnType<typeof createAihubmixClient> {
  return createAihubmixClient(resolveOptions({
    baseUrl,
    clientId: 'client',
    clientSecret: 'secret',
    redirectUri: 'https://app.test/auth/callback',
    allowInsecureHttp: true,
    maxBodyBytes,
    timeoutMs: 5000,
    dispatcher
  }))
}

async function server (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler)
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    s.closeAllConnections()
    s.close(() => resolve())
  }))
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

t.test('undici MockAgent as the dispatcher: answers, busy answers and the body cap', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const pool = agent.get(ORIGIN)
  const client = clientFor(agent)
  const json = { headers: { 'content-type': 'application/json' } }

  pool.intercept({ path: '/api/oauth2/userinfo', method: 'GET', headers: { authorization: 'Bearer tok' } }).reply(200, USERINFO, json)
  t.same(await client.userinfo('tok'), USERINFO, 'the answer, validated')

  pool.intercept({ path: '/api/oauth2/userinfo', method: 'GET' }).reply(503, { error: 'busy' }, { headers: { 'retry-after': '3' } })
  await t.rejects(client.userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_BUSY', retryAfterMs: 3000 }, 'a 503 with its Retry-After')

  pool.intercept({ path: '/api/oauth2/userinfo', method: 'GET' }).reply(500, 'no')
  await t.rejects(client.userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_STATUS', upstreamStatus: 500 }, 'a 500')

  const big = JSON.stringify({ ...USERINFO, pad: 'x'.repeat(8192) })
  pool.intercept({ path: '/api/oauth2/userinfo', method: 'GET' }).reply(200, big, json)
  await t.rejects(client.userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_BODY_TOO_LARGE' }, 'a body above the cap, found while reading')
  pool.intercept({ path: '/api/oauth2/userinfo', method: 'GET' }).reply(200, big, { headers: { 'content-type': 'application/json', 'Content-Length': String(big.length) } })
  await t.rejects(client.userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_BODY_TOO_LARGE' }, 'a declared length above the cap (any case of the header name)')

  pool.intercept({ path: '/api/oauth2/userinfo', method: 'GET' }).replyWithError(new Error('boom'))
  await t.rejects(client.userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_UNREACHABLE' }, 'a network error')

  pool.intercept({ path: '/api/oauth2/userinfo', method: 'GET' }).reply(200, USERINFO, json)
  t.same(await client.userinfo('tok'), USERINFO, 'and the next call is fine')
})

t.test('an Agent composed with undici\'s retry interceptor', async (t) => {
  let calls = 0
  const baseUrl = await server(t, (_req, res) => {
    calls++
    if (calls === 1) res.writeHead(503, { 'retry-after': '0' }).end('{}')
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(USERINFO))
  })
  const agent = new Agent().compose(interceptors.retry({ maxRetries: 1, minTimeout: 10, timeoutFactor: 1 }))
  t.teardown(() => agent.close())
  const client = clientFor(agent, baseUrl)
  t.same(await client.userinfo('tok'), USERINFO, 'answered after the interceptor\'s retry')
  t.equal(calls, 2)
})

t.test('an informational 1xx before the answer is passed over', async (t) => {
  const baseUrl = await server(t, (_req, res) => {
    res.writeProcessing()
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(USERINFO))
  })
  const agent = new Agent()
  t.teardown(() => agent.close())
  t.same(await clientFor(agent, baseUrl).userinfo('tok'), USERINFO)
})

t.test('a caller\'s AbortSignal cancels the call; one already aborted makes none', async (t) => {
  let requests = 0
  const baseUrl = await server(t, () => { requests++ }) // never answers
  const agent = new Agent()
  t.teardown(() => agent.close())
  const client = clientFor(agent, baseUrl)
  const controller = new AbortController()
  const call = client.userinfo('tok', controller.signal)
  setTimeout(() => controller.abort(), 50)
  await t.rejects(call, { name: 'AbortError' }, 'cancelled')
  t.equal(requests, 1)
  await t.rejects(client.userinfo('tok', AbortSignal.abort()), { name: 'AbortError' }, 'already aborted')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(requests, 1, 'no request for an aborted signal')
})

t.test('a dispatcher that speaks only the controller interface (undici 8 has no other)', async (t) => {
  // Calls only onRequestStart / onResponseStart / onResponseData / onResponseEnd / onResponseError, as undici 8 does.
  class ControllerOnly extends Dispatcher {
    aborted: Error | null = null
    constructor (private readonly answer: (handler: Dispatcher.DispatchHandler, controller: Dispatcher.DispatchController) => void) { super() }
    override dispatch (_opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const self = this
      const controller: Dispatcher.DispatchController = {
        get aborted () { return self.aborted !== null },
        get paused () { return false },
        get reason () { return self.aborted },
        abort (reason: Error) { self.aborted = reason },
        pause () {},
        resume () {}
      }
      t.equal(typeof handler.onRequestStart, 'function', 'a handler with the controller interface')
      handler.onRequestStart?.(controller, {})
      setImmediate(() => this.answer(handler, controller))
      return true
    }
  }
  const body = Buffer.from(JSON.stringify(USERINFO))
  const ok = new ControllerOnly((handler, controller) => {
    handler.onResponseStart?.(controller, 200, { 'content-type': 'application/json', 'content-length': String(body.length) }, 'OK')
    handler.onResponseData?.(controller, body.subarray(0, 10))
    handler.onResponseData?.(controller, body.subarray(10))
    handler.onResponseEnd?.(controller, {})
  })
  t.same(await clientFor(ok).userinfo('tok'), USERINFO, 'an answer in two parts')

  const busy = new ControllerOnly((handler, controller) => {
    handler.onResponseStart?.(controller, 429, { 'retry-after': ['2', '9'] }, 'Too Many Requests')
    handler.onResponseEnd?.(controller, {})
  })
  await t.rejects(clientFor(busy).userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_BUSY', retryAfterMs: 2000 }, 'a 429 and its (first) Retry-After')

  const large = new ControllerOnly((handler, controller) => {
    handler.onResponseStart?.(controller, 200, { 'content-length': String(1 << 20) }, 'OK')
  })
  await t.rejects(clientFor(large).userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_BODY_TOO_LARGE' }, 'a declared length above the cap')
  t.type(large.aborted, Error, 'and the call torn down through the controller')

  const broken = new ControllerOnly((handler, controller) => {
    handler.onResponseError?.(controller, Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))
  })
  await t.rejects(clientFor(broken).userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_TIMEOUT' }, 'an error reported to the handler')
})

t.test('a dispatcher that throws instead of reporting to the handler', async (t) => {
  class Throwing extends Dispatcher {
    override dispatch (): boolean {
      throw new Error('refused')
    }
  }
  const client = clientFor(new Throwing())
  await t.rejects(client.userinfo('tok'), { code: 'FST_AIHUBMIX_UPSTREAM_UNREACHABLE' })
})
