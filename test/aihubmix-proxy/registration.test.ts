import t from 'tap'
import Fastify from 'fastify'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { aihubmixProxy } from '@fastify-aihubmix/aihubmix-proxy'

// A newcomer's mistake: the proxy without token-store, or before it. The error names the plugin to register.

const KEY = 'hex:' + 'b2'.repeat(32)
const PROXY = { baseUrl: 'http://127.0.0.1:1', clientId: 'client_x', clientSecret: 'secret_x', redirectUri: 'http://localhost:3000/auth/callback' }
const MESSAGE = 'aihubmix-proxy needs @fastify-aihubmix/token-store registered before it (app.tokenStore is missing): ' +
  'register @fastify/cookie, token-store, then aihubmix-proxy (each awaited, or in this order)'

async function readyError (app: ReturnType<typeof Fastify>): Promise<Error | undefined> {
  const err = await app.ready().then(() => undefined, (e: unknown) => e as Error)
  await app.close().catch(() => {})
  return err
}

t.test('without token-store: the error names token-store', async (t) => {
  const app = Fastify({ logger: false })
  app.register(aihubmixProxy, PROXY)
  const err = await readyError(app)
  t.equal(err?.message, MESSAGE)
  t.equal((err as { code?: string } | undefined)?.code, 'FST_AIHUBMIX_PROXY_REGISTRATION')
})

t.test('before token-store: the same error, which names the order (not "is not registered": it is, later)', async (t) => {
  const app = Fastify({ logger: false })
  app.register(aihubmixProxy, PROXY)
  app.register(tokenStore, { encryptionKeys: KEY })
  const err = await readyError(app)
  t.equal(err?.message, MESSAGE)
  t.equal((err as { code?: string } | undefined)?.code, 'FST_AIHUBMIX_PROXY_REGISTRATION')
})

t.test('after token-store: registers, and the request has the token-store decorator the proxy uses', async (t) => {
  const app = Fastify({ logger: false })
  app.register(tokenStore, { encryptionKeys: KEY })
  app.register(aihubmixProxy, PROXY)
  t.teardown(() => app.close())
  await app.ready()
  t.ok(app.hasRequestDecorator('tokens'))
  t.ok(app.hasDecorator('aihubmix'))
})
