import createError from '@fastify/error'

/**
 * Errors of the token store. Every class is exported; instances are always created with `new`.
 * A `cause` is attached by passing `{ cause }` as the last argument (an @fastify/error convention).
 *
 * None of these messages ever carries a token, a session id or a sealed value: they can be logged
 * and (for the 4xx/503 ones) shown to a browser as they are.
 */

/** 401: there is no token set for this session (or it expired and cannot be refreshed). */
export const UnauthenticatedError = createError(
  'FST_AIHUBMIX_UNAUTHENTICATED',
  'No usable token set for this session',
  401
)

/** 401: the provider refused the refresh token for good; the token set has been deleted. */
export const ReauthRequiredError = createError(
  'FST_AIHUBMIX_REAUTH_REQUIRED',
  'The refresh token was rejected: the user must sign in again',
  401
)

/**
 * 401: thrown BY A REFRESHER (provider code) when the provider refused the refresh grant for good
 * (`invalid_grant`, `invalid_client`). Any other error a refresher throws is treated as transient.
 * `new RefreshRejectedError({ cause })` keeps the provider's error as the cause.
 */
export const RefreshRejectedError = createError(
  'FST_AIHUBMIX_REFRESH_REJECTED',
  'The provider rejected the refresh grant',
  401
)

/** 503: the backing store (Redis) failed or did not answer in time. The original error is the `cause`. */
export const StoreUnavailableError = createError(
  'FST_AIHUBMIX_STORE_UNAVAILABLE',
  'The token store is unavailable',
  503
)

/** 503: waited longer than `lockWaitMs` for another instance's refresh of the same session. */
export const RefreshBusyError = createError(
  'FST_AIHUBMIX_REFRESH_BUSY',
  'Timed out waiting for another instance to refresh the token set',
  503
)

/**
 * 503: this session's last refresh failed transiently moments ago (the provider was down, busy or slow); the
 * refresher is not called again until the backoff (`refreshBackoffMs`, or the provider's Retry-After) is over.
 * The last failure is the `cause`, and `retryAfterMs` says how long the backoff still lasts. The token set is kept.
 */
export const RefreshBackoffError = createError(
  'FST_AIHUBMIX_REFRESH_BACKOFF',
  'The last refresh of this session failed moments ago; it is retried shortly',
  503
)

/** 500: a bad option; the message names the option path. Thrown at registration. */
export const TokenStoreOptionsError = createError<'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', 500, [string, string, { cause: unknown }?]>(
  'FST_AIHUBMIX_TOKEN_STORE_OPTIONS',
  'Invalid token-store option "%s": %s',
  500
)

/**
 * 500: a sealed value could not be opened (tampered, wrong storage key, unknown key id, bad format).
 * `get()` and `takeRecord()` treat such a value as absent and delete it; it is only ever logged, without the value.
 */
export const UnsealFailedError = createError<'FST_AIHUBMIX_UNSEAL_FAILED', 500, [string, { cause: unknown }?]>(
  'FST_AIHUBMIX_UNSEAL_FAILED',
  'A sealed value could not be opened: %s',
  500
)

/** 500: a programming error in how the store was called (empty session id, bad TTL, malformed token set). */
export const TokenStoreArgumentError = createError<'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', 500, [string, string, { cause: unknown }?]>(
  'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT',
  'Invalid argument "%s": %s',
  500
)

/** 500: `request.tokens.save()` was called on a request without a session (register @fastify/session). */
export const NoSessionError = createError(
  'FST_AIHUBMIX_NO_SESSION',
  'This request has no session: register @fastify/session before saving tokens',
  500
)
