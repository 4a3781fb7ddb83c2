import { createError } from '@fastify/error'

/**
 * Errors of the metrics plugin. Every class is exported; instances are always created with `new`.
 */

/** 500: a bad option of the plugin or of the route plugin; the message names the option's path. Thrown at registration. */
export const MetricsOptionsError = createError<'FST_AIHUBMIX_METRICS_OPTIONS', 500, [string, string]>(
  'FST_AIHUBMIX_METRICS_OPTIONS',
  'Invalid metrics option "%s": %s',
  500
)

/**
 * 500, at registration: the plugin was registered a second time where `app.aihubmixMetrics` already is (this scope or
 * a parent's). Fastify's own error only said "The decorator 'aihubmixMetrics' has already been added!".
 */
export const MetricsRegisteredTwiceError = createError<'FST_AIHUBMIX_METRICS_REGISTERED_TWICE', 500, [{ cause?: unknown }?]>(
  'FST_AIHUBMIX_METRICS_REGISTERED_TWICE',
  '@fastify-aihubmix/metrics is registered twice (app.aihubmixMetrics already exists in this scope): register it once ' +
    '(metricsRoute serves it wherever it is registered)',
  500
)

/** 500: registered before a plugin it reads from; the message names it and the order. Thrown at registration. */
export const MetricsRegistrationError = createError<'FST_AIHUBMIX_METRICS_REGISTRATION', 500, [string]>(
  'FST_AIHUBMIX_METRICS_REGISTRATION',
  'the metrics plugin needs %s: register token-store, then aihubmix-proxy, then the metrics plugin',
  500
)
