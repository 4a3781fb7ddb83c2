import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type {} from '@fastify-aihubmix/token-store'
import type {} from '@fastify-aihubmix/aihubmix-proxy'
import { createMetrics, type AihubmixMetrics } from './metrics.js'
import { resolveOptions, type MetricsOptions } from './options.js'

// The public surface, named one by one (test/packaging.test.ts holds the list): the plugin, metricsRoute, the
// metric names, the error class, and the types of the options and the decorator. Option resolution stays inside.
export { METRIC_NAMES } from './metrics.js'
export type { AihubmixMetrics } from './metrics.js'
export { metricsRoute } from './route.js'
export type { MetricsOptions, MetricsRouteOptions } from './options.js'
export { MetricsOptionsError, MetricsRegistrationError, MetricsRegisteredTwiceError } from './errors.js'
import { MetricsRegistrationError, MetricsRegisteredTwiceError } from './errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's metrics (@fastify-aihubmix/metrics): its registry and its scrape. */
    aihubmixMetrics: AihubmixMetrics
  }
}

async function metricsPlugin (fastify: FastifyInstance, opts: MetricsOptions): Promise<void> {
  // Fastify's own refusal comes at the decorator, and names only it.
  if (fastify.hasDecorator('aihubmixMetrics')) throw new MetricsRegisteredTwiceError()
  // Checked here rather than by fastify-plugin's `decorators`, whose message names a decorator, not what to register.
  if (!fastify.hasDecorator('tokenStore')) throw new MetricsRegistrationError('@fastify-aihubmix/token-store registered before it (app.tokenStore is missing)')
  if (!fastify.hasDecorator('aihubmix')) throw new MetricsRegistrationError('@fastify-aihubmix/aihubmix-proxy registered before it (app.aihubmix is missing)')
  const options = resolveOptions(opts)
  const { metrics, close } = createMetrics({ store: fastify.tokenStore, client: fastify.aihubmix }, options)
  fastify.decorate('aihubmixMetrics', metrics)
  fastify.addHook('onClose', async () => { close() })
}

/**
 * The plugin. Counts this app's sign-ins, refreshes, provider calls, refresh-lock waits and store errors (from
 * the diagnostics channels of token-store, aihubmix-proxy and oauth-routes) into a prom-client registry of its own,
 * and decorates `fastify.aihubmixMetrics`. It serves nothing: register `metricsRoute` on the instance that should.
 */
export const aihubmixMetrics = fp(metricsPlugin, {
  fastify: '5.x',
  name: '@fastify-aihubmix/metrics',
})

export default aihubmixMetrics
