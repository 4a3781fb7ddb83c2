import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type {} from '@fastify/session'
import { checkCallbackQuery, ErrorReply, LoginQuery, LogoutQuery, NoContentReply, SessionParams, SessionReply, SessionsReply } from './schemas.js'
import { errorInfo, errorLogFields, isUserId, StoreUnavailableError, UnauthenticatedError, type SessionCheck, type SessionOwner, type TokenSet, type TokenStore } from '@fastify-aihubmix/token-store'
import { publicErrorOf, sendPublicError, TokenEndpointError, UpstreamInvalidResponseError, type UserInfo } from '@fastify-aihubmix/aihubmix-proxy'
import { userinfoRetryDelay } from './userinfo-retry.js'
import { CsrfHeaderRequiredError, OAuthRoutesOptionsError, OAuthRoutesRegisteredTwiceError, OAuthRoutesRegistrationError, RedirectUriMismatchError, SessionNotFoundError, type LoginErrorCode } from './errors.js'
import { resolveOptions, type OAuthRoutesOptions, type ResolvedOAuthRoutesOptions } from './options.js'
import { randomToken, s256, TOKEN_PATTERN } from './pkce.js'
import { safeReturnTo } from './return-to.js'
import { popupLanguage, popupPage } from './popup-page.js'
import { sessionCookieClears } from './cookie-clears.js'
import { LoginCookies, MAX_PENDING_RETURN_TO_LENGTH } from './login-cookies.js'
import { loginErrorHook, publishLogin } from './diagnostics.js'
import { logSerializers, redactUrl } from './redact.js'

// The public surface, named one by one (test/packaging.test.ts holds the list): the plugin, the error classes and
// login error codes, the pending-login bounds, the log redaction, the login channel, and the types of all of
// these. Option resolution, the returnTo check, the popup page and the redaction tables stay inside.
export { OAuthRoutesOptionsError, OAuthRoutesRegisteredTwiceError, OAuthRoutesRegistrationError, RedirectUriMismatchError, SessionNotFoundError, CsrfHeaderRequiredError, LOGIN_ERROR_CODES } from './errors.js'
export type { LoginErrorCode } from './errors.js'
export type { LoginEvent, LogoutEvent } from './options.js'
export { MAX_PENDING_LOGINS, MAX_PENDING_RETURN_TO_LENGTH } from './login-cookies.js'
export { redactUrl, redactUrlsIn, loggerOptions, logSerializers } from './redact.js'
export type { RedactingLoggerOptions, LoggedRequest } from './redact.js'
export { LOGIN_CHANNEL } from './diagnostics.js'
export type { LoginMessage, LoginOutcome } from './diagnostics.js'

declare module 'fastify' {
  interface Session {
    /** Set at login (on the new session id): `at` when signed in, `seen` when last active (updated sparingly). */
    aihubmixAuth?: { at: number, seen?: number }
  }
}

/** The provider's `error` values that are login error codes of their own (a Map: `constructor` is not one). */
const PROVIDER_ERRORS: ReadonlyMap<string, LoginErrorCode> = new Map([['access_denied', 'access_denied']])

/** The marker of a used login state: written before its code is exchanged, so a state is good once. */
function usedKey (state: string): string {
  return `login-used:${state}`
}

/** Fastify's errors for a request body it could not read; these routes take no body. */
const BODY_ERRORS = new Set([
  'FST_ERR_CTP_INVALID_MEDIA_TYPE',
  'FST_ERR_CTP_EMPTY_JSON_BODY',
  'FST_ERR_CTP_INVALID_JSON_BODY',
  'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
  'FST_ERR_CTP_BODY_TOO_LARGE'
])
const NO_BODY_MESSAGE = 'This route takes no request body: send it without one (and without Content-Type).'

const SECURE_NAME_PREFIX = /^__(host|secure)-/i
/** How many other hosts than publicUrl's a plugin instance warns about (see warnOtherHost). */
const MAX_OTHER_HOST_WARNINGS = 5

interface RoutesContext {
  options: ResolvedOAuthRoutesOptions
  logins: LoginCookies
  /** Where the routes end up: the scope's prefix and this plugin's. */
  base: string
  /**
   * The requests whose session cookie was refused for its signature (sessionTimeouts): @fastify/session's clearing of
   * it is dropped (sessionCookieClears), unless a route here clears it itself (a sign-out).
   */
  refusedCookies: WeakSet<FastifyRequest>
}

