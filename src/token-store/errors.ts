import { createError } from '@fastify/error'

/**
 * Errors of the token store. Every class is exported; instances are always created with `new`.
 * A `cause` is attached by passing `{ cause }` as the last argument (an @fastify/error convention).
 *
 * None of these messages ever carries a token, a session id or a sealed value: they can be logged
 * and (for the 4xx/503 ones) shown to a browser as they are.
 */

/** 401: there is no token set for this session (or it expired and cannot be refreshed). */
export const UnauthenticatedError = createError<'FST_AIHUBMIX_UNAUTHENTICATED', 401, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_UNAUTHENTICATED',
  'No usable token set for this session',
  401
)

/** 401: the provider refused the refresh token for good; the token set has been deleted. */
export const ReauthRequiredError = createError<'FST_AIHUBMIX_REAUTH_REQUIRED', 401, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_REAUTH_REQUIRED',
  'The refresh token was rejected: the user must sign in again',
  401
)

/**
 * 401: thrown BY A REFRESHER (provider code) when the provider refused the refresh grant for good
 * (`invalid_grant`, `invalid_client`). Any other error a refresher throws is treated as transient.
 * `new RefreshRejectedError({ cause })` keeps the provider's error as the cause.
 */
export const RefreshRejectedError = createError<'FST_AIHUBMIX_REFRESH_REJECTED', 401, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_REFRESH_REJECTED',
  'The provider rejected the refresh grant',
  401
)

/**
 * 500, at registration: the plugin was registered a second time where `app.tokenStore` already is (this scope or a
 * parent's). Fastify's own error only said "The decorator 'tokenStore' has already been added!", after the second
 * registration had connected its Redis.
 */
export const TokenStoreRegisteredTwiceError = createError<'FST_AIHUBMIX_TOKEN_STORE_REGISTERED_TWICE', 500, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_TOKEN_STORE_REGISTERED_TWICE',
  '@fastify-aihubmix/token-store is registered twice (app.tokenStore already exists in this scope): register it once, ' +
    'in a scope every plugin and route that uses it shares (the root app)',
  500
)

/** 503: the backing store (Redis) failed or did not answer in time. The original error is the `cause`. */
export const StoreUnavailableError = createError<'FST_AIHUBMIX_STORE_UNAVAILABLE', 503, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_STORE_UNAVAILABLE',
  'The token store is unavailable',
  503
)

/** 503: waited longer than `lockWaitMs` for another instance's refresh of the same session. */
export const RefreshBusyError = createError<'FST_AIHUBMIX_REFRESH_BUSY', 503, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_REFRESH_BUSY',
  'Timed out waiting for another instance to refresh the token set',
  503
)

/**
 * 503: this session's last refresh failed transiently moments ago (the provider was down, busy or slow); the
 * refresher is not called again until the backoff (`refreshBackoffMs`, or the provider's Retry-After) is over.
 * The last failure is the `cause` (when this process saw it), and `retryAfterMs` says how long the backoff still
 * lasts. The token set is kept.
 */
export class RefreshBackoffError extends createError<'FST_AIHUBMIX_REFRESH_BACKOFF', 503, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_REFRESH_BACKOFF',
  'The last refresh of this session failed moments ago; it is retried shortly',
  503
) {
  /** How long the backoff still lasts, in ms. */
  readonly retryAfterMs: number

  constructor (retryAfterMs: number, options?: { cause?: unknown }) {
    super(...(options === undefined ? [] as const : [options] as const))
    this.retryAfterMs = retryAfterMs
  }
}

/** 500: a bad option; the message names the option path. Thrown at registration. */
export const TokenStoreOptionsError = createError<'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', 500, [string, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_TOKEN_STORE_OPTIONS',
  'Invalid token-store option "%s": %s',
  500
)

/**
 * Why a sealed value did not open:
 * - `'unknown-key'`: it names (by its key id) a key that is not in this instance's key ring. A configuration
 *   problem, not a bad value: a key missing from `encryptionKeys` (a rotation step skipped, an instance not yet
 *   deployed with the new key, a list passed as one string). The value is kept; adding the key back opens it.
 * - `'invalid'`: anything else (tampered, truncated, not a sealed value, another slot or context, a known key whose
 *   authentication fails, or it opened but is not what was expected). The value is useless and is discarded.
 */
