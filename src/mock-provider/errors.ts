import { createError } from '@fastify/error'

/**
 * A `startMockProvider()` option failed validation. The first argument names the option path
 * (`options.user.quota`), the second says what is wrong with it.
 */
export const MockInvalidOptionError = createError<'FST_AIHUBMIX_MOCK_INVALID_OPTION', 500, [string, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_MOCK_INVALID_OPTION',
  'Invalid mock provider option "%s": %s',
  500,
  TypeError
)

/**
 * An in-process call (`createApp`, `setUser`, `setFault`, `setLatency`, ...) or its control-API
 * twin received a bad argument. The first argument names it (`app.redirectUri`, `fault`).
 */
export const MockInvalidArgumentError = createError<'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT', 400, [string, string, { cause?: unknown }?]>(
  'FST_AIHUBMIX_MOCK_INVALID_ARGUMENT',
  'Invalid argument "%s": %s',
  400,
  TypeError
)
