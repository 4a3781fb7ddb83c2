import t from 'tap'
import type { FastifyInstance, FastifyLoggerOptions, FastifyServerOptions } from 'fastify'
import { redactUrl } from '@fastify-aihubmix/oauth-routes'
import { TestBrowser } from '../helpers/browser.js'
import { startComposedApp } from '../helpers/readme-composition.js'
import { findLeaks } from '../helpers/stack.js'

// Issue 16, item 6: with oauth-routes' loggerOptions(), Fastify's own request logging (the README's logger,
// a real pino writing to a stream) never writes a code, a state, a returnTo, a cookie or a session id.

t.test('Fastify\'s request logging with loggerOptions() writes no code, state, returnTo or cookie', async (t) => {
  const { url, mock, lines: logs } = await startComposedApp(t, { cookieName: 'sid', secure: 'auto', trustProxy: 'loopback' })
  const browser = new TestBrowser()
  const states: string[] = []
  const returnTo = '/private-return-path-0123456789'
  for (const mode of ['redirect', 'popup']) {
    const start = await browser.get(`${url}/auth/login?mode=${mode}&returnTo=${encodeURIComponent(returnTo)}`)
    states.push(new URL(TestBrowser.location(start)).searchParams.get('state') as string)
    const back = await browser.get(TestBrowser.location(start))
    const done = await browser.get(TestBrowser.location(back))
    t.ok(done.status === 302 || done.status === 200, `${mode}: signed in`)
  }
  // Failures and mistakes carry a code and a state in their URLs too.
  await browser.get(`${url}/auth/callback?code=code_leakcanary_forged&state=${states[0] as string}`)
  await browser.get(`${url}/auth/callback?state=${states[1] as string}&%63ode=code_leakcanary_encoded_name`)
  await browser.get(`${url}/auth/callbak?code=code_leakcanary_typo&state=${states[0] as string}`)
  await browser.get(`${url}/auth/session`)

  const cookies = [...(browser.cookies.get(url)?.values() ?? [])]
  const issued = mock.issued()
  t.ok(issued.codes.length >= 2 && cookies.length >= 1, 'there is something to look for')
  const incoming = logs.filter((l) => l.includes('"incoming request"'))
  t.ok(incoming.length >= 8, `${incoming.length} request lines`)
  t.ok(incoming.some((l) => l.includes('"url":"/auth/callback?code=[REDACTED]&state=[REDACTED]"')), 'the callback URL, redacted')
  t.ok(incoming.some((l) => l.includes('"url":"/auth/login?mode=popup&returnTo=[REDACTED]"')), 'the login URL, redacted')
  t.same(findLeaks([
    ...issued.codes,
    ...issued.accessTokens,
    ...issued.refreshTokens,
    'code_leakcanary_forged',
    'code_leakcanary_encoded_name',
    'code_leakcanary_typo',
    ...states,
    returnTo,
    ...cookies
  ], logs), [], 'none of them in any log line')
})

