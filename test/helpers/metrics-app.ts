import Fastify, { type FastifyInstance } from 'fastify'
import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import aihubmixMetrics, { type MetricsOptions } from '@fastify-aihubmix/metrics'
import { KEY_A } from './token-store.js'
import { parseSamples, type Sample } from './prometheus.js'

/**
 * A Fastify app with token-store, aihubmix-proxy (pointing at `proxy.baseUrl`, by default a port nothing listens on)
 * and the metrics plugin, ready, closed at teardown.
 */
export async function metricsApp (t: { teardown: (fn: () => unknown) => void }, opts: {
  tokenStore?: Partial<TokenStoreOptions>
  proxy?: Partial<AihubmixProxyOptions>
  metrics?: MetricsOptions
} = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: KEY_A, ...opts.tokenStore })
  await app.register(aihubmixProxy, {
    baseUrl: 'http://127.0.0.1:9',
    clientId: 'client_metrics',
    clientSecret: 'secret_metrics_test_value',
    redirectUri: 'http://127.0.0.1:3000/auth/callback',
    ...opts.proxy
  })
  await app.register(aihubmixMetrics, opts.metrics ?? {})
  await app.ready()
  return app
}

/** The app's metrics, parsed. */
export async function scrape (app: FastifyInstance): Promise<Sample[]> {
  return parseSamples(await app.aihubmixMetrics.scrape())
}
