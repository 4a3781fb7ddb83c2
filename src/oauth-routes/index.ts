import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type {} from '@fastify/session'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { SessionCheck, TokenSet } from '@fastify-aihubmix/token-store'
import type { UserInfo } from '@fastify-aihubmix/aihubmix-proxy'
import { CsrfHeaderRequiredError, type LoginErrorCode } from './errors.js'
import { resolveOptions, type OAuthRoutesOptions, type ResolvedOAuthRoutesOptions } from './options.js'
import { randomToken, s256, safeEqual, TOKEN_PATTERN } from './pkce.js'
import { safeReturnTo } from './return-to.js'
import { popupPage } from './popup-page.js'

export * from './errors.js'
export * from './options.js'
export { safeReturnTo, MAX_RETURN_TO_LENGTH } from './return-to.js'
export { popupPage } from './popup-page.js'

declare module 'fastify' {
  interface Session {
    /** Random per-browser value that binds login states to the browser that started them. */
    aihubmixBinding?: string
    /** Set at login (on the new session id): `at` when signed in, `seen` when last active (updated sparingly). */
    aihubmixAuth?: { at: number, seen?: number }
  }
}

const LoginQuery = Type.Object({
  returnTo: Type.Optional(Type.String({ maxLength: 4096 })),
  mode: Type.Optional(Type.String({ maxLength: 32 }))
})

const CallbackQuery = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 512 })),
  code: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 4096 })),
  error_uri: Type.Optional(Type.String({ maxLength: 4096 })),
  iss: Type.Optional(Type.String({ maxLength: 2048 }))
})
const checkCallbackQuery = TypeCompiler.Compile(CallbackQuery)

/** What a login state record holds (sealed by token-store, single use). */
const LoginRecord = Type.Object({
  v: Type.String({ pattern: TOKEN_PATTERN.source }), // PKCE verifier
  b: Type.String({ minLength: 1, maxLength: 128 }), // browser binding
  r: Type.String({ maxLength: 4096 }), // validated returnTo
  m: Type.Union([Type.Literal('popup'), Type.Literal('redirect')]),
  t: Type.Number() // created at, epoch ms
})
const checkLoginRecord = TypeCompiler.Compile(LoginRecord)

const SessionReply = Type.Object({
  authenticated: Type.Boolean(),
  expiresAt: Type.Optional(Type.String()),
  scope: Type.Optional(Type.Array(Type.String()))
})

const PROVIDER_ERRORS: Record<string, LoginErrorCode> = { access_denied: 'access_denied' }

function stateKey (state: string): string {
  return `login:${state}`
}