export type UnsealFailure = 'unknown-key' | 'invalid'

/**
 * 500: a sealed value could not be opened. `reason` says why (UnsealFailure); for `'unknown-key'`, `keyId` is the
 * id of the key it was sealed with (4 bytes of SHA-256 of that key, in hex: not secret, the same id `keyIds`
 * lists). The store treats such a value as absent; an `'invalid'` one it deletes (logged at warn), an
 * `'unknown-key'` one it leaves where it is (logged at error, rate-limited). Never carries the value.
 */
export class UnsealFailedError extends createError<'FST_AIHUBMIX_UNSEAL_FAILED', 500, [string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_UNSEAL_FAILED',
  'A sealed value could not be opened: %s',
  500
) {
  reason: UnsealFailure = 'invalid'
  /** For `reason: 'unknown-key'`: the id (hex) of the key the value was sealed with. */
  keyId: string | undefined = undefined

  /** The error for a value sealed with a key that is not in the ring. */
  static unknownKey (keyId: string): UnsealFailedError {
    const err = new UnsealFailedError(`sealed with a key that is not in the key ring (key id ${keyId})`)
    err.reason = 'unknown-key'
    err.keyId = keyId
    return err
  }
}

/** The key id when `err` says a value was sealed with a key that is not in the ring, else undefined. */
export function unknownKeyIdOf (err: unknown): string | undefined {
  return err instanceof UnsealFailedError && err.reason === 'unknown-key' ? err.keyId : undefined
}

/** 500: a programming error in how the store was called (empty session id, bad TTL, malformed token set). */
export const TokenStoreArgumentError = createError<'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', 500, [string, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT',
  'Invalid argument "%s": %s',
  500
)

/** 500: `request.tokens.save()` was called on a request without a session (register @fastify/session). */
export const NoSessionError = createError<'FST_AIHUBMIX_NO_SESSION', 500, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_NO_SESSION',
  'This request has no session: register @fastify/session before saving tokens',
  500
)

/**
 * 500: a token set saved for a @fastify/session session whose cookie is Secure, in a request that came over plain
 * http: @fastify/session neither saves such a session nor sends its cookie, so the set would sign nobody in, and
 * stay stored for its refresh token's life. Nothing is stored.
 */
export const InsecureSessionCookieError = createError<'FST_AIHUBMIX_INSECURE_SESSION_COOKIE', 500, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_INSECURE_SESSION_COOKIE',
  'This session\'s cookie is Secure and this request came over plain http, so @fastify/session will neither save the ' +
  'session nor send its cookie: the token set was not stored. Fix: serve the app over https (behind a TLS proxy, set ' +
  'Fastify\'s trustProxy), or give @fastify/session cookie.secure: \'auto\' for local http',
  500
)

/**
 * What code may read from anything thrown, whatever it is (an @fastify/error, a Node.js system error, an undici or
 * ioredis error, or not an Error at all): its `code` when that is a string, and its message. Nothing else, so
 * nothing else reaches a log line: ioredis attaches the command (keys with session ids, sealed values) to its
 * errors, and a provider's error may carry its body.
 */
export function errorInfo (err: unknown): { code: string | undefined, message: string } {
  if (typeof err !== 'object' || err === null) return { code: undefined, message: String(err) }
  const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined
  return { code, message: err instanceof Error ? err.message : String(err) }
}

/**
 * What a log line says of an error: `errorInfo`'s code and message and, for a StoreUnavailableError, its cause's: the
 * Redis error that says what to fix (OOM, NOPERM, a timeout, a closed connection). Only this error's cause: token-store
 * makes it from the Redis error's message and code alone (never the command's arguments, which hold session ids);
 * other errors' causes may carry a provider's body.
 */
export function errorLogFields (err: unknown): { code: string | undefined, message: string, cause?: { code: string | undefined, message: string } } {
  const fields = errorInfo(err)
  if (!(err instanceof StoreUnavailableError) || err.cause === undefined) return fields
  return { ...fields, cause: errorInfo(err.cause) }
}
