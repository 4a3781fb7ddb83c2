/**
 * Type tests for the routes typed from their schemas (@fastify/type-provider-typebox): checked by
 * `npx tsc -p test/tsconfig.json` (part of `npm test`; a `@ts-expect-error` that stops erroring fails the type check).
 * The routes here are declared the way the plugins and the example page declare theirs, with the very schemas they
 * use (`withTypeProvider<TypeBoxTypeProvider>()` on the plugin's instance), so what compiles or fails here is what
 * compiles or fails there. The run-time part serves them, so the file also proves the schemas validate as typed.
 */
import t from 'tap'
import Fastify from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Topup, UserInfo } from '@fastify-aihubmix/aihubmix-proxy'
import { ErrorReplySchema, TopupReplySchema, UserInfoReplySchema } from '../../src/aihubmix-proxy/schemas.js'
import {
  checkCallbackQuery,
  ErrorReply,
  LoginQuery,
  LogoutQuery,
  NoContentReply,
  SessionParams,
  SessionReply,
  SessionsReply
} from '../../src/oauth-routes/schemas.js'
import { PageReply } from '../../example/page.js'

/** true when A and B are the same type (neither wider nor narrower). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

const USER: UserInfo = { id: 7, username: 'ada', email: 'ada@example.com', quota: 100 }
const TOPUP: Topup = { topup_url: 'https://aihubmix.example/topup' }

function typedApp () {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()

  // GET /auth/login: the query is what LoginQuery says, no cast.
  app.get('/login', { schema: { querystring: LoginQuery } }, async (request) => {
    // returnTo is whatever the query holds (an array when repeated): safeReturnTo checks it, not the schema.
    const returnTo: Equal<typeof request.query.returnTo, unknown> = true
    const mode: Equal<typeof request.query.mode, string | undefined> = true
    // @ts-expect-error returnTo may be missing, or not a string
    const sure: string = request.query.returnTo
    // @ts-expect-error LoginQuery has no state
    const state: unknown = request.query.state
    return { returnTo, mode, sure, state, query: request.query }
  })

  // GET /auth/callback: no querystring schema (the state comes first), an unknown record until checkCallbackQuery.
  app.get<{ Querystring: Record<string, unknown> }>('/callback', async (request) => {
    const query = request.query
    const state: Equal<typeof query.state, unknown> = true
    // @ts-expect-error not a string before it is checked
    const code: string | undefined = query.code
    if (!checkCallbackQuery.Check(query)) return { state, code, checked: false }
    const checked: string | undefined = query.code
    return { state, code, checked }
  })

  // POST /auth/logout: `everywhere` from LogoutQuery; a 204 without a body, or a 403 ErrorReply.
  app.post('/logout', { schema: { querystring: LogoutQuery, response: { 204: NoContentReply, 403: ErrorReply } } }, async (request, reply) => {
    const everywhere: Equal<typeof request.query.everywhere, '1' | 'true' | '0' | 'false' | undefined> = true
    if (everywhere && request.headers['x-csrf'] !== '1') {
      // @ts-expect-error a 403 carries error and message, nothing else
      if (request.query.everywhere === 'true') return reply.code(403).send({ error: 'csrf_header_required' })
      return reply.code(403).send({ error: 'csrf_header_required', message: 'Send X-CSRF: 1.' })
    }
    return reply.code(204).send(null)
  })

  // GET /auth/session: the answer must be SessionReply.
  app.get('/session', { schema: { response: { 200: SessionReply } } }, async () => ({ authenticated: false }))
  app.get('/session-bad', { schema: { response: { 200: SessionReply } } },
    // @ts-expect-error `authenticated` is a boolean
    async () => ({ authenticated: 'no' }))
  app.get('/session-missing', { schema: { response: { 200: SessionReply } } },
    // @ts-expect-error `authenticated` is required
    async () => ({ expiresAt: new Date(0).toISOString() }))

  // GET /auth/sessions: the 200 is SessionsReply, every 4xx/5xx an ErrorReply, also through reply.send.
  app.get('/sessions', { schema: { response: { 200: SessionsReply, '4xx': ErrorReply, '5xx': ErrorReply } } }, async (request, reply) => {
    if (request.headers['x-fail'] === '1') {
      // @ts-expect-error an error answer needs its message
      return reply.code(401).send({ error: 'unauthenticated' })
    }
    if (request.headers['x-fail'] === '2') return reply.code(401).send({ error: 'unauthenticated', message: 'Sign in first.' })
    const at = new Date(0).toISOString()
    return { sessions: [{ id: 's1', current: true, createdAt: at, lastSeenAt: at, userAgent: 'tap' }] }
  })
  app.get('/sessions-bad', { schema: { response: { 200: SessionsReply } } },
    // @ts-expect-error a session's `current` is a boolean
    async () => ({ sessions: [{ id: 's1', current: 'yes', createdAt: '', lastSeenAt: '', userAgent: '' }] }))

  // DELETE /auth/sessions/:id: `id` from SessionParams; only the codes the schema names.
  app.delete('/sessions/:id', {
    schema: { params: SessionParams, response: { 204: NoContentReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply } }
  }, async (request, reply) => {
    const id: Equal<typeof request.params.id, string> = true
    if (request.params.id === 'teapot') {
      // @ts-expect-error 418 is not one of the route's answers
      return reply.code(418).send({ error: 'teapot', message: 'no' })
    }
    return reply.code(404).send({ error: 'not_found', message: `No such session (${String(id)}).` })
  })

  // The proxy's GET /api/user/info and /api/topup: the provider's shapes, nothing else.
  app.get('/me', { schema: { response: { 200: UserInfoReplySchema, 401: ErrorReplySchema } } }, async () => USER)
  app.get('/me-bad', { schema: { response: { 200: UserInfoReplySchema, 401: ErrorReplySchema } } },
    // @ts-expect-error a top-up answer is not a userinfo answer
    async () => TOPUP)
  app.get('/topup', { schema: { response: { 200: TopupReplySchema, 401: ErrorReplySchema } } }, async () => TOPUP)
  app.get('/topup-bad', { schema: { response: { 200: TopupReplySchema } } },
    // @ts-expect-error topup_url is a string
    async () => ({ topup_url: 1 }))

  // The example page's GET /: HTML, a string and nothing else.
  app.get('/', { schema: { response: { 200: PageReply } } }, async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').send('<!doctype html><title>ok</title>')
  })
  app.get('/page-bad', { schema: { response: { 200: PageReply } } }, async (_request, reply) => {
    // @ts-expect-error the page is a string of HTML
    return reply.type('text/html; charset=utf-8').send({ html: '<p>' })
  })
  return app
}

t.test('the typed routes serve what their types say', async (t) => {
  const app = typedApp()
  t.teardown(() => app.close())

  const login = await app.inject({ url: '/login?returnTo=%2Fhome' })
  t.equal(login.statusCode, 200)
  t.same(login.json().query, { returnTo: '/home' }, 'returnTo is the string of the query')
  t.same((await app.inject({ url: '/login?returnTo=%2Fa&returnTo=%2Fb' })).json().query, { returnTo: ['/a', '/b'] }, 'a repeated returnTo reaches the handler')
  t.equal((await app.inject({ url: `/login?returnTo=${'x'.repeat(4097)}` })).statusCode, 200, 'so does a long one')
  t.equal((await app.inject({ url: `/login?mode=${'x'.repeat(33)}` })).statusCode, 400, 'LoginQuery is validated')

  t.same((await app.inject({ url: '/callback?code=c' })).json(), { state: true, code: 'c', checked: 'c' })
  t.same((await app.inject({ url: '/callback?code=' })).json(), { state: true, code: '', checked: false }, 'an empty code fails the check')

  const signedOut = await app.inject({ method: 'POST', url: '/logout?everywhere=1', headers: { 'x-csrf': '1' } })
  t.same([signedOut.statusCode, signedOut.body], [204, ''])
  const refused = await app.inject({ method: 'POST', url: '/logout' })
  t.same([refused.statusCode, refused.json()], [403, { error: 'csrf_header_required', message: 'Send X-CSRF: 1.' }])
  t.same((await app.inject({ url: '/session' })).json(), { authenticated: false })

  const sessions = await app.inject({ url: '/sessions' })
  t.equal(sessions.json().sessions[0].current, true)
  const unauthenticated = await app.inject({ url: '/sessions', headers: { 'x-fail': '2' } })
  t.same([unauthenticated.statusCode, unauthenticated.json()], [401, { error: 'unauthenticated', message: 'Sign in first.' }])
  t.equal((await app.inject({ method: 'DELETE', url: '/sessions/s2' })).statusCode, 404)

  t.same((await app.inject({ url: '/me' })).json(), USER)
  t.same((await app.inject({ url: '/topup' })).json(), TOPUP)
  const page = await app.inject({ url: '/' })
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.body, '<!doctype html><title>ok</title>', 'the page is sent as it is')
})