async function routes (fastify: FastifyInstance, opts: { options: ResolvedOAuthRoutesOptions }): Promise<void> {
  const o = opts.options
  const client = fastify.aihubmix
  const issuer = o.issuer ?? client.origin

  fastify.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    reply.header('referrer-policy', 'no-referrer')
  })

  function fail (reply: FastifyReply, code: LoginErrorCode, mode: 'popup' | 'redirect'): FastifyReply {
    const target = `${o.errorPath}?error=${code}`
    if (mode === 'popup') {
      const page = popupPage({ ok: false, error: code }, o.publicOrigin, target)
      return reply.header('content-security-policy', page.csp).type('text/html; charset=utf-8').send(page.html)
    }
    return reply.redirect(target, 302)
  }

  fastify.get(o.routes.login, { schema: { querystring: LoginQuery } }, async (request, reply) => {
    const query = request.query as { returnTo?: string, mode?: string }
    const mode = query.mode === 'popup' ? 'popup' : 'redirect'
    const returnTo = safeReturnTo(query.returnTo, o.defaultReturnTo)
    let binding = request.session.get('aihubmixBinding')
    if (typeof binding !== 'string') {
      binding = randomToken()
      request.session.set('aihubmixBinding', binding)
    }
    const state = randomToken()
    const verifier = randomToken()
    await fastify.tokenStore.putRecord(stateKey(state), { v: verifier, b: binding, r: returnTo, m: mode, t: Date.now() }, o.stateTtlMs)
    return reply.redirect(client.authorizeUrl({ state, codeChallenge: s256(verifier), autoAuthorize: o.autoAuthorize }), 302)
  })

  fastify.get(o.routes.callback, async (request, reply) => {
    const query = request.query as Record<string, unknown>
    const state = query.state
    // The state is checked before anything else; until it is, nothing is called.
    if (state === undefined) return fail(reply, 'missing_parameters', 'redirect')
    if (typeof state !== 'string' || !TOKEN_PATTERN.test(state)) return fail(reply, 'invalid_state', 'redirect')
    const record = await fastify.tokenStore.takeRecord(stateKey(state))
    if (!checkLoginRecord.Check(record) || record.t + o.stateTtlMs < Date.now()) {
      return fail(reply, 'invalid_state', 'redirect')
    }
    const binding = request.session.get('aihubmixBinding')
    if (typeof binding !== 'string' || !safeEqual(binding, record.b)) {
      return fail(reply, 'invalid_state', 'redirect')
    }
    const mode = record.m
    if (!checkCallbackQuery.Check(query)) return fail(reply, 'invalid_request', mode)
    if (query.iss !== undefined && query.iss !== issuer) return fail(reply, 'invalid_issuer', mode)
    if (query.error !== undefined) return fail(reply, PROVIDER_ERRORS[query.error] ?? 'provider_error', mode)
    if (query.code === undefined) return fail(reply, 'missing_parameters', mode)

    let set: TokenSet
    try {
      set = await client.exchangeCode({ code: query.code, codeVerifier: record.v })
    } catch (err) {
      request.log.warn({ err: { code: (err as { code?: unknown }).code, message: (err as Error).message } }, 'authorization code exchange failed')
      return fail(reply, 'token_exchange_failed', mode)
    }

    // A new session id: the pre-login id (which an attacker may have planted) is destroyed.
    // The browser binding is kept, so logins started in other tabs can still finish.
    await request.session.regenerate(['aihubmixBinding'])
    const now = Date.now()
    request.session.set('aihubmixAuth', { at: now, seen: now })
    await request.tokens.save(set)

    if (o.onLogin !== undefined) {
      let userinfo: UserInfo | null = null
      if (o.fetchUserInfoOnLogin) {
        try {
          userinfo = await client.userinfo(set.accessToken)
        } catch (err) {
          request.log.warn({ err: { code: (err as { code?: unknown }).code } }, 'userinfo after login failed')
        }
      }
      try {
        await o.onLogin({ request, userinfo, scope: set.scope })
      } catch (err) {
        request.log.error({ err: { message: (err as Error).message } }, 'onLogin hook failed')
      }
    }

    if (mode === 'popup') {
      const page = popupPage({ ok: true }, o.publicOrigin, record.r)
      return reply.header('content-security-policy', page.csp).type('text/html; charset=utf-8').send(page.html)
    }
    return reply.redirect(record.r, 302)
  })

  fastify.post(o.routes.logout, async (request: FastifyRequest, reply) => {
    if (request.headers[o.csrfHeader] !== '1') {
      const err = new CsrfHeaderRequiredError()
      return reply.code(403).send({ error: 'csrf_header_required', message: err.message })
    }
    if (o.onLogout !== undefined) {
      try {
        await o.onLogout({ request })
      } catch (err) {
        request.log.error({ err: { message: (err as Error).message } }, 'onLogout hook failed')
      }
    }
    const set = await request.tokens.get()
    await request.tokens.clear()
    await request.session.destroy()
    if (set?.refreshToken !== undefined) {
      client.revoke(set.refreshToken, 'refresh_token').catch((err: unknown) => {
        request.log.warn({ err: { code: (err as { code?: unknown }).code } }, 'token revocation failed')
      })
    }
    reply.clearCookie(o.cookieName, { path: '/', httpOnly: true, sameSite: 'lax', secure: o.secureCookies })
    return reply.code(204).send()
  })

  fastify.get(o.routes.session, { schema: { response: { 200: SessionReply } } }, async (request) => {
    if (request.session.get('aihubmixAuth') === undefined) return { authenticated: false }
    const set = await request.tokens.get()
    if (set === null) return { authenticated: false }
    return { authenticated: true, expiresAt: new Date(set.expiresAt).toISOString(), scope: set.scope }
  })
}

