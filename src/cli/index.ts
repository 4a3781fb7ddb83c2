/**
 * `aihubmix-oauth`: the command line (`create-app`, `doctor`) run in process, its two commands as functions,
 * the env-file helpers, and the example server's environment configuration (`readConfig`), shared so that
 * `doctor` checks exactly what the server reads. The public surface is named one by one
 * (test/packaging.test.ts holds the list); validators, option resolution, schemas and constants stay inside.
 */
export { run } from './run.js'
export type { CliIo } from './run.js'
export { createApp } from './create-app.js'
export type { CreatedApp } from './create-app.js'
export { doctor, formatCheck } from './doctor.js'
export type { DoctorCheck, DoctorReport, CheckStatus } from './doctor.js'
export { updateEnvFile, parseEnvFile } from './env-file.js'
export type { EnvFileUpdate, UpdateEnvFileOptions } from './env-file.js'
export type { CreateAppOptions, DoctorOptions } from './options.js'
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
export { readConfig, ConfigError, unreadVariables, CONFIG_VARIABLES } from './config.js'
export { isLoopbackHost } from './validate.js'
export type { ExampleConfig, ProviderConfig } from './config.js'
