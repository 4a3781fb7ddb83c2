import t from 'tap'
import Fastify from 'fastify'
import defaultExport, * as pkg from '@fastify-aihubmix/token-store'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher, tokenSet } from '../helpers/token-store.js'

t.test('fastify-plugin metadata: name, fastify 5, named and default export', async t => {
  const meta = (tokenStore as unknown as Record<symbol, { name: string, fastify: string }>)[Symbol.for('plugin-meta')]
  t.equal(meta?.name, '@fastify-aihubmix/token-store')
  t.equal(meta?.fastify, '5.x')
  t.equal(defaultExport, tokenStore)
})

t.test('decorators: fastify.tokenStore and request.tokens', async t => {
  const app = await buildApp(t, {}, {
    setup: app => {
      app.get('/same', async request => {
        const first = request.tokens
        const second = request.tokens
        return { same: first === second }
      })
    }
  })
  t.ok(app.hasDecorator('tokenStore'))
  t.ok(app.hasRequestDecorator('tokens'))
  t.equal(app.tokenStore.refreshSkewMs, 5 * 60_000)
  t.type(app.tokenStore.sessionStore.get, 'function')
  t.same((await app.inject('/same')).json(), { same: true }, 'one RequestTokens per request')
})

t.test('sessionCookieName: the sessionCookie option\'s name, or undefined without it', async t => {
  const without = await buildApp(t, {})
  t.equal(without.tokenStore.sessionCookieName, undefined)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register((await import('@fastify/cookie')).default)
  await app.register(tokenStore, { encryptionKeys: 'hex:' + 'd4'.repeat(32), sessionCookie: { name: 'my-sid', secret: 's'.repeat(32) } })
  t.equal(app.tokenStore.sessionCookieName, 'my-sid')
})

t.test('request.tokens without @fastify/session behaves as "no token set"', async t => {
  const r = countingRefresher()
  const app = await buildApp(t, {}, {
    setup: app => {
      app.get('/get', async request => ({ set: await request.tokens.get() }))
      app.get('/fresh', async request => await request.tokens.getFresh(r.refresh))
      app.get('/clear', async request => { await request.tokens.clear(); return { ok: true } })
      app.get('/save', async request => { await request.tokens.save(tokenSet()); return { ok: true } })
    }
  })
  t.same((await app.inject('/get')).json(), { set: null })
  const fresh = await app.inject('/fresh')
  t.equal(fresh.statusCode, 401)
  t.same(fresh.json(), {
    statusCode: 401,
    code: 'FST_AIHUBMIX_UNAUTHENTICATED',
    error: 'Unauthorized',
    message: 'No usable token set for this session'
  })
  t.same((await app.inject('/clear')).json(), { ok: true })
  const save = await app.inject('/save')
  t.equal(save.statusCode, 500)
  t.equal(save.json().code, 'FST_AIHUBMIX_NO_SESSION')
  t.same(r.calls, [])
})

t.test('errors: exported classes with exact codes and status codes', async t => {
  const table: Array<[keyof typeof pkg, string, number]> = [
    ['UnauthenticatedError', 'FST_AIHUBMIX_UNAUTHENTICATED', 401],
    ['ReauthRequiredError', 'FST_AIHUBMIX_REAUTH_REQUIRED', 401],
    ['RefreshRejectedError', 'FST_AIHUBMIX_REFRESH_REJECTED', 401],
    ['StoreUnavailableError', 'FST_AIHUBMIX_STORE_UNAVAILABLE', 503],
    ['RefreshBusyError', 'FST_AIHUBMIX_REFRESH_BUSY', 503],
    ['TokenStoreOptionsError', 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', 500],
    ['UnsealFailedError', 'FST_AIHUBMIX_UNSEAL_FAILED', 500],
    ['TokenStoreArgumentError', 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', 500],
    ['NoSessionError', 'FST_AIHUBMIX_NO_SESSION', 500]
  ]
  for (const [name, code, statusCode] of table) {
    const ErrorClass = pkg[name] as unknown as new (...args: unknown[]) => Error & { code: string, statusCode: number }
    const cause = new Error('underlying')
    const err = new ErrorClass('a', 'b', { cause })
    t.ok(err instanceof ErrorClass, `${name}: instanceof`)
    t.ok(err instanceof Error)
    t.equal(err.code, code, `${name}: code`)
    t.equal(err.statusCode, statusCode, `${name}: status`)
    t.equal(err.cause, cause, `${name}: keeps a cause`)
  }
  const rejected = new pkg.RefreshRejectedError({ cause: new Error('invalid_grant') })
  t.equal(rejected.message, 'The provider rejected the refresh grant')
})

t.test('registering the plugin twice in one scope fails at start (the decorator exists)', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(tokenStore, { encryptionKeys: 'hex:' + '01'.repeat(32) })
  app.register(tokenStore, { encryptionKeys: 'hex:' + '02'.repeat(32) })
  await t.rejects(async () => { await app.ready() }, /tokenStore/)
})
