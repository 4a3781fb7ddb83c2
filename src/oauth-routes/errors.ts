import { createError } from '@fastify/error'

export const OAuthRoutesOptionsError = createError<[string]>(
  'FST_AIHUBMIX_OAUTH_ROUTES_OPTIONS',
  'Invalid oauth-routes option %s',
  500
)

/**
 * Thrown at registration: the provider sends users back to aihubmix-proxy's `redirectUri`, and this plugin's
 * callback route (`publicUrl`'s origin + the prefixes + `routes.callback`) is not there, so every sign-in would
 * end on a 404. The message names both URLs and the option that turns the check off.
 */
export const RedirectUriMismatchError = createError<[string, string]>(
  'FST_AIHUBMIX_REDIRECT_URI_MISMATCH',
  'aihubmix-proxy\'s redirectUri %s is not oauth-routes\' callback route %s: make them the same (publicUrl, prefix, routes.callback), ' +
    'or set oauth-routes\' checkRedirectUri: false if a proxy in front rewrites the path',
  500
)

/**
 * Thrown at registration: a plugin oauth-routes needs is not registered before it (or not in its scope). The message
 * names the plugin and the whole order (Fastify's own check only says which decorator is missing).
 */
/**
 * Thrown at registration: the plugin was registered a second time in the same scope, or where its login route is
 * already declared. Fastify's own error only said "Method 'GET' already declared for route '/auth/login'".
 */
export const OAuthRoutesRegisteredTwiceError = createError<[string]>(
  'FST_AIHUBMIX_OAUTH_ROUTES_REGISTERED_TWICE',
  '@fastify-aihubmix/oauth-routes is registered twice (%s): register it once, in the scope of @fastify/session',
  500
)

export const OAuthRoutesRegistrationError = createError<[string]>(
  'FST_AIHUBMIX_OAUTH_ROUTES_REGISTRATION',
  'oauth-routes needs %s: register @fastify/cookie, token-store, aihubmix-proxy, then in one scope @fastify/session and oauth-routes',
  500
)

/** 404 `not_found`: `DELETE <prefix>/sessions/:id` with an id that is not one of this user's sessions (nothing ends). */
export const SessionNotFoundError = createError<'FST_AIHUBMIX_SESSION_NOT_FOUND', 404, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_SESSION_NOT_FOUND',
  'No session of yours has this id.',
  404
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
  'userinfo_failed',
  'insecure_cookie',
  'store_unavailable',
  'server_error'
] as const
export type LoginErrorCode = typeof LOGIN_ERROR_CODES[number]