// The token-store and metrics READMEs build their apps with `Fastify({ logger: true })`: Fastify's own request
// serializer, and no loggerOptions(). The callback's "incoming request" line then carried its code and state. The
// sign-in routes now write their requests through the redacting serializer whatever the app's logger.
t.test('an app logging with Fastify\'s own serializers (logger: true): the sign-in routes\' lines are redacted all the same', async (t) => {
  const { url, mock, lines: logs } = await startComposedApp(t, { plainLogger: true })
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login?returnTo=${encodeURIComponent('/private-return-path-0123456789')}`)
  const state = new URL(TestBrowser.location(start)).searchParams.get('state') as string
  const back = await browser.get(TestBrowser.location(start))
  t.equal((await browser.get(TestBrowser.location(back))).status, 302, 'signed in')
  await browser.get(`${url}/auth/callback?code=code_leakcanary_replayed&state=${state}`)
  const incoming = logs.filter((l) => l.includes('"incoming request"'))
  t.ok(incoming.some((l) => l.includes('"url":"/auth/callback?code=[REDACTED]&state=[REDACTED]"')), 'the callback URL, redacted')
  t.ok(incoming.some((l) => l.includes('"url":"/auth/login?returnTo=[REDACTED]"')), 'the login URL, redacted')
  t.same(findLeaks([...mock.issued().codes, 'code_leakcanary_replayed', state, '/private-return-path-0123456789'], logs), [], 'no code, state or returnTo in any line')
})

// A callback URL that misses the route (a proxy adding a trailing slash or changing its case, another method) still
// carries the provider's code: Fastify logged it through the app's plain serializer, the not-found handler under the
// prefix having no route options. Every request under the prefix is now logged through the redacting serializer.
t.test('with logger: true, a callback URL that misses the route is logged redacted too, and answers 404', async (t) => {
  const { url, lines: logs } = await startComposedApp(t, { plainLogger: true })
  const browser = new TestBrowser()
  const missed = [
    ['GET', '/auth/callback/?code=code_leakcanary_slash&state=state_leakcanary_1'],
    ['GET', '/auth/Callback?code=code_leakcanary_case&state=state_leakcanary_2'],
    ['GET', '/auth/callback%2F?code=code_leakcanary_encoded&state=state_leakcanary_3'],
    ['POST', '/auth/callback?code=code_leakcanary_post&state=state_leakcanary_4'],
    ['DELETE', '/auth/login?returnTo=%2Fprivate-return-path-0123456789']
  ] as const
  for (const [method, path] of missed) {
    const res = await browser.fetch(url + path, { method })
    t.equal(res.status, 404, `${method} ${path.split('?')[0] as string}: 404`)
    t.same(JSON.parse(res.body), { error: 'not_found', message: 'No such route.' }, 'the prefix\'s own not-found body')
  }
  const incoming = logs.filter((l) => l.includes('"incoming request"'))
  t.ok(incoming.some((l) => l.includes('"url":"/auth/Callback?code=[REDACTED]&state=[REDACTED]"')), 'the missed URL, redacted')
  t.same(findLeaks(['code_leakcanary', 'state_leakcanary', '/private-return-path-0123456789'], logs), [], 'no code, state or returnTo in any line')
})

/**
 * token-store, the proxy and, in one scope with @fastify/session, oauth-routes, on a Fastify whose logger writes to
 * `lines`: `options` are the app's own (a childLoggerFactory, logger serializers); `more` adds routes to that scope.
 */
async function signInRoutesApp (
  t: { teardown: (fn: () => unknown) => void },
  lines: string[],
  options: { childLoggerFactory?: FastifyServerOptions['childLoggerFactory'], serializers?: FastifyLoggerOptions['serializers'], scopeSerializers?: FastifyLoggerOptions['serializers'] },
  more?: (scope: FastifyInstance) => void
): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify')
  const { default: fastifyCookie } = await import('@fastify/cookie')
  const { default: fastifySession } = await import('@fastify/session')
  const { default: tokenStore } = await import('@fastify-aihubmix/token-store')
  const { default: aihubmixProxy } = await import('@fastify-aihubmix/aihubmix-proxy')
  const { default: oauthRoutes } = await import('@fastify-aihubmix/oauth-routes')
  const { Writable } = await import('node:stream')
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb() } })
  const app = Fastify({
    logger: options.serializers === undefined ? { level: 'info', stream } : { level: 'info', stream, serializers: options.serializers },
    ...(options.childLoggerFactory === undefined ? {} : { childLoggerFactory: options.childLoggerFactory })
  })
  t.teardown(() => app.close())
  const publicUrl = 'http://127.0.0.1:3000'
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: ['k'.repeat(40)] })
  await app.register(aihubmixProxy, { baseUrl: 'http://127.0.0.1:9', clientId: 'client_x', clientSecret: 'secret_x', redirectUri: `${publicUrl}/auth/callback` })
  // `scopeSerializers`: register's logSerializers, which Fastify types as serializers to strings (a req one answers an object).
  await app.register(async (scope) => {
    await scope.register(fastifySession, { secret: 's'.repeat(40), store: scope.tokenStore.sessionStore, saveUninitialized: false, cookie: { secure: false } })
    await scope.register(oauthRoutes, { publicUrl })
    more?.(scope)
  }, options.scopeSerializers === undefined ? {} : { logSerializers: options.scopeSerializers as never })
  return app
}

// The app's own child-logger factory (bindings of its own on every request's logger) still makes the loggers of the
// sign-in routes: the redaction is added to what the factory is given, not put in its place.
t.test('an app\'s own childLoggerFactory still makes the sign-in routes\' request loggers', async (t) => {
  const lines: string[] = []
  const app = await signInRoutesApp(t, lines, {
    childLoggerFactory: (logger, bindings, opts, rawReq) => logger.child({ ...bindings, tenant: rawReq.headers['x-tenant'] }, opts)
  })
  await app.inject({ url: '/auth/callback?code=code_leakcanary_factory&state=s', headers: { 'x-tenant': 'tenant-7' } })
  await app.inject({ url: '/auth/callback/?code=code_leakcanary_factory_missed&state=s', headers: { 'x-tenant': 'tenant-8' } })
  const incoming = lines.map((l) => JSON.parse(l) as { msg: string, tenant?: string, req: { url: string } }).filter((l) => l.msg === 'incoming request')
  t.same(incoming.map((l) => [l.tenant, l.req.url]), [
    ['tenant-7', '/auth/callback?code=[REDACTED]&state=[REDACTED]'],
    ['tenant-8', '/auth/callback/?code=[REDACTED]&state=[REDACTED]']
  ], 'the app\'s bindings and the redacted URL on both lines')
  t.notOk(lines.join('').includes('code_leakcanary'), 'the code in no line')
})

// An app with a req serializer of its own (no client IP, for privacy; its trace header), which redacts nothing: the
// sign-in routes replaced it with theirs (the IP came back, the trace id was lost). Now its serializer still writes
// their lines, given the request with its URL redacted.
t.test('an app\'s own req serializer writes the sign-in routes\' lines too, with their URL redacted', async (t) => {
  const lines: string[] = []
  const app = await signInRoutesApp(t, lines, {
    serializers: { req: (req: { method: string, url: string, headers: Record<string, unknown> }) => ({ method: req.method, url: req.url, trace: req.headers['x-trace-id'] }) }
  }, (scope) => { scope.get('/mine', async () => ({ ok: true })) })
  await app.inject({ url: '/mine?code=mine', headers: { 'x-trace-id': 'trace-1' } })
  await app.inject({ url: '/auth/callback?code=code_leakcanary_x&state=s', headers: { 'x-trace-id': 'trace-2' } })
  const incoming = lines.map((l) => JSON.parse(l) as { msg: string, req: Record<string, unknown> }).filter((l) => l.msg === 'incoming request').map((l) => l.req)
  t.same(incoming, [
    { method: 'GET', url: '/mine?code=mine', trace: 'trace-1' },
    { method: 'GET', url: '/auth/callback?code=[REDACTED]&state=[REDACTED]', trace: 'trace-2' }
  ], 'the app\'s shape on both routes; on the sign-in route, the URL redacted')
  t.notOk(lines.join('').includes('code_leakcanary_x'), 'the code in no line')
})

// A serializer that logs `originalUrl` (the URL before any rewriteUrl) carried the code as well: it is redacted too.
t.test('an app\'s own req serializer that logs originalUrl: the callback\'s code is in no line', async (t) => {
  const lines: string[] = []
  const app = await signInRoutesApp(t, lines, {
    serializers: { req: (req: { method: string, originalUrl: string }) => ({ method: req.method, originalUrl: req.originalUrl }) }
  })
  await app.inject({ url: '/auth/callback?code=code_leakcanary_original&state=s' })
  const incoming = lines.map((l) => JSON.parse(l) as { msg: string, req: Record<string, unknown> }).filter((l) => l.msg === 'incoming request').map((l) => l.req)
  t.same(incoming, [{ method: 'GET', originalUrl: '/auth/callback?code=[REDACTED]&state=[REDACTED]' }], 'the app\'s serializer, originalUrl redacted')
  t.notOk(lines.join('').includes('code_leakcanary_original'), 'the code in no line')
})

// A req serializer given to the scope that holds the sign-in routes (register's `logSerializers`) is the app's choice
// for those routes, over its logger's: it writes their lines, with the URL redacted.
t.test('a req serializer of the sign-in routes\' scope (logSerializers) writes their lines, over the logger\'s, URL redacted', async (t) => {
  const lines: string[] = []
  const app = await signInRoutesApp(t, lines, {
    serializers: { req: (req: { url: string }) => ({ url: req.url, by: 'logger' }) },
    scopeSerializers: { req: (req: { url: string, headers: Record<string, unknown> }) => ({ url: req.url, by: 'scope', trace: req.headers['x-trace-id'] }) }
  })
  await app.inject({ url: '/auth/callback?code=code_leakcanary_scope&state=s', headers: { 'x-trace-id': 'trace-9' } })
  const incoming = lines.map((l) => JSON.parse(l) as { msg: string, req: Record<string, unknown> }).filter((l) => l.msg === 'incoming request').map((l) => l.req)
  t.same(incoming, [{ url: '/auth/callback?code=[REDACTED]&state=[REDACTED]', by: 'scope', trace: 'trace-9' }], 'the scope\'s serializer, URL redacted')
  t.notOk(lines.join('').includes('code_leakcanary_scope'), 'the code in no line')
})

t.test('redactUrl replaces the values of code, state, iss, error_description and returnTo, however written', async (t) => {
  const cases: Array<[string, string]> = [
    ['/auth/callback', '/auth/callback'],
    ['/auth/callback?code=abc&state=def', '/auth/callback?code=[REDACTED]&state=[REDACTED]'],
    ['/auth/callback?state=a&state=b&x=1', '/auth/callback?state=[REDACTED]&state=[REDACTED]&x=1'],
    ['/auth/callback?%63ode=abc&st%61te=def', '/auth/callback?%63ode=[REDACTED]&st%61te=[REDACTED]'],
    ['/auth/callback?error=access_denied&error_description=secret%20text&iss=https%3A%2F%2Fx', '/auth/callback?error=access_denied&error_description=[REDACTED]&iss=[REDACTED]'],
    ['/auth/login?returnTo=%2Fa&mode=popup', '/auth/login?returnTo=[REDACTED]&mode=popup'],
    ['/x?code', '/x?code=[REDACTED]'],
    ['/x?%E0%A4%A=1&code=2', '/x?%E0%A4%A=1&code=[REDACTED]'],
    ['/x?codes=1&mycode=2', '/x?codes=1&mycode=2'],
    // A callback URL mangled on its way (a proxy, a copy and paste): the provider's code is still in it.
    ['/auth/callback?Code=abc&STATE=def', '/auth/callback?Code=[REDACTED]&STATE=[REDACTED]'],
    ['/auth/callback?code%00=abc', '/auth/callback?code%00=[REDACTED]'],
    ['/auth/callback?code%ZZ=abc', '/auth/callback?code%ZZ=[REDACTED]'],
    ['/auth/callback?code[]=abc&%20code=def&code+=ghi', '/auth/callback?code[]=[REDACTED]&%20code=[REDACTED]&code+=[REDACTED]'],
    ['/auth/callback?x=1;code=abc;y=2&state=def', '/auth/callback?x=1;code=[REDACTED];y=2&state=[REDACTED]'],
    ['/auth/login?ReturnTo=%2Fa', '/auth/login?ReturnTo=[REDACTED]'],
    // A provider appending `?code=` to a redirect URI that has a query already; an encoded `=`.
    ['/auth/callback?x=1?code=abc&state=def', '/auth/callback?x=1?code=[REDACTED]&state=[REDACTED]'],
    ['/auth/callback?code%3Dabc&state%3ddef', '/auth/callback?[REDACTED]&[REDACTED]'],
    ['/auth/callback?x=a%3Db', '/auth/callback?x=a%3Db']
  ]
  for (const [input, expected] of cases) t.equal(redactUrl(input), expected, input)
})

// A callback that lands outside oauth-routes' prefix (the redirect URI still registered for /auth/callback while the
// routes moved to /account, with the start check turned off) meets the app's default not-found handler, which logs
// `Route GET:<url> not found` as its message: no serializer sees it. loggerOptions()' logMethod hook redacts the URLs
// quoted in any message or format argument (found by a review of a team moving the prefix).
t.test('loggerOptions(): a code quoted in a message (the app\'s own 404 outside the prefix, a format argument) is redacted', async (t) => {
  const { url, app, mock, lines: logs } = await startComposedApp(t, { oauth: { prefix: '/account', checkRedirectUri: false } })
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/account/login`)
  const back = await browser.get(TestBrowser.location(start))
  const landed = TestBrowser.location(back)
  t.match(landed, /\/auth\/callback\?code=/, 'the provider sends the browser to the registered /auth/callback')
  const res = await browser.get(landed)
  t.equal(res.status, 404, 'which the app does not serve')
  await browser.get(`${url}/elsewhere?x=1&code=code_leakcanary_outside&state=state_leakcanary_outside`)
  app.log.info('quoted: %s', '/cb?state=state_leakcanary_fmt&code=code_leakcanary_fmt')
  app.log.warn({ note: 'object first' }, 'at GET:/cb?code=code_leakcanary_msg ends')
  const messages = logs.map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '')
  t.ok(messages.some((m) => m === 'Route GET:/auth/callback?code=[REDACTED]&state=[REDACTED] not found'), 'the not-found line, its URL redacted')
  t.ok(messages.includes('quoted: /cb?state=[REDACTED]&code=[REDACTED]'), 'a format argument, redacted')
  t.ok(messages.includes('at GET:/cb?code=[REDACTED] ends'), 'a message after an object, redacted')
  t.ok(messages.includes('Route GET:/elsewhere?x=1&code=[REDACTED]&state=[REDACTED] not found'), 'other parameters kept')
  t.same(findLeaks([...mock.issued().codes, 'code_leakcanary_outside', 'state_leakcanary_outside', 'code_leakcanary_fmt', 'state_leakcanary_fmt', 'code_leakcanary_msg'], logs), [], 'no code or state in any line')
})
