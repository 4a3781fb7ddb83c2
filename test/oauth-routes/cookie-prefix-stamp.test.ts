import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes from '@fastify-aihubmix/oauth-routes'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { TestBrowser } from '../helpers/browser.js'
import { freePort } from '../helpers/free-port.js'

// oauth-routes forces the "last seen" stamp (a store write) whenever
// request.cookies[cookieName] !== session.encryptedSessionId, to re-sign a cookie signed with an older secret.
// With @fastify/session's own `cookiePrefix` option (supported by @fastify/session; the README only rules it out
// for token-store's sessionCookie), the cookie value is always `<prefix><encryptedSessionId>`, so the two never
// match: EVERY request of a signed-in user writes the session record (and sends a Set-Cookie), whatever
// `rolling: false` says.

const SECRET = 's'.repeat(40)

t.test('cookiePrefix: a signed-in steady-state request writes nothing back', async (t) => {
  const mock = await startMockProvider({ tokenPrefix: 'leakcanary' })
  t.teardown(() => mock.close())
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const demo = mock.createApp({ name: 'prefix', redirectUri: `${url}/auth/callback` })
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: ['k'.repeat(40)] })
  await app.register(fastifySession, {
    secret: SECRET,
    cookieName: 'sid',
    cookiePrefix: 's:',
    store: app.tokenStore.sessionStore,
    saveUninitialized: false,
    rolling: false,
    cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false }
  })
  await app.register(aihubmixProxy, { baseUrl: mock.url, clientId: demo.clientId, clientSecret: demo.clientSecret, redirectUri: `${url}/auth/callback` })
  await app.register(oauthRoutes, { publicUrl: url, cookieName: 'sid' })
  await app.listen({ port, host: '127.0.0.1' })
  t.teardown(() => app.close())

  const store = app.tokenStore.sessionStore
  const set = store.set.bind(store)
  let writes = 0
  store.set = (sid, session, cb) => { writes++; set(sid, session, cb) }

  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  t.equal((await browser.get(TestBrowser.location(back))).status, 302, 'signed in')

  writes = 0
  let setCookies = 0
  for (let i = 0; i < 5; i++) {
    const answer = await browser.get(`${url}/auth/session`)
    t.equal(JSON.parse(answer.body).authenticated, true)
    if (answer.headers['set-cookie'] !== undefined) setCookies++
  }
  t.equal(writes, 0, `no session write on 5 steady-state requests (got ${writes})`)
  t.equal(setCookies, 0, `no Set-Cookie on them (got ${setCookies})`)
})
