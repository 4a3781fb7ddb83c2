// The public surface, named one by one (test/packaging.test.ts holds the list): startMockProvider, its option
// schema and defaults, its error classes, the two fault constants tests compare against, and the types of the
// provider object and its options. Option resolution, routes and paths stay inside.
export { startMockProvider } from './provider.js'
export type { MockProvider, MockIssued } from './provider.js'
export type { MockApp, NewMockApp } from './apps.js'
export type { MockCounts } from './switches.js'
export {
  MockProviderOptionsSchema,
  DEFAULT_HOST,
  DEFAULT_PORT,
  DEFAULT_TOKEN_PREFIX,
  DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
  DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
  DEFAULT_CODE_TTL_SECONDS,
  DEFAULT_ROTATE_REFRESH_TOKENS,
  DEFAULT_REFRESH_REUSE_REVOKES,
  DEFAULT_CONTROL_API_PREFIX,
  DEFAULT_ENVELOPE,
  DEFAULT_ENVELOPE_ERROR_CODES,
  DEFAULT_LOGGER,
  DEFAULT_REVOCATION_ENDPOINT,
  DEFAULT_USER
} from './options.js'
export type {
  MockProviderOptions,
  MockUser,
  MockEndpoint,
  MockFault
} from './options.js'
export { MockInvalidOptionError, MockInvalidArgumentError } from './errors.js'
export { OVERSIZE_BYTES, REDIRECT_TARGET } from './faults.js'
