import { Agent, request } from 'node:http'
import t from 'tap'
import { startStack } from '../helpers/stack.js'

// A request being answered on a keep-alive connection when the example closes (a deploy's SIGTERM) kept close()
// waiting for Fastify's keepAliveTimeout, 72 s after the answer, and token-store's close behind it: past an
// orchestrator's grace period (Kubernetes: 30 s) the process was killed before the rotated sets it still held were
// stored (found by a fault review). token-store now lets such a connection go once it has answered (preClose).

t.test('close() while a keep-alive connection is answering: the answer arrives, and close ends within seconds', async (t) => {
  const stack = await startStack()
  let closed = false
  t.teardown(async () => { if (!closed) await stack.close() })
  const { browser } = await stack.login()
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const { hostname, port } = new URL(stack.url)
  const get = (path: string): Promise<number> => new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, agent, headers: { cookie: browser.cookieHeader(stack.url) as string, 'x-csrf': '1' } }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(await get('/api/user/info'), 200, 'the connection is open and kept alive')
  stack.mock.setLatency('userinfo', 500)
  const answering = get('/api/user/info')
  await new Promise((resolve) => setTimeout(resolve, 150))
  const started = Date.now()
  const closing = stack.close().then(() => { closed = true; return Date.now() - started })
  t.equal(await answering, 200, 'the request being answered is answered')
  const took = await Promise.race([closing, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 15_000).unref())])
  t.not(took, -1, `close() ended within 15 s (${took === -1 ? 'not' : `${took} ms`}), not after the 72 s keep-alive timeout`)
  if (took === -1) await closing
})
