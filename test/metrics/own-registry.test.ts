import t from 'tap'
import { register as globalRegistry } from 'prom-client'
import { login, startProvider } from '../helpers/mock-client.js'
import { metricsApp, scrape } from '../helpers/metrics-app.js'
import { series } from '../helpers/prometheus.js'

// Issue 19: two apps in one process each count only their own events, into a registry of their own; prom-client's
// global registry is never used.

t.test('two apps in one process: separate registries, separate numbers', async (t) => {
  const { provider, app: demo } = await startProvider(t)
  const proxy = { baseUrl: provider.url, clientId: demo.clientId, clientSecret: demo.clientSecret, redirectUri: demo.redirectUri }
  const a = await metricsApp(t, { proxy })
  const b = await metricsApp(t, { proxy })
  t.not(a.aihubmixMetrics.registry, b.aihubmixMetrics.registry)
  const tokens = await login(provider, demo)
  await a.aihubmix.userinfo(tokens.access_token)
  await a.aihubmix.userinfo(tokens.access_token)
  await b.aihubmix.topup(tokens.access_token)

  t.same(series(await scrape(a), 'aihubmix_upstream_requests_total'), { 'endpoint=userinfo,status=200': 2 }, 'a: its own two calls')
  t.same(series(await scrape(b), 'aihubmix_upstream_requests_total'), { 'endpoint=topup,status=200': 1 }, 'b: its own call')
  t.same(await globalRegistry.getMetricsAsJSON(), [], 'nothing in prom-client\'s global registry')
})
