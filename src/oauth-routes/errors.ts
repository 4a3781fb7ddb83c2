import createError from '@fastify/error'

export const OAuthRoutesOptionsError = createError<[string]>(
  'FST_AIHUBMIX_OAUTH_ROUTES_OPTIONS',
  'Invalid oauth-routes options: %s',
  500
)

export const CsrfHeaderRequiredError = createError(
  'FST_AIHUBMIX_CSRF_HEADER_REQUIRED',
  'This route needs the header X-CSRF: 1',
  403
)

/**
 * The fixed set of codes a failed login redirects with (`/?error=<code>`).
 * Nothing from the provider is ever reflected raw.
 */
export const LOGIN_ERROR_CODES = [
  'invalid_state',
  'missing_parameters',
  'invalid_request',
  'invalid_issuer',
  'access_denied',
  'provider_error',
  'token_exchange_failed',
  'server_error'
] as const
export type LoginErrorCode = typeof LOGIN_ERROR_CODES[number]
