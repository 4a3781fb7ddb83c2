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

/** 500: registered before a plugin it reads from; the message names it and the order. Thrown at registration. */
export const MetricsRegistrationError = createError<'FST_AIHUBMIX_METRICS_REGISTRATION', 500, [string]>(
  'FST_AIHUBMIX_METRICS_REGISTRATION',
  'the metrics plugin needs %s: register token-store, then aihubmix-proxy, then the metrics plugin',
  500
)
