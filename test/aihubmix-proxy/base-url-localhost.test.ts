import t from 'tap'
import Fastify from 'fastify'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { aihubmixProxy } from '@fastify-aihubmix/aihubmix-proxy'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'

// Plain http to the provider is allowed without allowInsecureHttp on this machine only. A *.localhost name counted as
// this machine, but this process resolves it through the system's resolver, which asks network DNS for it (browsers
// pin *.localhost to loopback; Node.js does not): the client secret, codes and tokens could go out in the clear. The
// provider's URLs (baseUrl, revocationUrl) take `localhost` itself and loopback addresses only; the redirect URI, which
// only the browser opens, keeps *.localhost.

const KEY = 'hex:' + 'b2'.repeat(32)
const BASE = { clientId: 'client_x', clientSecret: 'secret_x', redirectUri: 'http://localhost:3000/auth/callback' }

async function readyError (options: Record<string, unknown>): Promise<Error | undefined> {
  const app = Fastify({ logger: false })
  app.register(tokenStore, { encryptionKeys: KEY })
  app.register(aihubmixProxy, { ...BASE, ...options } as Parameters<typeof aihubmixProxy>[1])
  const err = await app.ready().then(() => undefined, (e: unknown) => e as Error)
  await app.close().catch(() => {})
  return err
}

t.test('an http baseUrl or revocationUrl under *.localhost is refused, naming the fix', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const port = new URL(mock.url).port
  const dns = (host: string): string => `(${host} is not: Node.js resolves *.localhost names through DNS, so the call may leave this machine)`
  const fix = 'use https://, or http://localhost or http://127.0.0.1 for a server on this machine'

  const base = await readyError({ baseUrl: `http://provider.localhost:${port}` })
  t.equal(base?.message, `Invalid aihubmix-proxy option "baseUrl": must use https unless it is http://localhost or a loopback address ${dns('provider.localhost')}: ${fix}`)
  t.equal((base as { code?: string } | undefined)?.code, 'FST_AIHUBMIX_PROXY_OPTIONS')

  const revocation = await readyError({ baseUrl: mock.url, revocationUrl: `http://revoke.localhost:${port}/api/oauth2/revoke` })
  t.equal(revocation?.message, `Invalid aihubmix-proxy option "revocationUrl": must use https unless it is http://localhost or a loopback address ${dns('revoke.localhost')}: ${fix}`)

  const remote = await readyError({ baseUrl: 'http://aihubmix.example' })
  t.equal(remote?.message, `Invalid aihubmix-proxy option "baseUrl": must use https unless it is http://localhost or a loopback address: ${fix}`)

  t.equal(await readyError({ baseUrl: `http://provider.localhost:${port}`, allowInsecureHttp: true }), undefined, 'allowInsecureHttp allows it (development)')
})

t.test('localhost itself, loopback addresses and a *.localhost redirect URI are accepted', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const port = new URL(mock.url).port
  for (const baseUrl of [`http://localhost:${port}`, `http://LocalHost:${port}`, mock.url, `http://127.0.0.2:${port}`, `http://[::1]:${port}`]) {
    t.equal(await readyError({ baseUrl }), undefined, `${baseUrl} is accepted`)
  }
  t.equal(await readyError({ baseUrl: mock.url, redirectUri: 'http://app.localhost:3000/auth/callback' }), undefined,
    'a redirect URI under *.localhost: the browser opens it, and keeps it on this machine')
})