type AuthStamp = { at: number, seen?: number }

function isAuthStamp (value: unknown): value is AuthStamp {
  const v = value as AuthStamp | null
  return typeof v === 'object' && v !== null && typeof v.at === 'number' && (v.seen === undefined || typeof v.seen === 'number')
}

/**
 * Idle and absolute session timeouts, from server-side timestamps in the session
 * (never from the cookie's own expiry): 'end' when the signed-in session is past
 * either limit, the new stamp when "last seen" is due for an update (at most every
 * `idleTimeoutMs / 10`, so a steady-state request writes nothing back), else undefined.
 */
function timeoutVerdict (o: ResolvedOAuthRoutesOptions): (auth: unknown, now: number) => 'end' | AuthStamp | undefined {
  const touchEveryMs = Math.max(1000, Math.floor(o.idleTimeoutMs / 10))
  return (auth, now) => {
    if (!isAuthStamp(auth)) return undefined
    const seen = auth.seen ?? auth.at
    if (now - auth.at > o.absoluteTimeoutMs || now - seen > o.idleTimeoutMs) return 'end'
    return now - seen > touchEveryMs ? { at: auth.at, seen: now } : undefined
  }
}

/**
 * The timeouts where @fastify/session runs: a session past a limit is ended (its
 * token set and its store entry destroyed) and the request goes on signed out.
 */
function sessionTimeouts (verdictOf: ReturnType<typeof timeoutVerdict>) {
  return async function enforceSessionTimeouts (request: FastifyRequest): Promise<void> {
    const session = request.session as FastifyRequest['session'] | Record<string, never> | null
    if (session === null || typeof session.get !== 'function') return
    const verdict = verdictOf(session.get('aihubmixAuth'), Date.now())
    if (verdict === undefined) return
    if (verdict === 'end') {
      request.log.info('session ended by its idle or absolute timeout')
      await request.tokens.clear()
      await session.regenerate()
      return
    }
    session.set('aihubmixAuth', verdict)
  }
}

/**
 * The same timeouts where token-store reads sessions from the cookie (routes outside
 * @fastify/session's scope, such as the proxy's with token-store's `sessionCookie`).
 */
function timeoutCheck (verdictOf: ReturnType<typeof timeoutVerdict>): SessionCheck {
  return (session, now) => {
    const verdict = verdictOf(session.aihubmixAuth, now)
    if (verdict === undefined || verdict === 'end') return verdict
    return { touch: { ...session, aihubmixAuth: verdict } }
  }
}

async function oauthRoutes (fastify: FastifyInstance, opts: OAuthRoutesOptions): Promise<void> {
  const options = resolveOptions(opts)
  const verdictOf = timeoutVerdict(options)
  // On every route of this plugin's scope (it is not encapsulated), after @fastify/session loaded the session.
  fastify.addHook('preHandler', sessionTimeouts(verdictOf))
  // And wherever token-store reads the session from the cookie instead.
  fastify.tokenStore.addSessionCheck(timeoutCheck(verdictOf))
  await fastify.register(routes, { prefix: options.prefix, options })
}

export const oauthRoutesPlugin = fp(oauthRoutes, {
  fastify: '5.x',
  name: '@fastify-aihubmix/oauth-routes',
  decorators: { fastify: ['aihubmix', 'tokenStore'], request: ['tokens', 'session'] },
  dependencies: ['@fastify-aihubmix/token-store', '@fastify-aihubmix/aihubmix-proxy', '@fastify/session']
})

export { oauthRoutesPlugin as oauthRoutes }
export default oauthRoutesPlugin
export type { OAuthRoutesOptions }
