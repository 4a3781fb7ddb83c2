import { Pool, getGlobalDispatcher, type Dispatcher } from 'undici'
import type { TSchema, Static } from '@sinclair/typebox'
import { RefreshRejectedError, errorInfo, type TokenSet } from '@fastify-aihubmix/token-store'
import {
  InsufficientScopeError,
  TokenEndpointError,
  UpstreamBodyTooLargeError,
  UpstreamBusyError,
  UpstreamInvalidResponseError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  UpstreamUnauthorizedError,
  UpstreamUnreachableError
} from './errors.js'
import type { ResolvedProxyOptions } from './options.js'
import { grantOf, traceUpstream, upstreamTraced, type UpstreamEndpoint } from './diagnostics.js'
import { dispatchExchange, lateAnswerOf, type RawAnswer, type UpstreamSignal } from './exchange.js'
import {
  checkEnvelope,
  checkExpiresIn,
  checkOAuthError,
  checkScope,
  checkTokenResponse,
  checkTopup,
  checkUserInfo,
  type Checker,
  type Topup,
  type UserInfo
} from './schemas.js'

/**
 * OAuth error codes of the token endpoint that end a session at a refresh: `invalid_grant` (the grant is gone), and
 * `invalid_client` / `unauthorized_client` (the provider refuses this app's credentials: revoked, or rotated in its
 * console). The security model ends the session on both rather than keep calling the provider with credentials it
 * refuses; the log line names `clientId` and `clientSecret` (call-as-user.ts), and `aihubmix-oauth doctor` checks the
 * secret before a deploy.
 */
const FATAL_GRANT_ERRORS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT'])
/** A connection the provider closed or reset under a request (undici's "other side closed", a reset, a broken pipe). */
const CLOSED_UNDER_US = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
/**
 * Bounds of a token answer's `expires_in`, in seconds (schemas.ts: it never refuses the answer, whose refresh token
 * the provider has already rotated). Missing, or neither a number nor a numeric string (`null`, `"soon"`): the
 * provider's documented 7200. Below EXPIRES_IN_FLOOR (`0`, `-30`, `0.001`): the floor. A token kept for its
 * whole life is refreshed at half of it (token-store's window), so a life of `0.001` s refreshed on every request;
 * with the floor, at most once every 2.5 s per session. The floor is kept below any lifetime a provider really
 * issues (the suite's own tests run 30-second tokens, its chaos run tokens down to 4 s): a token that really
 * expired sooner than the proxy believes answers 401 upstream, and callAsUser then refreshes once and retries once
 * (call-as-user.ts), so a floor too high costs a refused call, never the session. Above EXPIRES_IN_MAX: the max.
 */
const DEFAULT_EXPIRES_IN = 7200
export const EXPIRES_IN_FLOOR = 5
const EXPIRES_IN_MAX = 10 * 365 * 24 * 3600

/** `expires_in` of a token answer, in seconds, bounded as above. */
export function expiresInSeconds (value: unknown): number {
  if (value === undefined || !checkExpiresIn.Check(value)) return DEFAULT_EXPIRES_IN
  const seconds = typeof value === 'number' ? value : Number(value)
  if (!(seconds >= EXPIRES_IN_FLOOR)) return EXPIRES_IN_FLOOR
  return Math.min(seconds, EXPIRES_IN_MAX)
}

export interface AuthorizeUrlParams {
  state: string
  codeChallenge: string
  autoAuthorize?: boolean | undefined
}

export interface CodeExchangeParams {
  code: string
  codeVerifier: string
}

export type { UpstreamSignal, EmitterSignal } from './exchange.js'

/** The provider client: the only code that speaks HTTP to AIHubMix. */
export interface AihubmixClient {
  /** The provider's origin (for `iss` checks and the example's CSP). */
  readonly origin: string
  /** The redirect URI registered with the app (oauth-routes checks that its callback route serves it). */
  readonly redirectUri: string
  readonly scope: readonly string[]
  authorizeUrl (params: AuthorizeUrlParams): string
  exchangeCode (params: CodeExchangeParams): Promise<TokenSet>
  /**
   * A token-store Refresher: throws RefreshRejectedError (the session ends) on invalid_grant, and on a refusal of the
   * app's credentials (invalid_client, unauthorized_client), whose cause is a TokenEndpointError with clientRefused.
   */
  refresh (refreshToken: string): Promise<TokenSet>
  userinfo (accessToken: string, signal?: UpstreamSignal): Promise<UserInfo>
  topup (accessToken: string, signal?: UpstreamSignal): Promise<Topup>
  /** Best-effort RFC 7009 revocation, when a revocation URL is configured. */
  revoke (token: string, hint: 'access_token' | 'refresh_token'): Promise<void>
  /** How many refresh answers are still awaited after their callers' deadline (`refreshGraceMs`); close waits for them. */
  pendingRefreshAnswers (): number
  /** Waits for the refresh answers still awaited (each at most `refreshGraceMs`), then closes the client's own pool. */
  close (): Promise<void>
}

