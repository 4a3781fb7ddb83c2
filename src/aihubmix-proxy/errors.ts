import createError from '@fastify/error'

/**
 * Errors of the AIHubMix client and proxy routes. Every error a route can answer
 * with has a stable `code` and `statusCode`; `publicErrorOf()` in routes.ts maps
 * them to CONTRACT.md's `{error, message}` bodies. The provider's own bodies are
 * kept (at most) as `cause`, never sent to the browser.
 */

/** Parent of every "the provider misbehaved" error: 502. */
export const UpstreamError = createError(
  'FST_AIHUBMIX_BAD_GATEWAY',
  'The AIHubMix provider gave an unusable answer',
  502
)

export const UpstreamStatusError = createError<[number, { cause: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_STATUS',
  'The AIHubMix provider answered HTTP %d',
  502,
  UpstreamError as unknown as ErrorConstructor
)

export const UpstreamInvalidResponseError = createError<[string, { cause: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_INVALID_RESPONSE',
  'The AIHubMix provider answered something that is not a valid %s',
  502,
  UpstreamError as unknown as ErrorConstructor
)

export const UpstreamBodyTooLargeError = createError<[number]>(
  'FST_AIHUBMIX_UPSTREAM_BODY_TOO_LARGE',
  'The AIHubMix provider answered more than %d bytes',
  502,
  UpstreamError as unknown as ErrorConstructor
)

export const UpstreamUnreachableError = createError<[{ cause: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_UNREACHABLE',
  'The AIHubMix provider could not be reached',
  502,
  UpstreamError as unknown as ErrorConstructor
)

/** 429 or 503 from the provider: try again later; the session is kept. */
export const UpstreamBusyError = createError<[number]>(
  'FST_AIHUBMIX_UPSTREAM_BUSY',
  'The AIHubMix provider is busy (HTTP %d); try again later',
  503
)

export const UpstreamTimeoutError = createError<[number, { cause: unknown }?]>(
  'FST_AIHUBMIX_UPSTREAM_TIMEOUT',
  'The AIHubMix provider did not answer within %d ms',
  504
)

/** The provider answered 401 to a resource call with a token we believed valid. */
export const UpstreamUnauthorizedError = createError(
  'FST_AIHUBMIX_UPSTREAM_UNAUTHORIZED',
  'The AIHubMix provider refused the access token',
  502
)

/** The granted scopes do not cover the resource (e.g. top-up without `balance`). */
export const InsufficientScopeError = createError(
  'FST_AIHUBMIX_INSUFFICIENT_SCOPE',
  'The signed-in user did not grant the scope this call needs',
  403
)

/**
 * The token endpoint refused a grant with an OAuth error (`oauthError` holds the
 * RFC 6749 code, e.g. `invalid_grant`). Used for the code exchange; refreshes
 * turn fatal refusals into token-store's RefreshRejectedError instead.
 */
export const TokenEndpointError = createError<[string, { cause: unknown }?]>(
  'FST_AIHUBMIX_TOKEN_ENDPOINT',
  'The AIHubMix token endpoint refused the request: %s',
  400
)

export const CsrfHeaderRequiredError = createError(
  'FST_AIHUBMIX_CSRF_HEADER_REQUIRED',
  'This route needs the header X-CSRF: 1',
  403
)

export const ProxyOptionsError = createError<[string]>(
  'FST_AIHUBMIX_PROXY_OPTIONS',
  'Invalid aihubmix-proxy option %s',
  500
)
