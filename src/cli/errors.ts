import { createError } from '@fastify/error'

/**
 * Errors of the `aihubmix-oauth` command line and its building blocks. Every
 * message is one line meant for a terminal, and none carries the developer
 * token or a client secret (the provider's body is kept, at most, as `cause`).
 *
 * `statusCode` is the process exit status the command line uses for it:
 * 2 for a usage or validation error (nothing was sent), 1 for everything else.
 */

/** A bad command line: unknown option, missing value, unexpected argument. Exit 2. */
export const CliUsageError = createError<[string]>(
  'FST_AIHUBMIX_CLI_USAGE',
  '%s',
  2
)

/** An argument or variable that fails validation before any request. Exit 2. */
export const CliInvalidArgumentError = createError<[string, string]>(
  'FST_AIHUBMIX_CLI_INVALID_ARGUMENT',
  '%s %s',
  2
)

/** A building block called with options of the wrong shape (names the option path). */
export const CliInvalidOptionError = createError<[string]>(
  'FST_AIHUBMIX_CLI_INVALID_OPTION',
  'Invalid aihubmix-oauth option %s',
  2
)

/** Parent of every "the provider did not create the app" error. Exit 1. */
export const ProviderError = createError<[string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER',
  '%s',
  1
)

const providerBase = ProviderError as unknown as ErrorConstructor

/** The provider could not be reached at all (DNS, connection refused, TLS). */
export const ProviderUnreachableError = createError<[string, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER_UNREACHABLE',
  'cannot reach the provider at %s: %s',
  1,
  providerBase
)

/** No complete answer within the time limit. */
export const ProviderTimeoutError = createError<[string, number, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER_TIMEOUT',
  'the provider at %s did not answer within %d ms',
  1,
  providerBase
)

/** 401 / 403: the developer token was refused. */
export const ProviderUnauthorizedError = createError<[number, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER_UNAUTHORIZED',
  'the provider refused the developer token (HTTP %d): check AIHUBMIX_DEVELOPER_TOKEN',
  1,
  providerBase
)

/** Any other 4xx, or `success: false`: the provider refused the request. */
export const ProviderRefusedError = createError<[number, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER_REFUSED',
  'the provider refused the request (HTTP %d): %s',
  1,
  providerBase
)

/** 5xx. */
export const ProviderFailedError = createError<[number, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER_FAILED',
  'the provider failed (HTTP %d): nothing was written; try again later',
  1,
  providerBase
)

/** 3xx: redirects are never followed (they would carry the developer token elsewhere). */
export const ProviderRedirectError = createError<[number, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER_REDIRECT',
  'the provider answered a redirect (HTTP %d to %s), which is not followed: check --base-url',
  1,
  providerBase
)

/** A 2xx that is not JSON, too large, or fails the schema. */
export const ProviderBadAnswerError = createError<[string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_PROVIDER_BAD_ANSWER',
  'the provider\'s answer was not understood: %s',
  1,
  providerBase
)

/** The env file already holds some of the keys and `--force` was not given. Exit 1. */
export const EnvFileConflictError = createError<[string, string]>(
  'FST_AIHUBMIX_CLI_ENV_FILE_CONFLICT',
  'refusing to overwrite %s in %s: pass --force to replace them',
  1
)

/** The env file could not be read or written. Exit 1. */
export const EnvFileError = createError<[string, string, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_CLI_ENV_FILE',
  'cannot %s %s: %s',
  1
)

/**
 * What the command line may read from anything thrown (its own errors, Node.js system errors, undici's, or not an
 * Error at all): its `code` when that is a string, and its message. Nothing else reaches a terminal.
 */
export function errorInfo (err: unknown): { code: string | undefined, message: string } {
  if (typeof err !== 'object' || err === null) return { code: undefined, message: String(err) }
  const code = 'code' in err && typeof err.code === 'string' ? err.code : undefined
  return { code, message: err instanceof Error ? err.message : String(err) }
}
