import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import { RefreshBackoffError } from '@fastify-aihubmix/token-store'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { aihubmixProxy } from '@fastify-aihubmix/aihubmix-proxy'
import { KEY_A, buildApp, forEachBackend, sid, tokenSet } from '../helpers/token-store.js'

// A Retry-After asks the store to wait longer than its own backoff, never shorter: 0, or an HTTP-date already past
// (the proxy's client reads both as 0 ms), left the session without any backoff, so every request called the
// token endpoint again. The backoff is max(refreshBackoffMs, min(Retry-After, refreshBackoffMaxMs)).

forEachBackend(t, 'a retryAfterMs of 0 does not shorten the backoff below refreshBackoffMs', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 5000 })
  const id = sid()
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -60_000 }))
  let calls = 0
  const busy = async (): Promise<never> => { calls++; throw Object.assign(new Error('429'), { retryAfterMs: 0 }) }
  await t.rejects(app.tokenStore.getFresh(id, busy), /429/)
  const err = await app.tokenStore.getFresh(id, busy).then(() => undefined, (e: unknown) => e)
  t.type(err, RefreshBackoffError)
  t.ok((err as RefreshBackoffError).retryAfterMs > 1000, `refreshBackoffMs applies (${(err as RefreshBackoffError).retryAfterMs} ms left)`)
  t.equal(calls, 1)
})

forEachBackend(t, 'a Retry-After shorter than refreshBackoffMs does not shorten it either; a longer one lengthens it, up to the max', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options, refreshBackoffMs: 5000, refreshBackoffMaxMs: 20_000 })
  for (const [asked, least, most] of [[100, 1000, 5000], [15_000, 10_000, 15_000], [86_400_000, 15_000, 20_000]] as const) {
    const id = sid()
    await app.tokenStore.save(id, tokenSet({ expiresInMs: -60_000 }))
    const busy = async (): Promise<never> => { throw Object.assign(new Error('429'), { retryAfterMs: asked }) }
    await t.rejects(app.tokenStore.getFresh(id, busy), /429/)
    const err = await app.tokenStore.getFresh(id, busy).then(() => undefined, (e: unknown) => e) as RefreshBackoffError
    t.ok(err.retryAfterMs > least && err.retryAfterMs <= most, `Retry-After ${asked} ms: ${err.retryAfterMs} ms left`)
  }
})

for (const [label, retryAfter] of [
  ['an HTTP-date in the past', () => new Date(Date.now() - 120_000).toUTCString()],
  ['0', () => '0']
] as const) {
  t.test(`end to end: the token endpoint answers 429 with Retry-After ${label}: 20 quick requests make one token call`, async t => {
    let calls = 0
    const provider = createServer((req, res) => {
      req.resume()
      calls++
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': retryAfter() }).end('{"error":"rate_limited"}')
    })
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => { provider.closeAllConnections(); provider.close(() => resolve()) }))
    const baseUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(tokenStore, { encryptionKeys: KEY_A }) // refreshBackoffMs: 1000 (the default)
    await app.register(aihubmixProxy, { baseUrl, clientId: 'c', clientSecret: 's', redirectUri: 'http://127.0.0.1/cb', routes: false })
    await app.ready()
    const id = sid()
    await app.tokenStore.save(id, tokenSet({ expiresInMs: -1000 }))
    for (let i = 0; i < 20; i++) await app.tokenStore.getFresh(id, app.aihubmix.refresh).catch(() => {})
    t.equal(calls, 1)
  })
}