interface UpstreamAnswer {
  statusCode: number
  /** Parsed JSON, or `undefined` when the body was not JSON. */
  json: unknown
  /** The `Retry-After` header, in ms from now, when there is a valid one. */
  retryAfterMs: number | undefined
}

/** RFC 9110 10.2.3: `Retry-After` is delay-seconds or an HTTP-date. */
export function parseRetryAfter (value: string | string[] | undefined, now = Date.now()): number | undefined {
  if (typeof value !== 'string') return undefined
  const text = value.trim()
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}

/** A 429/503 answer: UpstreamBusyError, carrying the provider's Retry-After as `retryAfterMs` (token-store backs off by it). */
function busyError (answer: UpstreamAnswer): Error {
  return new UpstreamBusyError(answer.statusCode, answer.retryAfterMs)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `{success, data}` → data; a bare answer stays as it is. */
function unwrapEnvelope (value: unknown): { ok: true, value: unknown } | { ok: false, error: string | undefined } {
  if (isObject(value) && typeof value.success === 'boolean' && checkEnvelope.Check(value)) {
    if (value.success && 'data' in value) return { ok: true, value: value.data }
    if (!value.success) return { ok: false, error: typeof value.error === 'string' ? value.error : undefined }
  }
  return { ok: true, value }
}

/** The scopes a token answer grants: its `scope` when it is a string of them, else the ones asked for (schemas.ts). */
function splitScope (scope: unknown, requested: readonly string[]): string[] {
  if (!checkScope.Check(scope)) return [...requested]
  return scope.split(' ').filter((s) => s !== '')
}

export function createAihubmixClient (options: ResolvedProxyOptions): AihubmixClient {
  const ownDispatcher = options.dispatcher === undefined
  const dispatcher: Dispatcher = options.dispatcher ?? new Pool(options.origin, {
    connections: options.connections,
    pipelining: 1,
    connect: { timeout: options.connectTimeoutMs },
    // Idle timers only (each byte that arrives starts them again): exchange.ts holds every call to `timeoutMs` whole.
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    // undici's own default, below the 5 s of Node's servers: a provider without a Keep-Alive hint that closes idle
    // connections sooner than this costs one failed send on a kept one (a GET is sent again: exchange()).
    keepAliveTimeout: 4_000
  })
  const { origin, basePath, maxBodyBytes, timeoutMs, refreshGraceMs } = options
  /**
   * Refresh answers still read after their callers' deadline (`refreshGraceMs`), as handed to token-store: waited for
   * at close.
   */
  const lateRefreshes = new Set<Promise<unknown>>()
  const tokenPath = `${basePath}/api/oauth2/token`
  const userinfoPath = `${basePath}/api/oauth2/userinfo`
  const topupPath = `${basePath}/api/oauth2/topup`
  const endpoints = new Map<string, UpstreamEndpoint>([[tokenPath, 'token'], [userinfoPath, 'userinfo'], [topupPath, 'topup']])
  const authorizeBase = `${origin}${basePath}/api/oauth2/authorize`
  const scopeParam = options.scope.join(' ')
  const formHeaders = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json'
  }

  function mapNetworkError (err: unknown): Error {
    const { code } = errorInfo(err)
    if (err instanceof UpstreamTimeoutError) return err
    if (code !== undefined && TIMEOUT_CODES.has(code)) return new UpstreamTimeoutError(timeoutMs, { cause: err })
    if (err instanceof Error && err.name === 'AbortError') return err
    if (err instanceof UpstreamBodyTooLargeError) return err
    return new UpstreamUnreachableError({ cause: err })
  }

  /**
   * One exchange with the provider; a span of `aihubmix:upstream` when anyone listens (diagnostics.ts). None for a
   * call whose browser left before it was sent (it is not sent: nothing to count).
   */
  function send (method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string, signal?: UpstreamSignal, graceMs = 0): Promise<UpstreamAnswer> {
    const endpoint = upstreamTraced() && signal?.aborted !== true ? endpoints.get(path) : undefined
    if (endpoint === undefined) return exchange(method, path, headers, body, signal, graceMs)
    const grant = endpoint === 'token' ? grantOf(body) : undefined
    return traceUpstream({ client, endpoint, method, grant }, () => exchange(method, path, headers, body, signal, graceMs))
  }

  async function exchange (method: 'GET' | 'POST', path: string, headers: Record<string, string>, body: string | undefined, signal: UpstreamSignal | undefined, graceMs: number): Promise<UpstreamAnswer> {
    const started = performance.now()
    let answer
    try {
      answer = await dispatchExchange(dispatcher, ownDispatcher, { origin, path, method, headers, body, timeoutMs, maxBodyBytes, signal, graceMs })
    } catch (err) {
      // A GET (userinfo, top-up: nothing changes at the provider) whose connection the provider closed under it, most
      // often a kept-alive one it had just timed out, is sent once more on a new one, within the same deadline. Never
      // a POST: a refresh sent twice could present a refresh token the first one rotated away.
      const left = timeoutMs - (performance.now() - started)
      if (method !== 'GET' || !CLOSED_UNDER_US.has(errorInfo(err).code ?? '') || signal?.aborted === true || left < 1) throw mapNetworkError(err)
      try {
        answer = await dispatchExchange(dispatcher, ownDispatcher, { origin, path, method, headers, body, timeoutMs: left, maxBodyBytes, signal, graceMs })
      } catch (again) {
        throw mapNetworkError(again)
      }
    }
    return parseAnswer(answer)
  }

  function parseAnswer (answer: RawAnswer): UpstreamAnswer {
    let json: unknown
    try {
      json = JSON.parse(answer.text)
    } catch {
      json = undefined
    }
    // Retry-After matters only on a 429 or a 503 (busyError): not parsed on the hot path's 200.
    const busy = answer.statusCode === 429 || answer.statusCode === 503
    return { statusCode: answer.statusCode, json, retryAfterMs: busy ? parseRetryAfter(answer.retryAfter) : undefined }
  }

  function validate<T extends TSchema> (checker: Checker<T>, value: unknown): Static<T> {
    if (!checker.check.Check(value)) {
      const first = checker.check.Errors(value).First()
      throw new UpstreamInvalidResponseError(checker.name, {
        cause: new Error(first === undefined ? 'invalid' : `${first.path || '(root)'}: ${first.message}`)
      })
    }
    return value
  }

  /**
   * The OAuth error code an error answer carries: RFC 6749's `error`, or the envelope's. `codeless`: the answer is the
   * envelope's `{success: false, message}` with no code at all (the provider's other documented error shape).
   */
  function oauthErrorOf (answer: UpstreamAnswer): { code: string, codeless: boolean } | undefined {
    if (checkOAuthError.Check(answer.json)) return { code: answer.json.error, codeless: false }
    const unwrapped = unwrapEnvelope(answer.json)
    if (unwrapped.ok) return undefined
    return unwrapped.error === undefined ? { code: '', codeless: true } : { code: unwrapped.error, codeless: false }
  }

  /**
   * The token set of a 200 answer. Its life counts from `sentAt`, when the request left, not from when the answer came:
   * the provider starts the token's life when it processes the request, and an answer that took long (a late refresh
   * answer, up to `refreshGraceMs` after the deadline) would otherwise make a token the provider has already expired
   * look valid here for as long again (operator review: 20 s tokens and a 25 s answer gave 20 s of 502s).
   */
  function toTokenSet (answer: UpstreamAnswer, sentAt: number): TokenSet {
    const unwrapped = unwrapEnvelope(answer.json)
    const value = unwrapped.ok ? unwrapped.value : undefined
    const body = validate(checkTokenResponse, value)
    if (body.token_type.toLowerCase() !== 'bearer') {
      throw new UpstreamInvalidResponseError('token response', { cause: new Error('token_type is not Bearer') })
    }
    const set: TokenSet = {
      accessToken: body.access_token,
      tokenType: 'Bearer',
      expiresAt: sentAt + expiresInSeconds(body.expires_in) * 1000,
      scope: splitScope(body.scope, options.scope),
      obtainedAt: sentAt
    }
    if (typeof body.refresh_token === 'string' && body.refresh_token !== '') set.refreshToken = body.refresh_token
    return set
  }

  /**
   * One call to the token endpoint. Resolves with the token set, or throws:
   * TokenEndpointError (an OAuth error, in `oauthError`), UpstreamBusyError
   * (429/503), or another UpstreamError (anything else unusable). `graceMs`: how long its answer is still read
   * after `timeoutMs` failed the call (exchange.ts), for the refresh grant.
   */
  async function tokenCall (form: Record<string, string>, sentAt: number, graceMs = 0): Promise<TokenSet> {
    return tokenAnswer(await send('POST', tokenPath, formHeaders, new URLSearchParams(form).toString(), undefined, graceMs), sentAt)
  }

  /** The token set a token endpoint's answer carries, or the error it means (tokenCall). */
  function tokenAnswer (answer: UpstreamAnswer, sentAt: number): TokenSet {
    if (answer.statusCode === 200) {
      const oauthError = checkOAuthError.Check(answer.json) ? answer.json.error : undefined
      const unwrapped = unwrapEnvelope(answer.json)
      if (oauthError !== undefined || !unwrapped.ok) {
        // A 200 that carries an error: never a success.
        const code = oauthError ?? (unwrapped.ok ? undefined : unwrapped.error) ?? 'server_error'
        throw new TokenEndpointError(code)
      }
      return toTokenSet(answer, sentAt)
    }
    if (answer.statusCode === 429 || answer.statusCode === 503) throw busyError(answer)
    if (answer.statusCode === 400 || answer.statusCode === 401) {
      const error = oauthErrorOf(answer)
      if (error !== undefined && !error.codeless) throw new TokenEndpointError(error.code)
      // `{success: false, message}`: the status says what RFC 6749 gives it (401: the client's authentication failed).
      if (error !== undefined) throw new TokenEndpointError(answer.statusCode === 401 ? 'invalid_client' : 'invalid_grant', { fromStatus: answer.statusCode })
    }
    throw new UpstreamStatusError(answer.statusCode)
  }

  async function resource<T extends TSchema> (path: string, checker: Checker<T>, accessToken: string, signal?: UpstreamSignal): Promise<Static<T>> {
    const answer = await send('GET', path, { authorization: `Bearer ${accessToken}`, accept: 'application/json' }, undefined, signal)
    if (answer.statusCode === 200) {
      const unwrapped = unwrapEnvelope(answer.json)
      if (!unwrapped.ok) throw new UpstreamInvalidResponseError(checker.name, { cause: new Error('envelope with success=false') })
      return validate(checker, unwrapped.value)
    }
    if (answer.statusCode === 401) throw new UpstreamUnauthorizedError()
    // RFC 6750's insufficient_scope; or the envelope's `{success: false, message}` with no code, whose 403 on a Bearer
    // request says the same (a 403 that is no answer of the provider's, a proxy's HTML page, stays a 502).
    if (answer.statusCode === 403) {
      const error = oauthErrorOf(answer)
      if (error !== undefined && (error.codeless || error.code === 'insufficient_scope')) throw new InsufficientScopeError()
    }
    if (answer.statusCode === 429 || answer.statusCode === 503) throw busyError(answer)
    throw new UpstreamStatusError(answer.statusCode)
  }

  /**
   * What a failed refresh throws: RefreshRejectedError for a refusal for good; otherwise the error itself. A
   * timeout whose answer is still being read (`refreshGraceMs`) carries that reading's outcome as `lateRefresh`, a
   * promise of the token set (or of the same errors as a refresh), for token-store: the callers get the 504 now,
   * and the answer, which holds the only copy of the refresh token the provider has just rotated, is stored when it
   * comes instead of being thrown away.
   */
  function refreshFailure (err: unknown, sentAt: number): unknown {
    if (err instanceof TokenEndpointError && FATAL_GRANT_ERRORS.has(err.oauthError)) {
      return new RefreshRejectedError({ cause: err })
    }
    const late = lateAnswerOf(err)
    if (late !== undefined && typeof err === 'object' && err !== null) {
      const lateRefresh = late.answer.then(
        (answer) => tokenAnswer(parseAnswer(answer), sentAt),
        (failure: unknown) => { throw mapNetworkError(failure) }
      ).catch((failure: unknown) => { throw refreshFailure(failure, sentAt) })
      lateRefreshes.add(lateRefresh)
      lateRefresh.finally(() => lateRefreshes.delete(lateRefresh)).catch(() => {})
      // Not enumerable: the error is logged and published as before, without a promise on it.
      Object.defineProperty(err, 'lateRefresh', { value: lateRefresh, enumerable: false, configurable: true })
    }
    return err
  }

  const client: AihubmixClient = {
    origin,
    redirectUri: options.redirectUri,
    scope: options.scope,

    authorizeUrl ({ state, codeChallenge, autoAuthorize = true }) {
      const params = new URLSearchParams({
        client_id: options.clientId,
        redirect_uri: options.redirectUri,
        response_type: 'code',
        scope: scopeParam,
        state,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256'
      })
      if (autoAuthorize) params.set('auto_authorize', 'true')
      return `${authorizeBase}?${params.toString()}`
    },

    exchangeCode ({ code, codeVerifier }) {
      return tokenCall({
        grant_type: 'authorization_code',
        code,
        redirect_uri: options.redirectUri,
        client_id: options.clientId,
        client_secret: options.clientSecret,
        code_verifier: codeVerifier
      }, Date.now())
    },

    async refresh (refreshToken) {
      const sentAt = Date.now()
      try {
        return await tokenCall({
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
          client_id: options.clientId,
          client_secret: options.clientSecret
        }, sentAt, refreshGraceMs)
      } catch (err) {
        throw refreshFailure(err, sentAt)
      }
    },

    userinfo (accessToken, signal) {
      return resource(userinfoPath, checkUserInfo, accessToken, signal)
    },

    async topup (accessToken, signal) {
      const topup = await resource(topupPath, checkTopup, accessToken, signal)
      let url: URL
      try {
        url = new URL(topup.topup_url)
      } catch (err) {
        throw new UpstreamInvalidResponseError('top-up URL', { cause: err })
      }
      // The browser opens this URL: https, never javascript: or data:; plain http only from a provider that is
      // itself on plain http (the mock on loopback, or allowInsecureHttp), never from an https one.
      if (url.protocol !== 'https:' && (url.protocol !== 'http:' || options.baseUrl.protocol !== 'http:')) {
        throw new UpstreamInvalidResponseError('top-up URL', { cause: new Error(`a ${url.protocol} URL from an ${options.baseUrl.protocol} provider`) })
      }
      // Nor a URL with a user name or password in it (`https://aihubmix.com@evil.example/` reads as aihubmix.com).
      if (url.username !== '' || url.password !== '') {
        throw new UpstreamInvalidResponseError('top-up URL', { cause: new Error('a URL with credentials') })
      }
      return { topup_url: url.href }
    },

    async revoke (token, hint) {
      const target = options.revocationUrl
      if (target === undefined) return
      const body = new URLSearchParams({
        token,
        token_type_hint: hint,
        client_id: options.clientId,
        client_secret: options.clientSecret
      }).toString()
      // The revocation endpoint may live on another host than the provider's API. The same exchange as every other
      // call: held to `timeoutMs` whole, the body capped (and thrown away).
      const own = target.origin === origin
      let answer
      try {
        answer = await dispatchExchange(own ? dispatcher : getGlobalDispatcher(), own && ownDispatcher, {
          origin: target.origin,
          path: `${target.pathname}${target.search}`,
          method: 'POST',
          headers: formHeaders,
          body,
          timeoutMs,
          maxBodyBytes,
          signal: undefined
        })
      } catch (err) {
        throw mapNetworkError(err)
      }
      if (answer.statusCode >= 400) throw new UpstreamStatusError(answer.statusCode)
    },

    pendingRefreshAnswers () {
      return lateRefreshes.size
    },

    async close () {
      // A refresh answer still awaited holds the only copy of the refresh token the provider has just rotated: it is
      // waited for (each is cut at refreshGraceMs anyway), and token-store, registered before this plugin and so
      // closed after it, stores it as it would have without the close. Given up on (as before), another instance
      // presented the rotated-away refresh token at once, and a provider with reuse detection revoked the grant: a
      // restart during a slow token answer signed its users out (operator review).
      if (lateRefreshes.size > 0) await Promise.allSettled([...lateRefreshes])
      if (ownDispatcher) await dispatcher.close()
    }
  }
  return client
}
