import { createError } from '@fastify/error'

/**
 * Errors of the AIHubMix client and proxy routes. Every error a route can answer
 * with has a stable `code` and `statusCode`; `publicErrorOf()` in routes.ts maps
 * them, by family, to the documented `{error, message}` bodies. The provider's
 * own bodies are kept (at most) as `cause`, never sent to the browser.
 *
 * Families are tested with `instanceof`: @fastify/error gives each class a symbol
 * of its code on the prototype and tests for it, so a child is an instance of its
 * parent, even across two installed copies of the package.
 */

/**
 * Parent of every failure of a call to the provider (502 for itself and most
 * children; busy 503, timeout 504): `err instanceof UpstreamError` means "AIHubMix
 * did not give a usable answer". A refusal for lack of scope is not one of them
 * (the provider answered; the user's grant is short): InsufficientScopeError.
 */
export const UpstreamError = createError<'FST_AIHUBMIX_BAD_GATEWAY', 502, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_BAD_GATEWAY',
  'The AIHubMix provider gave an unusable answer',
  502
)

/** @fastify/error types a parent as the global ErrorConstructor; every class it creates is one at run time. */
const upstream = UpstreamError as unknown as ErrorConstructor

/** An HTTP status the call did not expect (a 5xx, a 404...): `upstreamStatus` is the provider's status code. */
export class UpstreamStatusError extends createError<[number, { cause?: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_STATUS',
  'The AIHubMix provider answered HTTP %d',
  502,
  upstream
) {
  readonly upstreamStatus: number

  constructor (upstreamStatus: number, options?: { cause?: unknown }) {
    if (options === undefined) super(upstreamStatus)
    else super(upstreamStatus, options)
    this.upstreamStatus = upstreamStatus
  }
}

export const UpstreamInvalidResponseError = createError<[string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_INVALID_RESPONSE',
  'The AIHubMix provider answered something that is not a valid %s',
  502,
  upstream
)

export const UpstreamBodyTooLargeError = createError<[number]>(
  'FST_AIHUBMIX_UPSTREAM_BODY_TOO_LARGE',
  'The AIHubMix provider answered more than %d bytes',
  502,
  upstream
)

export const UpstreamUnreachableError = createError<[{ cause?: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_UNREACHABLE',
  'The AIHubMix provider could not be reached',
  502,
  upstream
)

/**
 * 429 or 503 from the provider: try again later; the session is kept. `upstreamStatus` is the provider's status;
 * `retryAfterMs` is its Retry-After, when it sent a valid one (token-store backs off by it). The answer to the
 * browser: 503 `upstream_unavailable` for a 429, and for a 503, like any 5xx of the provider's, 502 `bad_gateway`
 * (`statusCode` says which).
 */
export class UpstreamBusyError extends createError<[number]>(
  'FST_AIHUBMIX_UPSTREAM_BUSY',
  'The AIHubMix provider is busy (HTTP %d); try again later',
  503,
  upstream
) {
  readonly upstreamStatus: number
  readonly retryAfterMs: number | undefined

  constructor (upstreamStatus: number, retryAfterMs?: number) {
    super(upstreamStatus)
    this.upstreamStatus = upstreamStatus
    this.retryAfterMs = retryAfterMs
    if (upstreamStatus >= 500) this.statusCode = 502
  }
}

export const UpstreamTimeoutError = createError<[number, { cause?: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_TIMEOUT',
  'The AIHubMix provider did not answer within %d ms',
  504,
  upstream
)

/** The provider answered 401 to a resource call with a token we believed valid. */
export const UpstreamUnauthorizedError = createError<'FST_AIHUBMIX_UPSTREAM_UNAUTHORIZED', 502, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_UNAUTHORIZED',
  'The AIHubMix provider refused the access token',
  502,
  upstream
)

/** The granted scopes do not cover the resource (e.g. top-up without `balance`). */
export const InsufficientScopeError = createError<'FST_AIHUBMIX_INSUFFICIENT_SCOPE', 403, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_INSUFFICIENT_SCOPE',
  'The signed-in user did not grant the scope this call needs',
  403
)

/**
 * The provider's `error` as this library keeps it (in `oauthError`, the message, the log): an OAuth error code is a
 * short lower-case word (`invalid_grant`, RFC 6749 section 5.2); anything else, which may echo what the provider was
 * sent (`invalid_request: refresh_token rt_... is malformed`), is `unrecognized_error`, never kept as it came.
 */
export function oauthErrorCode (error: string): string {
  return /^[a-z][a-z_]{0,63}$/.test(error) ? error : 'unrecognized_error'
}

/** The OAuth errors that say the app's own credentials were refused: their log line names what to check. */
const CLIENT_REFUSED = new Set(['invalid_client', 'unauthorized_client'])
const CLIENT_HINT = ' (check the clientId and clientSecret given to aihubmix-proxy: the app\'s credentials from AIHubMix, for this baseUrl)'

/**
 * 502: the token endpoint refused a grant with an OAuth error: `oauthError` holds the
 * RFC 6749 code (e.g. `invalid_grant`). Used for the code exchange, and for a refresh
 * refused with any other code than those that end the session (`invalid_grant`,
 * `invalid_client`, `unauthorized_client`), which refreshes turn into token-store's
 * RefreshRejectedError with this error as its cause.
 * A 502 like every upstream error, wherever it is answered: on an app's own route (no
 * error handler of the proxy's) it was a 400, which blamed the browser and which
 * Fastify logs at info only, while every due refresh of every user failed.
 */
export class TokenEndpointError extends createError<[string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_TOKEN_ENDPOINT',
  'The AIHubMix token endpoint refused the request: %s',
  502,
  upstream
) {
  readonly oauthError: string
  /** The provider refused the app's own credentials (`invalid_client`, `unauthorized_client`), not the grant. */
  readonly clientRefused: boolean
  /** The HTTP status the code was read from, when the answer carried none (see the constructor). */
  readonly fromStatus: number | undefined

  /**
   * `fromStatus`: the answer carried no error code (`{success: false, message}`), so the code was read from this HTTP
   * status, and the message says so: a refresh token the provider refuses with a bare 401 then reads as the app's
   * credentials, which the log line must not state as a fact.
   */
  constructor (providerError: string, options?: { cause?: unknown, fromStatus?: number }) {
    const oauthError = oauthErrorCode(providerError)
    const clientRefused = CLIENT_REFUSED.has(oauthError)
    const inferred = options?.fromStatus === undefined ? '' : ` (the provider's ${options.fromStatus} answer carried no error code; read from its status)`
    const cause = options?.cause === undefined ? [] as const : [{ cause: options.cause }] as const
    super(oauthError + inferred + (clientRefused ? CLIENT_HINT : ''), ...cause)
    this.oauthError = oauthError
    this.clientRefused = clientRefused
    this.fromStatus = options?.fromStatus
  }
}

/**
 * 403: a route that needs the CSRF header got a request without it. `header`: the header the route asks for, as
 * configured (`csrfHeader`, lower case; `x-csrf` by default, said as `X-CSRF`), named in the message and the answer.
 */
export class CsrfHeaderRequiredError extends createError<[string]>(
  'FST_AIHUBMIX_CSRF_HEADER_REQUIRED',
  'This route needs the header %s: 1',
  403
) {
  readonly header: string

  constructor (header = 'x-csrf') {
    super(header === 'x-csrf' ? 'X-CSRF' : header)
    this.header = header
  }
}

/**
 * 500, at registration: the plugin was registered a second time where `app.aihubmix` already is (this scope or a
 * parent's). Fastify's own error only said "The decorator 'aihubmix' has already been added!".
 */
export const ProxyRegisteredTwiceError = createError<'FST_AIHUBMIX_PROXY_REGISTERED_TWICE', 500, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_PROXY_REGISTERED_TWICE',
  '@fastify-aihubmix/aihubmix-proxy is registered twice (app.aihubmix already exists in this scope): register it once, ' +
    'in a scope every plugin and route that uses it shares (the root app)',
  500
)

/**
 * 500, at registration: token-store is not registered before the proxy (or not in its scope). The message names it
 * and the whole order; fastify-plugin's own check said "... is not registered" also to an app that registered it,
 * only later.
 */
export const ProxyRegistrationError = createError<[string]>(
  'FST_AIHUBMIX_PROXY_REGISTRATION',
  'aihubmix-proxy needs %s: register @fastify/cookie, token-store, then aihubmix-proxy (each awaited, or in this order)',
  500
)

export const ProxyOptionsError = createError<[string]>(
  'FST_AIHUBMIX_PROXY_OPTIONS',
  'Invalid aihubmix-proxy option %s',
  500
)
