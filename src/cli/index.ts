/**
 * `aihubmix-oauth`: the example server's environment configuration
 * (`readConfig`), shared so that the command line checks exactly what the
 * server reads. The commands themselves follow.
 */
export { readConfig, ConfigError } from './config.js'
export type { ExampleConfig, ProviderConfig } from './config.js'
