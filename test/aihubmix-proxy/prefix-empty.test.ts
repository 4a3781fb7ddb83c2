import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import { KEY_A } from '../helpers/token-store.js'

// The proxy's README: `prefix` "prefix of the browser-facing routes (`''` for none)". With '' its not-found handler
// (JSON, behind the CSRF header, for everything under the prefix) took over the not-found handling of the whole app:
// a page's /favicon.ico answered 403 csrf_header_required, and an app with a not-found handler of its own could not
// start. Now, without a prefix, unknown paths are the app's; the proxy's own routes still need the header.

const proxyOptions = { baseUrl: 'http://127.0.0.1:9', clientId: 'client_x', clientSecret: 'secret_x', redirectUri: 'http://127.0.0.1/cb', prefix: '' }

t.test("prefix '': an unknown page of the host app is a 404, not a 403 csrf_header_required", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: KEY_A })
  app.get('/', async () => 'home')
  await app.register(aihubmixProxy, proxyOptions)
  const res = await app.inject({ url: '/favicon.ico' })
  t.equal(res.statusCode, 404, `a browser's /favicon.ico: got ${res.statusCode} ${res.body}`)
  t.equal((await app.inject({ url: '/' })).body, 'home', 'the app\'s own page')
  const proxied = await app.inject({ url: '/user/info' })
  t.equal(proxied.statusCode, 403, 'the proxy\'s route, without the header')
  t.equal(JSON.parse(proxied.body).error, 'csrf_header_required')
})

t.test("prefix '': the host app can still have its own not-found handler", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: KEY_A })
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).type('text/html').send('<h1>index.html (SPA fallback)</h1>'))
  await t.resolves(async () => {
    await app.register(aihubmixProxy, proxyOptions)
    await app.ready()
  }, 'starts (today: "Not found handler already set for Fastify instance with prefix: \'/\'", naming no plugin)')
})
