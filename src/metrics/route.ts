import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { resolveRouteOptions, type MetricsRouteOptions } from './options.js'

/**
 * `GET /metrics` (the `path` option) with an app's metrics, for the instance the host chooses: register it on a
 * Fastify instance of its own that listens on an address only Prometheus reaches, never on the public app. It
 * is not wrapped in fastify-plugin: the route stays in the scope it is registered in, under its prefix.
 */
export const metricsRoute: FastifyPluginAsync<MetricsRouteOptions> = async function metricsRoute (fastify: FastifyInstance, opts: MetricsRouteOptions) {
  const { metrics, path } = resolveRouteOptions(opts)
  fastify.get(path, async (_request, reply) => {
    const text = await metrics.scrape()
    return reply.type(metrics.contentType).header('cache-control', 'no-store').send(text)
  })
}
