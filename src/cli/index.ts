/**
 * `aihubmix-oauth`: the command line (`create-app`, `doctor`) and its building
 * blocks, plus the example server's environment configuration (`readConfig`),
 * shared so that `doctor` checks exactly what the server reads.
 */
export { run, VERSION, PROGRAM, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './run.js'
export type { CliIo } from './run.js'
export { createApp, parseOAuthAppAnswer, OAUTH_APPS_PATH } from './create-app.js'
export type { CreatedApp } from './create-app.js'
export { doctor, formatCheck, AUTHORIZE_PATH, CALLBACK_PATH } from './doctor.js'
export type { DoctorCheck, DoctorReport, CheckStatus } from './doctor.js'
export {
  updateEnvFile,
  readEnvFile,
  parseEnvFile,
  formatEnvValue,
  definedKeys,
  assertEnvFileUpdatable,
  ENV_FILE_MODE
} from './env-file.js'
export type { EnvFile, EnvFileUpdate, UpdateEnvFileOptions } from './env-file.js'
export { pingRedis, redisTarget, DEFAULT_REDIS_PORT } from './redis-ping.js'
export type { RedisPing, RedisPersistence } from './redis-ping.js'
export {
  nameProblem,
  descriptionProblem,
  redirectUriProblem,
  baseUrlProblem,
  developerTokenProblem,
  isLoopbackHost,
  MAX_NAME_LENGTH,
  MAX_DESCRIPTION_LENGTH,
  MAX_URL_LENGTH
} from './validate.js'
export {
  resolveCreateAppOptions,
  resolveDoctorOptions,
  CreateAppOptionsSchema,
  DoctorOptionsSchema,
  DEFAULT_BASE_URL,
  DEFAULT_ENV_FILE,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_MAX_BODY_BYTES,
  DEVELOPER_TOKEN_VARIABLE,
  ENV_KEYS
} from './options.js'
export type { CreateAppOptions, ResolvedCreateAppOptions, DoctorOptions, ResolvedDoctorOptions } from './options.js'
export {
  OAuthAppSchema,
  OAuthAppEnvelopeSchema,
  ProviderErrorBodySchema
} from './schemas.js'
export type { OAuthAppAnswer, OAuthAppEnvelope, ProviderErrorBody } from './schemas.js'
export {
  CliUsageError,
  CliInvalidArgumentError,
  CliInvalidOptionError,
  ProviderError,
  ProviderUnreachableError,
  ProviderTimeoutError,
  ProviderUnauthorizedError,
  ProviderRefusedError,
  ProviderFailedError,
  ProviderRedirectError,
  ProviderBadAnswerError,
  EnvFileConflictError,
  EnvFileError
} from './errors.js'
export { readConfig, ConfigError } from './config.js'
export type { ExampleConfig, ProviderConfig } from './config.js'
