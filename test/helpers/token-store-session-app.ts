/**
 * A small app with @fastify/cookie + @fastify/session on the token store's session store, as the example and
 * oauth-routes compose them, for the token-store session-store and hot-path tests.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import type { TokenSet, TokenStoreOptions } from '@fastify-aihubmix/token-store'
import { buildApp, countingRefresher } from './token-store.js'
import type { T } from './token-store.js'

export const SESSION_SECRET = 'test-session-secret-of-more-than-32-chars'

declare module 'fastify' {
  interface Session {
    user?: string
    visits?: number
  }
}

/** Fingerprint of a token, so responses never echo one. */
export function fp (token: string | undefined): string | null {
  return token === undefined ? null : createHash('sha256').update(token).digest('hex').slice(0, 16)
}

export interface SessionAppOptions {
  cookieMaxAge?: number
  logs?: Array<Record<string, unknown>> | undefined
}

/**
 * Routes:
 * - POST /visit: touches the session (pre-login session with data)
 * - POST /login {user, set}: regenerate (pre-login id destroyed), store user and token set
 * - GET /me: {user, token: fp(accessToken)} via request.tokens.get()
 * - GET /fresh: {token} via request.tokens.getFresh() with a refresher that counts into app.refreshCalls
 * - POST /rotate {set}: save a new set, then read it back in the same request (and getFresh it)
 * - POST /logout: clear tokens, destroy the session
 */
export async function sessionApp (t: T, options: Partial<TokenStoreOptions>, app: SessionAppOptions = {}): Promise<FastifyInstance & { refreshCalls: string[] }> {
  const refresher = countingRefresher()
  const built = await buildApp(t, options, {
    ...(app.logs !== undefined ? { logs: app.logs } : {}),
    setup: async instance => {
      await instance.register(fastifyCookie)
      await instance.register(fastifySession, {
        secret: SESSION_SECRET,
        store: instance.tokenStore.sessionStore,
        saveUninitialized: false,
        rolling: false,
        cookie: { secure: false, httpOnly: true, sameSite: 'lax', path: '/', ...(app.cookieMaxAge !== undefined ? { maxAge: app.cookieMaxAge } : {}) }
      })
      instance.post('/visit', async request => {
        request.session.visits = (request.session.visits ?? 0) + 1
        return { visits: request.session.visits }
      })
      instance.post<{ Body: { user: string, set: TokenSet } }>('/login', async request => {
        await request.session.regenerate()
        request.session.user = request.body.user
        await request.tokens.save(request.body.set)
        return { ok: true }
      })
      instance.get('/me', async request => {
        const set = await request.tokens.get()
        return { user: request.session.user ?? null, token: fp(set?.accessToken) }
      })
      instance.get('/fresh', async request => {
        const set = await request.tokens.getFresh(refresher.refresh)
        return { token: fp(set.accessToken) }
      })
      instance.post<{ Body: { set: TokenSet } }>('/rotate', async request => {
        const before = await request.tokens.get()
        await request.tokens.save(request.body.set)
        const after = await request.tokens.get()
        const fresh = await request.tokens.getFresh(refresher.refresh)
        return { before: fp(before?.accessToken), after: fp(after?.accessToken), fresh: fp(fresh.accessToken) }
      })
      instance.post('/logout', async (request, reply) => {
        await request.tokens.clear()
        await request.session.destroy()
        return reply.code(204).send()
      })
    }
  })
  return Object.assign(built, { refreshCalls: refresher.calls })
}

/** The session cookie a response set, as a Cookie header value. */
export function sessionCookie (res: LightMyRequestResponse): string {
  const cookie = res.cookies.find(c => c.name === 'sessionId')
  if (cookie === undefined) throw new Error('no session cookie in the response')
  return `sessionId=${cookie.value}`
}

/** The raw session id inside a signed cookie value (`<id>.<signature>`). */
export function sessionIdOf (cookieHeader: string): string {
  const value = decodeURIComponent(cookieHeader.slice('sessionId='.length))
  return value.slice(0, value.lastIndexOf('.'))
}
