import createError from '@fastify/error'

export const OAuthRoutesOptionsError = createError<[string]>(
  'FST_AIHUBMIX_OAUTH_ROUTES_OPTIONS',
  'Invalid oauth-routes option %s',
  500
)

/** The same error (and code) as the proxy routes answer without the header. */
export { CsrfHeaderRequiredError } from '@fastify-aihubmix/aihubmix-proxy'

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
