import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ServerResponse } from 'node:http'
import { createAihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'

// maxBodyBytes: an answer above it is refused with UpstreamBodyTooLargeError, whether its size is declared
// (Content-Length) or only found while reading (chunked), and the process goes on. A declared length above the cap
// used to end the process: the unread body, destroyed, emitted an error nobody listened to.

const CAP = 1024

type Answer = (res: ServerResponse) => void

async function upstream (t: Test, answer: { current: Answer }): Promise<string> {
  const server: Server = createServer((_req, res) => { answer.current(res) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const json = (res: ServerResponse, body: string, headers: Record<string, string> = {}): void => {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(body)
}
const USERINFO = JSON.stringify({ id: 1, username: 'u', email: 'u@example.com', quota: 1, used_quota: 0, balance_formatted: '0.00', created_time: 1, status: 1 })

t.test('answers above maxBodyBytes are refused, declared or not, and the process goes on', async (t) => {
  const answer: { current: Answer } = { current: (res) => json(res, USERINFO) }
  const baseUrl = await upstream(t, answer)
  const client = createAihubmixClient(resolveOptions({
    baseUrl,
    clientId: 'client',
    clientSecret: 'secret',
    redirectUri: 'http://127.0.0.1/auth/callback',
    allowInsecureHttp: true,
    maxBodyBytes: CAP,
    timeoutMs: 5000
  }))
  t.teardown(() => client.close())
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => { process.off('uncaughtException', onUncaught) })

  const big = 'x'.repeat(4 * CAP)
  const cases: Array<[string, Answer]> = [
    ['declared above the cap', (res) => json(res, JSON.stringify({ pad: big }))],
    ['declared above the cap, body still coming', (res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(8 * CAP) })
      res.write(big)
      setTimeout(() => res.end(big), 50)
    }],
    ['declared above the cap, written in parts', (res) => {
      const part = Buffer.alloc(CAP, 'a')
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(16 * CAP) })
      for (let i = 0; i < 16; i++) res.write(part)
      res.end()
    }],
    ['chunked, above the cap', (res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write(big.slice(0, CAP / 2))
      setTimeout(() => res.end(big), 20)
    }]
  ]
  for (const [name, answerWith] of cases) {
    answer.current = answerWith
    await t.rejects(client.userinfo('token'), { code: 'FST_AIHUBMIX_UPSTREAM_BODY_TOO_LARGE' }, name)
    // What undici does with a destroyed body happens a tick or two later.
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  answer.current = (res) => json(res, USERINFO)
  t.match(await client.userinfo('token'), { username: 'u' }, 'the next answer within the cap is read')
  answer.current = (res) => json(res, JSON.stringify({ ...JSON.parse(USERINFO), pad: 'x'.repeat(CAP - USERINFO.length - 10) }))
  t.match(await client.userinfo('token'), { username: 'u' }, 'an answer just under the cap is read')
  t.same(uncaught, [], 'no uncaught exception')
})