async function routes (fastify: FastifyInstance, opts: RoutesContext): Promise<void> {
  const o = opts.options
  const logins = opts.logins
  const base = opts.base
  const client = fastify.aihubmix
  const store = fastify.tokenStore
  const issuer = o.issuer ?? client.origin
  const loginEnded = loginErrorHook(client)
  // Routes typed from their schemas (types only: at run time this is `fastify`, validation and serialisation unchanged).
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  // Fastify logs each request's URL ("incoming request"): the callback's carries the code and the state, the login's
  // a returnTo. Whatever logger the app has (`logger: true` too, not only loggerOptions()), every request this scope
  // answers is logged with its URL redacted: through the app's own `req` serializer (route-level, scope-level or the
  // logger's), given the request with that URL, else through ours. Set as this scope's child-logger factory, so it
  // also covers the requests that miss a route under the prefix (its not-found handler below: a callback URL with a
  // trailing slash, another case, another method still carries the code), which no route option reaches.
  const loggerSerializers = (fastify.log as unknown as Record<symbol, { req?: unknown } | undefined>)[PINO_SERIALIZERS]
  const appChildLogger = fastify.childLoggerFactory
  fastify.setChildLoggerFactory(function (logger, bindings, loggerOpts, rawReq) {
    const serializers = loggerOpts.serializers as Record<string, unknown> | undefined
    const own: unknown = serializers?.req ?? loggerSerializers?.req
    const req = typeof own === 'function' ? (request: FastifyRequest) => (own as (r: FastifyRequest) => unknown)(withRedactedUrl(request)) : logSerializers.req
    // pino reads a child's serializers with for...in: those it inherits (the scope's) stay.
    const redacting = Object.assign(Object.create(serializers ?? null) as object, { req })
    return appChildLogger.call(this, logger, bindings, { ...loggerOpts, serializers: redacting }, rawReq)
  })

  fastify.addHook('onRequest', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    reply.header('referrer-policy', 'no-referrer')
    // Every answer here is JSON or a page of its own: never to be sniffed as something else (a security review).
    reply.header('x-content-type-options', 'nosniff')
  })

  // A mistyped route under the prefix (a callback path with a typo, a trailing slash) answers without
  // Fastify's default body, which echoes the URL: a callback's URL carries the code and the state.
  if (fastify.prefix !== '') {
    fastify.setNotFoundHandler(async (_request, reply) => {
      return reply.code(404).send({ error: 'not_found', message: 'No such route.' })
    })
  }

  // Every error of these routes answers `{error, message}` as the proxy's do (publicErrorOf): a store outage is
  // 503 store_unavailable, whether a handler met it or @fastify/session's own hooks did (its onRequest reads the
  // session from the store before any handler, its onSend saves it). Set on this encapsulated context only: the
  // routes of the user's @fastify/session scope keep the user's error handler.
  const storeOutage = outageLog()
  fastify.setErrorHandler(async (err: FastifyError, request, reply) => {
    if (err instanceof SessionNotFoundError) {
      return reply.code(404).header('cache-control', 'no-store').send({ error: 'not_found', message: err.message })
    }
    // A body Fastify could not read (a form's or multipart's type the app has no parser for, an empty JSON body):
    // Fastify's status, with what to do instead of "The request was not valid.". No route here takes a body.
    if (typeof err.code === 'string' && BODY_ERRORS.has(err.code)) {
      return reply.code(err.statusCode ?? 400).header('cache-control', 'no-store').send({ error: 'bad_request', message: NO_BODY_MESSAGE })
    }
    const pub = publicErrorOf(err)
    if (pub.statusCode >= 500) {
      // A store outage fails every request that needs the store: one warning per STORE_OUTAGE_LOG_INTERVAL_MS, the
      // others at debug (an operator review counted about 500 lines per instance in a 4 s Redis restart).
      const outage = pub.statusCode !== 500 && err instanceof StoreUnavailableError
      const level = pub.statusCode === 500 ? 'error' : outage ? storeOutage.level() : 'warn'
      request.log[level]({ error: errorLogFields(err) }, `oauth-routes: request failed${outage && level === 'warn' ? storeOutage.more() : ''}`)
    }
    // The sign-in's two pages are browser navigations: like every other failure of theirs, a store outage sends
    // the browser to the page with a code it can show (login_error store_unavailable), not to a JSON body.
    const route = request.routeOptions.url
    if (pub.error === 'store_unavailable' && request.method === 'GET' && (route === base + o.routes.login || route === base + o.routes.callback)) {
      return fail(reply, 'store_unavailable', signInMode(request, route === base + o.routes.login))
    }
    return sendPublicError(reply, err)
  })

  /**
   * Whether a sign-in page answers in the popup or by redirect: the login's query says so; the callback's is the
   * pending login's mode (kept by the handler once it took the login cookie, else read from the cookie, which a
   * failure before the handler leaves in place: a reload of the callback once the store is back can still finish).
   */
  function signInMode (request: FastifyRequest, login: boolean): 'popup' | 'redirect' {
    const query = request.query as { mode?: unknown, state?: unknown } | undefined
    if (login) return query?.mode === 'popup' ? 'popup' : 'redirect'
    const taken = callbackModes.get(request)
    if (taken !== undefined) return taken
    const state = query?.state
    if (typeof state !== 'string' || !TOKEN_PATTERN.test(state)) return 'redirect'
    return logins.peek(request, state)?.mode ?? 'redirect'
  }
  /** The callback's pending login mode, per request, once the handler has taken the login cookie. */
  const callbackModes = new WeakMap<FastifyRequest, 'popup' | 'redirect'>()

  /**
   * Why a sign-in started by this request could never finish, or undefined. @fastify/session sets no
   * Secure cookie when `request.protocol` is not https (its own check, which trustProxy feeds), and browsers
   * drop a `__Host-`/`__Secure-` cookie without Secure: either way the login would come back signed out,
   * and loop. The session's cookie options are read where @fastify/session resolved them for this request
   * (`request.session.cookie.secure`, after `'auto'`); the login cookie is Secure when publicUrl is https.
   */
  function insecureCookie (request: FastifyRequest): string | undefined {
    const https = request.protocol === 'https'
    const cookie = (request.session as { cookie?: { secure?: unknown } } | null | undefined)?.cookie
    const sessionSecure = cookie?.secure === true
    if (!https && sessionSecure) {
      return 'the session cookie is Secure (@fastify/session cookie.secure) but this request came over plain http ' +
        '(request.protocol), so the browser would never get it. Fix: serve the app over https, and behind a TLS proxy set ' +
        'Fastify\'s trustProxy so that X-Forwarded-Proto is believed; for plain-http development set cookie.secure: \'auto\' ' +
        'and a cookie name without the __Host- prefix'
    }
    if (!https && o.secureCookies) {
      return 'publicUrl is https but this request came over plain http (request.protocol), so the browser would drop the ' +
        'Secure login cookie. Fix: behind a TLS proxy set Fastify\'s trustProxy so that X-Forwarded-Proto is believed; ' +
        'for plain-http development use an http publicUrl'
    }
    if (cookie !== undefined && !sessionSecure && SECURE_NAME_PREFIX.test(o.cookieName)) {
      return `the session cookie ${o.cookieName} has a __Host-/__Secure- prefix but is not Secure, so browsers refuse it. ` +
        'Fix: on plain http use a name without the prefix (e.g. \'sid\'); over https set cookie.secure: true or \'auto\''
    }
    return undefined
  }
  // One warning per cause and plugin instance: the cause names the fix, repeating it would only fill the log.
  const warned = new Set<string>()

  const publicHost = new URL(o.publicOrigin).host
  /** Other hosts already warned about; bounded, as the Host header is the client's to choose. */
  const otherHosts = new Set<string>()
  /**
   * A sign-in started at another host than publicUrl's (the app opened at http://127.0.0.1:3000 while publicUrl
   * says localhost, the address Fastify prints beside the one configured) cannot finish: the login cookie is set
   * for the host the browser used, and the provider sends the browser back to publicUrl's, where it is missing
   * (invalid_state). Not refused, since a proxy that rewrites Host without X-Forwarded-Host looks the same; one
   * warning per host, for the first few hosts.
   */
  function warnOtherHost (request: FastifyRequest): void {
    let host: string
    try {
      host = new URL(`${request.protocol}://${request.host}`).host // without a default port, as publicUrl's
    } catch {
      return
    }
    if (host === publicHost || otherHosts.has(host) || otherHosts.size >= MAX_OTHER_HOST_WARNINGS) return
    otherHosts.add(host)
    request.log.warn(`oauth-routes: a sign-in started at ${host}, but publicUrl is ${o.publicOrigin}: the browser keeps ` +
      `the login cookie for ${host} and the provider sends it back to ${publicHost}, so the sign-in fails with invalid_state. ` +
      `Fix: open the app at ${o.publicOrigin}, or set publicUrl to the address browsers use (behind a proxy, Fastify's ` +
      'trustProxy so that X-Forwarded-Host is believed)')
  }

  function fail (reply: FastifyReply, code: LoginErrorCode, mode: 'popup' | 'redirect'): FastifyReply {
    publishLogin(client, code)
    // errorPath may have a query of its own (`/login?from=oauth`): the code is one more parameter of it.
    const target = `${o.errorPath}${o.errorPath.includes('?') ? '&' : '?'}error=${code}`
    if (mode === 'popup') {
      const page = popupPage({ ok: false, error: code }, o.publicOrigin, target, popupLanguage(reply.request.headers['accept-language']))
      return reply.header('content-security-policy', page.csp).type('text/html; charset=utf-8').send(page.html)
    }
    return reply.redirect(target, 302)
  }

  // Writes nothing on the server: the pending login goes to the browser, sealed (login-cookies.ts).
  app.get(o.routes.login, { schema: { querystring: LoginQuery }, onError: loginEnded }, async (request, reply) => {
    const query = request.query
    const mode = query.mode === 'popup' ? 'popup' : 'redirect'
    const insecure = insecureCookie(request)
    if (insecure !== undefined) {
      if (!warned.has(insecure)) {
        warned.add(insecure)
        request.log.warn(`oauth-routes: sign-in refused with insecure_cookie: ${insecure}`)
      }
      return fail(reply, 'insecure_cookie', mode)
    }
    warnOtherHost(request)
    let returnTo = safeReturnTo(query.returnTo, o.defaultReturnTo)
    if (returnTo.length > MAX_PENDING_RETURN_TO_LENGTH) returnTo = o.defaultReturnTo
    const state = logins.newState(request)
    const verifier = randomToken()
    logins.issue(request, reply, state, { verifier, returnTo, mode, created: Date.now() })
    return reply.redirect(client.authorizeUrl({ state, codeChallenge: s256(verifier), autoAuthorize: o.autoAuthorize }), 302)
  })

  /**
   * Composition mistakes that only show once a sign-in has worked, each said in one error line, once per app: the
   * sign-in itself succeeds, and what fails later (the user's session list, the /api routes) fails without a word.
   */
  let storeChecked = false
  let cookieChecked = false
  // How the diagnostics below name the routes that read the session from the cookie: the proxy's, where they are.
  const proxyBase = proxyRoutesBase(fastify)
  const cookieRoutes = proxyBase === undefined ? 'the proxy\'s routes' : `the proxy's ${proxyBase}/*`

  /** @fastify/session must keep its sessions in token-store's store: the user's index and sessionCookie read them there. */
  function checkSessionStore (request: FastifyRequest): void {
    if (storeChecked) return
    storeChecked = true
    // @fastify/session's request.sessionStore is the `store` it was given (or its own MemoryStore).
    if ((request as { sessionStore?: unknown }).sessionStore === store.sessionStore) return
    const api = store.sessionCookieName === undefined ? '' : `, and every route that reads the session with token-store's sessionCookie (${cookieRoutes}) answers 401`
    request.log.error(`oauth-routes: @fastify/session keeps its sessions in a store that is not token-store's, so sign-in works but GET ${base}${o.routes.sessions} ` +
      `lists nothing and sign-out everywhere misses this session${api}. Fix: register @fastify/session with store: app.tokenStore.sessionStore`)
  }

  /**
   * The name and (URL-decoded) value of the cookie @fastify/session set on this reply for this request's session, or
   * undefined. Read on the callback's reply once @fastify/session's onSend (an onSend of the scope, which runs before
   * a route's own) set it. Only names are compared and logged, never a value.
   */
  function cookieSetBySession (request: FastifyRequest, reply: FastifyReply): { name: string, value: string } | undefined {
    const sealed = (request.session as { encryptedSessionId?: unknown } | null | undefined)?.encryptedSessionId
    if (typeof sealed !== 'string' || sealed === '') return undefined
    const header = reply.getHeader('set-cookie')
    const lines = header === undefined ? [] : Array.isArray(header) ? header : [String(header)]
    for (const line of lines) {
      const eq = line.indexOf('=')
      if (eq <= 0) continue
      const end = line.indexOf(';', eq)
      const value = line.slice(eq + 1, end === -1 ? undefined : end)
      let decoded: string
      try {
        decoded = decodeURIComponent(value)
      } catch {
        continue
      }
      // endsWith: @fastify/session's cookiePrefix, when set, comes before the signed id.
      if (decoded.endsWith(sealed)) return { name: line.slice(0, eq).trim(), value: decoded }
    }
    return undefined
  }

  /** The session cookie's name, as @fastify/session sets it, must be token-store's sessionCookie.name and ours. */
  function checkCookieNames (request: FastifyRequest, reply: FastifyReply): void {
    if (cookieChecked) return
    const set = cookieSetBySession(request, reply)
    if (set === undefined) return
    cookieChecked = true
    const { name } = set
    const read = store.sessionCookieName
    if (read !== undefined && read !== name) {
      request.log.error(`oauth-routes: @fastify/session's cookie is ${name} but token-store's sessionCookie.name is ${read}, so sign-in works ` +
        `and every route that reads the session with token-store's sessionCookie (${cookieRoutes}) answers 401. Fix: use the same cookie ` +
        'name in token-store\'s sessionCookie and @fastify/session\'s cookieName')
    }
    if (name !== o.cookieName) {
      request.log.error(`oauth-routes: @fastify/session's cookie is ${name} but oauth-routes' cookieName is ${o.cookieName}, so logout clears ` +
        `the wrong cookie and the cookie checks of ${base}${o.routes.login} look at the wrong name. Fix: pass @fastify/session's cookieName as ` +
        'oauth-routes\' cookieName')
    }
    // The same name, but a cookie token-store's sessionCookie cannot verify: it reads `<id>.<HMAC-SHA256>`, signed with
    // one of its secrets, and nothing else (token-store's own line for a refused cookie can only say "forged or
    // another secret").
    if (read === name && store.sessionCookieVerifies(set.value) === false) {
      request.log.error(`oauth-routes: token-store's sessionCookie cannot verify the ${name} cookie @fastify/session just set, so sign-in ` +
        `works and every route that reads the session with it (${cookieRoutes}) answers 401. Fix: have @fastify/session sign with a ` +
        'secret that is in sessionCookie.secret, and give it no cookiePrefix, algorithm or signer of its own (sessionCookie reads only ' +
        'the default <id>.<HMAC-SHA256> form)')
    }
  }

  // No querystring schema: the state is checked before anything else (a bad query with a good state is
  // invalid_request, in the login's mode), so the query is any record until checkCallbackQuery says more.
  app.get<{ Querystring: Record<string, unknown> }>(o.routes.callback, {
    onError: loginEnded,
    onSend: async (request, reply, payload) => {
      checkCookieNames(request, reply)
      return payload
    }
  }, async (request, reply) => {
    const query = request.query
    const state = query.state
    // The state is checked before anything else; until it is, nothing is called.
    if (state === undefined) return fail(reply, 'missing_parameters', 'redirect')
    if (typeof state !== 'string' || !TOKEN_PATTERN.test(state)) return fail(reply, 'invalid_state', 'redirect')
    // This browser's cookie for this state, opened with the state as associated data (and cleared).
    const pending = logins.take(request, reply, state)
    if (pending === null) return fail(reply, 'invalid_state', 'redirect')
    const mode = pending.mode
    callbackModes.set(request, mode)
    if (!checkCallbackQuery.Check(query)) return fail(reply, 'invalid_request', mode)
    if (query.iss !== undefined && query.iss !== issuer) return fail(reply, 'invalid_issuer', mode)
    if (query.error !== undefined) return fail(reply, PROVIDER_ERRORS.get(query.error) ?? 'provider_error', mode)
    if (query.code === undefined) return fail(reply, 'missing_parameters', mode)

    // Single use, whatever the browser replays: exactly one callback per state, on any instance, reaches the
    // token endpoint, whether its exchange succeeds or fails (a failed one is not retried with the same pair:
    // the browser's cookie is cleared anyway, and a script replaying it must not get a token call per replay).
    // The marker is written only here (a sealed cookie from /auth/login is needed to get this far) and lives
    // for the state's remaining life at most.
    const used = usedKey(state)
    if (!await fastify.tokenStore.claimRecord(used, Math.max(1, pending.created + o.stateTtlMs - Date.now()))) {
      return fail(reply, 'invalid_state', mode)
    }
    let set: TokenSet
    try {
      set = await client.exchangeCode({ code: query.code, codeVerifier: pending.verifier })
    } catch (err) {
      if (err instanceof TokenEndpointError && err.clientRefused) {
        request.log.error({ error: errorInfo(err) }, `authorization code exchange failed: the token endpoint refused this app's client (${err.oauthError}). ` +
          'Fix: check the clientId and clientSecret given to aihubmix-proxy (the example reads AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET)')
      } else {
        request.log.warn({ error: errorInfo(err) }, 'authorization code exchange failed')
      }
      return fail(reply, 'token_exchange_failed', mode)
    }

    // Who signed in: the user's id indexes the session, so that the user can list it and end it from another
    // device. Without it the sign-in fails (nothing of the session changes): a session no listing shows could
    // not be ended from anywhere else.
    let userinfo: UserInfo
    try {
      userinfo = await userinfoAtSignIn(set.accessToken)
      if (!isUserId(String(userinfo.id))) throw new UpstreamInvalidResponseError('user id')
    } catch (err) {
      request.log.warn({ error: { code: errorInfo(err).code } }, 'userinfo after the code exchange failed: sign-in refused')
      revoke(request, set)
      return fail(reply, 'userinfo_failed', mode)
    }

    // The browser left while the code was exchanged (a closed popup or tab, a dropped connection): no cookie can reach
    // it, so nothing of the sign-in is kept. Committed, it would be a signed-in session no browser holds, listed on
    // the user's other devices and counted towards their cap for as long as a session lives, its grant unrevoked.
    if (browserGone(reply)) return abandon(request, reply, set)

    try {
      // A new session id: the pre-login id (which an attacker may have planted) is destroyed.
      await request.session.regenerate()
      const now = Date.now()
      request.session.set('aihubmixAuth', { at: now, seen: now })
      // The token set first (kept no longer than the session can live: a session left untouched ends in the store,
      // its tokens with it), the index entry after, the record last: whatever ends the session once it is indexed
      // (sign out everywhere on another device, the cap on a user's sessions) deletes what is stored, and nothing is
      // stored after it but the record, which without its token set signs nobody in. Until the record is saved, a
      // listing counts the session as a sign-in in progress.
      await request.tokens.save({ ...set, notAfter: now + o.absoluteTimeoutMs })
      await store.addUserSession(String(userinfo.id), request.session.sessionId, {
        userAgent: request.headers['user-agent'],
        createdAt: now,
        ttlMs: o.absoluteTimeoutMs
      })
      // The record saved here, not by @fastify/session's onSend after this answer: a save that failed there became
      // this plugin's store_unavailable page, whose own onSend saved the same session again, and, Redis back by then,
      // sent its cookie: a sign-in said to have failed left a signed-in browser, counted as both ok and failed.
      // (@fastify/session then only sets the cookie: the session is saved and unchanged. On a connection it would not
      // send its Secure cookie on, it saves nothing, and neither does this.)
      if (!(request.session.cookie.secure === true && request.protocol !== 'https')) await request.session.save()
    } catch (err) {
      // The store failed (503): the sign-in did not happen. Nothing of it may sign anyone in unindexed, and the
      // grant it was given would outlive it unused. Ended whole (record, token set, index entry and link: a write
      // that timed out may still be carried out once Redis answers again, and these deletes come after it), and
      // no session is left for @fastify/session to save or set a cookie for.
      request.session.set('aihubmixAuth', undefined)
      await request.session.destroy().catch(async () => { await request.tokens.clear().catch(() => {}) })
      revoke(request, set)
      throw err
    }

    if (o.onLogin !== undefined) {
      try {
        await o.onLogin({ request, userinfo, scope: set.scope })
      } catch (err) {
        request.log.error({ error: { message: errorInfo(err).message } }, 'onLogin hook failed')
      }
    }

    // The same, had it left while the sign-in was stored: ended again, on every instance, before the answer.
    if (browserGone(reply)) {
      // token-store's session store ends the session whole: its record, its token set, its index entry.
      await request.session.destroy().catch(() => {})
      return abandon(request, reply, set)
    }

    checkSessionStore(request)
    publishLogin(client, 'ok')
    if (mode === 'popup') {
      const page = popupPage({ ok: true }, o.publicOrigin, pending.returnTo, popupLanguage(request.headers['accept-language']))
      return reply.header('content-security-policy', page.csp).type('text/html; charset=utf-8').send(page.html)
    }
    return reply.redirect(pending.returnTo, 302)
  })

  /** The browser closed its connection: no answer can reach it. */
  function browserGone (reply: FastifyReply): boolean {
    return reply.raw.destroyed || reply.raw.socket?.destroyed === true
  }

  /** A sign-in whose browser left: its grant revoked (best effort), nothing kept, nobody to answer. */
  function abandon (request: FastifyRequest, reply: FastifyReply, set: TokenSet): FastifyReply {
    request.log.info('sign-in abandoned: the browser left before its answer; nothing of it is kept')
    revoke(request, set)
    publishLogin(client, 'abandoned')
    return reply.code(499).send()
  }

  /** The signed-in user's userinfo, called once more after a failure that may pass (userinfoRetryDelay). */
  async function userinfoAtSignIn (accessToken: string): Promise<UserInfo> {
    try {
      return await client.userinfo(accessToken)
    } catch (err) {
      const delay = userinfoRetryDelay(err)
      if (delay === undefined) throw err
      await sleep(delay)
      return await client.userinfo(accessToken)
    }
  }

  /** Best effort, in the background: the provider may not offer revocation (then it does nothing). */
  function revoke (request: FastifyRequest, set: TokenSet | null): void {
    if (set?.refreshToken === undefined) return
    client.revoke(set.refreshToken, 'refresh_token').catch((err: unknown) => {
      request.log.warn({ error: { code: errorInfo(err).code } }, 'token revocation failed')
    })
  }

  /**
   * The routes that change something need the CSRF header: checked in their own onRequest hook, before Fastify reads
   * the body, so a plain HTML form (a urlencoded or multipart body, which the app may have no parser for) is refused
   * with the 403 that names the header, not with Fastify's 415. The error handler answers the proxy's body, word for
   * word (publicErrorOf). A callback hook: no promise per request.
   */
  function csrfHeaderRequired (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
    if (request.headers[o.csrfHeader] === '1') done()
    else done(new CsrfHeaderRequiredError(o.csrfHeader))
  }

  /**
   * Ends this request's session (with `everywhere`, every session of its user first, on every instance) and
   * clears the cookie. The token set is read before anything ends, for the revocation.
   */
  async function logout (request: FastifyRequest, reply: FastifyReply, everywhere: boolean): Promise<FastifyReply> {
    if (o.onLogout !== undefined) {
      try {
        await o.onLogout({ request })
      } catch (err) {
        request.log.error({ error: { message: errorInfo(err).message } }, 'onLogout hook failed')
      }
    }
    // A session this request made (no cookie names it: a visitor without a session, or one whose cookie was refused)
    // has nothing stored: nothing is looked up or deleted, so a sign-out without a session costs the store nothing
    // and answers through a store outage (it sent a DEL and a GETDEL for an id never stored, and a 503 while Redis
    // was down).
    if (!namedByCookie(request)) {
      if (everywhere) return sendPublicError(reply, new UnauthenticatedError())
      clearSessionCookie(reply)
      return noContent(reply)
    }
    let set = await request.tokens.get()
    if (everywhere) {
      const owner = await store.sessionOwner(request.session.sessionId)
      let userId = owner?.userId
      if (userId === undefined && set !== null) {
        // A session its user's index lacks (signed in before sessions were indexed, its entry evicted) is the user's
        // all the same: who that is, the provider says. Asking may refresh the set: the one to revoke is the set after.
        try {
          userId = await userIdOf(request)
        } catch (err) {
          // The other devices cannot be reached without knowing whose they are; this one is signed out all the same
          // (the user asked for at least that), and the error says the rest did not happen.
          await endThisSession(request, reply, await request.tokens.get().catch(() => set) ?? set)
          throw err
        }
        set = await request.tokens.get() ?? set
      }
      // Signed out already (the session ended in another tab, or from another device): whose sessions to end is not
      // known here, and a 204 would say every device is signed out. 401: the page signs in again, then retries.
      if (userId === undefined) return sendPublicError(reply, new UnauthenticatedError())
      await store.endUserSessions(userId)
    }
    await endThisSession(request, reply, set)
    return noContent(reply)
  }

  /** Deletes this request's token set and session, revokes `set` (best effort), and clears the cookie. */
  async function endThisSession (request: FastifyRequest, reply: FastifyReply, set: TokenSet | null): Promise<void> {
    // Both at once: each delete of a session's keys may wait for the Redis client cache's fence (token-store).
    await Promise.all([request.tokens.clear(), request.session.destroy()])
    revoke(request, set)
    clearSessionCookie(reply)
  }

  function clearSessionCookie (reply: FastifyReply): void {
    // Asked for (a sign-out): cleared even where it could not be verified.
    opts.refusedCookies.delete(reply.request)
    reply.clearCookie(o.cookieName, { path: '/', httpOnly: true, sameSite: 'lax', secure: o.secureCookies })
  }

  /**
   * Whether a cookie of the request names its session's id: @fastify/session loaded the session from it. Any cookie,
   * not only `cookieName` (a cookie name that is not @fastify/session's is a mistake logged at the first sign-in,
   * and this session must end all the same); as token-store tells a session made by this request from a stored one.
   */
  function namedByCookie (request: FastifyRequest): boolean {
    const sid = request.session?.sessionId
    if (typeof sid !== 'string' || sid === '') return false
    const cookies = (request as { cookies?: Record<string, string | undefined> }).cookies
    for (const name in cookies) {
      const value = cookies[name]
      if (typeof value === 'string' && value.includes(sid)) return true
    }
    return false
  }

  /** A 204 with no body at all: no payload reaches the serialiser (the 204 schema, `null`, only documents that). */
  function noContent (reply: FastifyReply): FastifyReply {
    return reply.code(204).send()
  }

  app.post(o.routes.logout, {
    onRequest: csrfHeaderRequired,
    schema: { querystring: LogoutQuery, response: { 204: NoContentReply, 401: ErrorReply, 403: ErrorReply } }
  }, async (request, reply) => {
    const everywhere = request.query.everywhere
    return await logout(request, reply, everywhere === '1' || everywhere === 'true')
  })

  app.get(o.routes.session, { schema: { response: { 200: SessionReply } } }, async (request) => {
    if (request.session.get('aihubmixAuth') === undefined) return { authenticated: false }
    const set = await request.tokens.get()
    if (set === null) return { authenticated: false }
    return { authenticated: true, expiresAt: new Date(set.expiresAt).toISOString(), scope: set.scope }
  })

  /** The session id of a signed-in request (as `GET /session` decides it), else null. */
  async function signedIn (request: FastifyRequest): Promise<string | null> {
    if (request.session.get('aihubmixAuth') === undefined) return null
    if (await request.tokens.get() === null) return null
    return request.session.sessionId
  }

  /** The signed-in user's id, as the provider's userinfo gives it. */
  async function userIdOf (request: FastifyRequest): Promise<string> {
    const userId = String((await request.aihubmix.userinfo()).id)
    if (!isUserId(userId)) throw new UpstreamInvalidResponseError('user id')
    return userId
  }

  /**
   * Indexes a signed-in session that its user's index does not have (signed in before sessions were indexed, or
   * its entry lost, say to an eviction): the user's id from userinfo, with the session's own sign-in time.
   */
  async function index (request: FastifyRequest, sid: string): Promise<SessionOwner> {
    const userId = await userIdOf(request)
    const at = request.session.get('aihubmixAuth')?.at ?? Date.now()
    const ttlMs = Math.max(1000, at + o.absoluteTimeoutMs - Date.now())
    const id = await store.addUserSession(userId, sid, { userAgent: request.headers['user-agent'], createdAt: at, ttlMs })
    // Ended while userinfo was asked (a logout in another tab): its index entry would outlive it, unended.
    if (await store.get(sid) === null) {
      await store.endSession(sid)
      throw new UnauthenticatedError()
    }
    return { userId, id }
  }

  app.get(o.routes.sessions, { schema: { response: { 200: SessionsReply, '4xx': ErrorReply, '5xx': ErrorReply } } }, async (request, reply) => {
    try {
      const sid = await signedIn(request)
      if (sid === null) return sendPublicError(reply, new UnauthenticatedError())
      let owner = await store.sessionOwner(sid) ?? await index(request, sid)
      let sessions = await store.listUserSessions(owner.userId)
      if (!sessions.some((s) => s.id === owner.id)) {
        owner = await index(request, sid)
        sessions = await store.listUserSessions(owner.userId)
      }
      const now = new Date().toISOString()
      return {
        sessions: sessions.map((s) => {
          const current = s.id === owner.id
          return {
            id: s.id,
            current,
            createdAt: new Date(s.createdAt).toISOString(),
            // This one is being seen right now; the others as coarsely as their records keep it.
            lastSeenAt: current ? now : new Date(s.lastSeenAt).toISOString(),
            userAgent: s.userAgent
          }
        })
      }
    } catch (err) {
      // The provider's or the store's trouble, as the proxy routes answer it (a fixed code, nothing of the cause).
      const error = err as FastifyError
      if ((error.statusCode ?? 500) >= 500) {
        request.log.warn({ error: { code: error.code, message: error.message } }, 'listing the user\'s sessions failed')
      }
      return sendPublicError(reply, error)
    }
  })

  app.delete(`${o.routes.sessions}/:id`, {
    onRequest: csrfHeaderRequired,
    schema: { params: SessionParams, response: { 204: NoContentReply, 401: ErrorReply, 403: ErrorReply, 404: ErrorReply } }
  }, async (request, reply) => {
    const sid = await signedIn(request)
    if (sid === null) return sendPublicError(reply, new UnauthenticatedError())
    const { id } = request.params
    const owner = await store.sessionOwner(sid)
    // Ending this very session is signing out here.
    if (owner !== null && id === owner.id) return await logout(request, reply, false)
    if (owner === null || !await store.endUserSession(owner.userId, id)) {
      throw new SessionNotFoundError()
    }
    return noContent(reply)
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
 * either limit, the new stamp when "last seen" is due for an update, else undefined
 * (with `due`, the new stamp whenever the session is within its limits). The stamp is
 * due every `idleTimeoutMs / 10`, so a steady-state request writes nothing back, and at
 * least every half of `recordTtlMs`: it is the write that keeps the session's record in
 * the store (its TTL runs from its last write), and an active user must not lose a record
 * that expires before the stamp is due (an idle timeout of days over a 24 h record).
 */
function timeoutVerdict (o: ResolvedOAuthRoutesOptions, recordTtlMs: number): (auth: unknown, now: number, due?: boolean) => 'end' | AuthStamp | undefined {
  const touchEveryMs = Math.max(1000, Math.floor(Math.min(o.idleTimeoutMs / 10, recordTtlMs / 2)))
  return (auth, now, due = false) => {
    if (!isAuthStamp(auth)) return undefined
    const seen = auth.seen ?? auth.at
    if (now - auth.at > o.absoluteTimeoutMs || now - seen > o.idleTimeoutMs) return 'end'
    return due || now - seen > touchEveryMs ? { at: auth.at, seen: now } : undefined
  }
}

/** At most one "could not record the session's activity" warning per this many ms. */
const TOUCH_WARNING_INTERVAL_MS = 10_000
/** Session cookies this instance could not verify: the first is said, then one line a minute at most, with a count. */
const REFUSED_COOKIE_LOG_INTERVAL_MS = 60_000

/** At most one warning per this many ms about requests that failed because the token store is unavailable. */
const STORE_OUTAGE_LOG_INTERVAL_MS = 10_000

/**
 * Which level a request failed by a store outage is logged at: warn for the first in STORE_OUTAGE_LOG_INTERVAL_MS
 * (`more()` then says how many went to debug since the last warning), debug for the others. (aihubmix-proxy's
 * routes count theirs apart.)
 */
function outageLog (): { level: () => 'warn' | 'debug', more: () => string } {
  let warnedAt = -Infinity
  let quiet = 0
  let told = 0
  return {
    level () {
      const now = Date.now()
      if (now - warnedAt < STORE_OUTAGE_LOG_INTERVAL_MS) {
        quiet++
        return 'debug'
      }
      warnedAt = now
      told = quiet
      quiet = 0
      return 'warn'
    },
    more () {
      return told === 0 ? '' : ` (${told} more at debug since the last warning)`
    }
  }
}

/**
 * The timeouts where @fastify/session runs: a session past a limit is ended (its
 * token set and its store entry destroyed) and the request goes on signed out.
 *
 * A due "last seen" stamp is saved here, before the handler, and best effort: were it
 * left to @fastify/session's save after the handler, a store that refuses writes
 * (Redis full: OOM under noeviction; a replica after a failover) would turn the
 * handler's answer into a 503 for a request that needs no write. When the save fails
 * with StoreUnavailableError the stamp is put back (so @fastify/session has nothing to
 * save unless the handler changes the session), the request goes on, and the next
 * one tries again; a session whose activity could not be recorded for a whole
 * idleTimeoutMs still ends. Ending a session is never skipped.
 */
function sessionTimeouts (verdictOf: ReturnType<typeof timeoutVerdict>, cookieName: string, store: TokenStore, refusedCookies: WeakSet<FastifyRequest>) {
  let warnedAt = -Infinity
  let failures = 0
  let refusedSaidAt = -Infinity
  let refusedSince = 0
  return async function enforceSessionTimeouts (request: FastifyRequest): Promise<void> {
    const session = request.session as FastifyRequest['session'] | Record<string, never> | null
    if (session === null || typeof session.get !== 'function') return
    const stamp = session.get('aihubmixAuth')
    // A cookie signed with an older secret of @fastify/session's list (rotation, newest first): @fastify/session
    // opens it but, unless the session is saved, clears it in the answer (it differs from the id signed with the
    // newest secret), and the browser is signed out. Saving the stamp makes it send the cookie signed anew instead.
    // (Compared by its end: with @fastify/session's `cookiePrefix`, the cookie is that prefix and the signed id.)
    const cookie = request.cookies?.[cookieName]
    const signedBefore = cookie !== undefined && typeof session.encryptedSessionId === 'string' && !cookie.endsWith(session.encryptedSessionId)
    // A cookie @fastify/session did not open (a new session instead) that no secret of token-store's verifies either:
    // most often signed by an instance with another SESSION_SECRET (a rotation deployed in the wrong order, a secret
    // dropped too early). @fastify/session takes it for no session and clears it, which signed the user out on every
    // instance for good, even once the secret list was mended (an operator review: 10 of 10 users in a rolling deploy).
    // Its clearing is dropped (onSend, sessionCookieClears): this request is answered signed out, and the cookie
    // still works wherever the secret is known, here too once it is added. Said at the first, then once a minute at
    // most with a count: a whole fleet's users, not a line per process.
    const refusal = stamp === undefined && signedBefore ? await cookieRefusal(store, cookie, session.sessionId) : undefined
    if (refusal !== undefined) {
      if (refusal === 'live') refusedCookies.add(request)
      refusedSince++
      const now = Date.now()
      if (now - refusedSaidAt >= REFUSED_COOKIE_LOG_INTERVAL_MS) {
        const count = refusedSince === 1 ? 'a' : `${refusedSince}`
        refusedSaidAt = now
        refusedSince = 0
        request.log.warn(`oauth-routes: ${count} ${cookieName} cookie${count === 'a' ? '' : 's'} did not verify here${count === 'a' ? '' : ' since the last line'}: ` +
          'signed with a secret this instance does not have, or forged. Those requests are answered signed out; a cookie whose ' +
          'session exists is kept (it verifies wherever the secret is known). Fix: give every instance the same session secret list ' +
          '(SESSION_SECRET in the example), newest first')
      }
    }
    const verdict = verdictOf(stamp, Date.now(), signedBefore)
    if (verdict === undefined) return
    if (verdict === 'end') {
      request.log.info('session ended by its idle or absolute timeout')
      await request.tokens.clear()
      await session.regenerate()
      return
    }
    session.set('aihubmixAuth', verdict)
    // @fastify/session saves nothing on a connection it would not set its Secure cookie on: neither does this.
    if (session.cookie.secure === true && request.protocol !== 'https') return
    try {
      await session.save()
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      session.set('aihubmixAuth', stamp)
      failures++
      const now = Date.now()
      if (now - warnedAt < TOUCH_WARNING_INTERVAL_MS) return
      const more = failures === 1 ? '' : ` (${failures - 1} more since the last line)`
      warnedAt = now
      failures = 0
      request.log.warn({ error: errorInfo((err as { cause?: unknown }).cause) }, `oauth-routes: could not record a session's activity for its idle timeout${more}; ` +
        'the request goes on, and the idle timeout counts from the last activity recorded')
    }
  }
}

/** Where pino keeps a logger's serializers (a global symbol: the same for every pino). */
const PINO_SERIALIZERS = Symbol.for('pino.serializers')

/** The request as a serializer sees it, its `url` redacted (getters still run on the request itself). */
function withRedactedUrl (request: FastifyRequest): FastifyRequest {
  return new Proxy(request, {
    get (target, prop) {
      if (prop === 'url' || prop === 'originalUrl') return redactUrl(String(Reflect.get(target, prop, target)))
      return Reflect.get(target, prop, target)
    }
  })
}

/**
 * Whether a session cookie @fastify/session did not open was refused for its signature, and whether its session lives:
 * - 'live': refused, and a session record exists under its id: signed by an instance with another secret list (its
 *   cookie is kept);
 * - 'dead': refused by every secret of token-store's `sessionCookie`, and no record under its id (forged, or its
 *   session is gone: cleared as any cookie of no session);
 * - undefined: not refused (an ended session's cookie signed here; without `sessionCookie`, a refusal is known only by
 *   the record it names).
 */
async function cookieRefusal (store: TokenStore, cookie: string, sessionId: string): Promise<'live' | 'dead' | undefined> {
  const verifies = store.sessionCookieVerifies?.(cookie)
  if (verifies === true) return undefined
  // The id before the signature, past a `cookiePrefix` (`s:`): the id's own characters (a forged cookie's junk is
  // not looked up). The session's own id: @fastify/session opened the cookie (signed with an older secret of its
  // list, a rotation), nothing was refused.
  const sid = /([A-Za-z0-9_-]{8,256})\.[^.]*$/.exec(cookie)?.[1]
  const exists = sid !== undefined && sid !== sessionId && await new Promise<boolean>((resolve) => {
    store.sessionStore.get(sid, (err, session) => { resolve(err === null && session !== null && session !== undefined) })
  })
  if (exists) return 'live'
  return verifies === false ? 'dead' : undefined
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

/**
 * What this plugin needs registered before it, in the order they must come, checked here rather than by
 * fastify-plugin's `decorators`/`dependencies`: those run before this body and only say which decorator is missing
 * ("The decorator 'session' required by ... is not present in Request"), not what to register, nor where.
 */
function checkRegistration (fastify: FastifyInstance): void {
  if (!fastify.hasRequestDecorator('cookies')) throw new OAuthRoutesRegistrationError('@fastify/cookie registered before it')
  if (!fastify.hasDecorator('tokenStore')) {
    throw new OAuthRoutesRegistrationError('@fastify-aihubmix/token-store registered before it (app.tokenStore is missing)')
  }
  if (!fastify.hasDecorator('aihubmix')) {
    throw new OAuthRoutesRegistrationError('@fastify-aihubmix/aihubmix-proxy registered before it (app.aihubmix is missing)')
  }
  if (!fastify.hasRequestDecorator('session')) throw new OAuthRoutesRegistrationError('@fastify/session registered in the same scope before it')
}

/** The scopes (Fastify instances) this plugin is registered in: a fastify-plugin plugin gets its scope's own. */
const registeredScopes = new WeakSet<FastifyInstance>()
/** Where aihubmix-proxy's routes are (`Symbol.for`, so that two installed copies of it agree); see its index.ts. */
const PROXY_ROUTES_BASE = Symbol.for('@fastify-aihubmix/aihubmix-proxy.routes-base')

/** Where aihubmix-proxy's routes are (its scope's prefix and its own), or undefined when it has none. */
function proxyRoutesBase (fastify: FastifyInstance): string | undefined {
  const base = (fastify as unknown as Record<symbol, unknown>)[PROXY_ROUTES_BASE]
  return typeof base === 'string' ? base : undefined
}

async function oauthRoutes (fastify: FastifyInstance, opts: OAuthRoutesOptions): Promise<void> {
  if (registeredScopes.has(fastify)) throw new OAuthRoutesRegisteredTwiceError('in this scope')
  checkRegistration(fastify)
  const options = resolveOptions(opts)
  // Where the routes end up: the prefix of the scope this plugin is registered in, then its own.
  const base = fastify.prefix.replace(/\/$/, '') + options.prefix
  const callbackPath = base + options.routes.callback
  // Registered again in a child scope, with the same paths: Fastify's refusal would name only the route.
  if (fastify.hasRoute({ method: 'GET', url: base + options.routes.login })) {
    throw new OAuthRoutesRegisteredTwiceError(`GET ${base + options.routes.login} is already declared`)
  }
  // aihubmix-proxy's routes at the very same prefix: each answers the unknown routes under its prefix, and Fastify
  // refuses the second not-found handler later, from outside the plugin, with `Method 'ACL' already declared for
  // route '/api/*'` (an uncaught exception that names neither plugin).
  const proxyBase = proxyRoutesBase(fastify)
  if (base !== '' && proxyBase === base) {
    throw new OAuthRoutesOptionsError(`prefix: aihubmix-proxy's routes are under ${base} too: give the two plugins different prefixes ` +
      '(oauth-routes\' prefix, aihubmix-proxy\'s prefix: \'/api\' by default)')
  }
  registeredScopes.add(fastify)
  if (options.checkRedirectUri) {
    const redirect = new URL(fastify.aihubmix.redirectUri)
    const served = options.publicOrigin + callbackPath
    if (redirect.origin + redirect.pathname !== served) {
      // A publicUrl with a path (`http://localhost:3000/app`): only its origin counts, which the message never said.
      const beyond = options.publicUrlBeyondOrigin
      const why = beyond === ''
        ? ''
        : ` (publicUrl must be an origin, without a path: ${options.publicOrigin}, not ${options.publicOrigin}${beyond}; ` +
          'an app under a path registers oauth-routes under that prefix)'
      throw new RedirectUriMismatchError(redirect.origin + redirect.pathname, served + why)
    }
  }
  const logins = new LoginCookies({
    secure: options.secureCookies,
    loginPath: base + options.routes.login,
    callbackPath,
    ttlMs: options.stateTtlMs,
    sealer: fastify.tokenStore
  })
  const recordTtlMs = fastify.tokenStore.sessionTtlMs
  if (options.idleTimeoutMs > recordTtlMs) {
    fastify.log.warn(`oauth-routes: idleTimeoutMs (${options.idleTimeoutMs} ms) is longer than token-store's sessionTtlMs (${recordTtlMs} ms), ` +
      'how long a session record lives after its last write: a session idle that long ends with its record. Fix: ' +
      'give token-store a sessionTtlMs of at least idleTimeoutMs')
  }
  const verdictOf = timeoutVerdict(options, recordTtlMs)
  // On every route of this plugin's scope (it is not encapsulated), after @fastify/session loaded the session.
  const refusedCookies = new WeakSet<FastifyRequest>()
  fastify.addHook('preHandler', sessionTimeouts(verdictOf, options.cookieName, fastify.tokenStore, refusedCookies))
  // After @fastify/session's onSend (registered before this plugin): its clearing of a session it did not find gets
  // the attributes the cookie was set with, which a browser needs to accept it for a __Host- cookie; its clearing of a
  // cookie this instance could not verify is dropped.
  fastify.addHook('onSend', sessionCookieClears(options.cookieName, options.secureCookies, (request) => refusedCookies.has(request)))
  // And wherever token-store reads the session from the cookie instead, or lists a user's sessions.
  fastify.tokenStore.addSessionCheck(timeoutCheck(verdictOf))
  fastify.tokenStore.setLastSeenReader((session) => {
    const auth = session.aihubmixAuth
    return isAuthStamp(auth) ? auth.seen ?? auth.at : undefined
  })
  await fastify.register(routes, { prefix: options.prefix, options, logins, base, refusedCookies })
}

const oauthRoutesPlugin = fp(oauthRoutes, {
  fastify: '5.x',
  name: '@fastify-aihubmix/oauth-routes'
  // No `decorators` nor `dependencies`: checkRegistration says what is missing, and what to register where.
})

export { oauthRoutesPlugin as oauthRoutes }
export default oauthRoutesPlugin
export type { OAuthRoutesOptions }
