import Fastify, { LogController, type FastifyInstance } from 'fastify'
import aihubmixMetrics, { metricsRoute } from '@fastify-aihubmix/metrics'
import { listenError } from './listen-errors.js'

export interface MetricsListener {
  /** `http://<METRICS_HOST>:<port>/metrics`, with the port actually bound. */
  url: string
  close (): Promise<void>
}

/**
 * METRICS_PORT: the app's metrics (@fastify-aihubmix/metrics) on a listener of their own, at
 * METRICS_HOST:METRICS_PORT. The public app gets the plugin, which counts, and no route: /metrics there is the
 * app's ordinary 404. Call it before the app is ready (it registers a plugin on it).
 */
export async function startMetrics (app: FastifyInstance, listen: { port: number, host: string }): Promise<MetricsListener> {
  await app.register(aihubmixMetrics)
  // A scrape every few seconds is not worth two log lines each.
  const server = Fastify({ loggerInstance: app.log.child({ listener: 'metrics' }), logController: new LogController({ disableRequestLogging: true }) })
  server.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ error: 'not_found', message: 'Metrics are at /metrics.' }))
  await server.register(metricsRoute, { metrics: app.aihubmixMetrics })
  try {
    await server.listen({ port: listen.port, host: listen.host })
  } catch (err) {
    await server.close()
    throw listenError(err, { host: 'METRICS_HOST', port: 'METRICS_PORT' }, listen)
  }
  const address = server.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : listen.port
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host
  return { url: `http://${host}:${port}/metrics`, close: () => server.close() }
}
