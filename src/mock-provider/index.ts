export { startMockProvider } from './provider.js'
export type { MockProvider, MockIssued } from './provider.js'
export type { MockApp, NewMockApp } from './apps.js'
export type { MockCounts } from './switches.js'
export type { MockUserInfo } from './resources.js'
export type { TokenAnswer } from './grants.js'
export {
  resolveOptions,
  defaultDeveloperToken,
  MockProviderOptionsSchema,
  MockUserPatchSchema,
  MOCK_ENDPOINTS,
  MOCK_FAULTS,
  MOCK_SCOPES,
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
  DEFAULT_LOGGER,
  DEFAULT_USER
} from './options.js'
export type {
  MockProviderOptions,
  ResolvedMockProviderOptions,
  MockUser,
  MockEndpoint,
  MockFault,
  MockScope
} from './options.js'
export { MockInvalidOptionError, MockInvalidArgumentError } from './errors.js'
export { OVERSIZE_BYTES, REDIRECT_TARGET } from './faults.js'
export { AUTHORIZE_PATH, DECISION_PATH } from './authorize.js'
export { TOKEN_PATH } from './token.js'
export { USERINFO_PATH, TOPUP_PATH, TOPUP_PAGE_PATH, balanceFormatted } from './resources.js'
export { OAUTH_APPS_PATH } from './oauth-apps.js'
