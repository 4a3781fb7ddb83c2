import t from 'tap'
import Fastify from 'fastify'
import { metricsRoute } from '@fastify-aihubmix/metrics'
import { metricsApp } from '../helpers/metrics-app.js'

// Issue 19: the metrics plugin serves nothing by itself; `metricsRoute` serves one app's metrics on whatever
// instance the host registers it on, under that scope's prefix, at `path`.

t.test('metricsRoute serves the app\'s metrics where it is registered, and nowhere else', async (t) => {
  // Without the process metrics, two scrapes in a row give the same text.
  const app = await metricsApp(t, { metrics: { defaultMetrics: false } })
  const admin = Fastify()
  t.teardown(() => admin.close())
  await admin.register(metricsRoute, { metrics: app.aihubmixMetrics, prefix: '/internal', path: '/prometheus' })
  const res = await admin.inject('/internal/prometheus')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.body, /^# HELP aihubmix_logins_total /m)
  t.match(res.body, /^aihubmix_store_errors_total 0$/m)
  t.equal(res.body, await app.aihubmixMetrics.scrape(), 'the same text as scrape()')

  t.equal((await admin.inject('/metrics')).statusCode, 404, 'only at the path given')
  t.equal((await app.inject('/metrics')).statusCode, 404, 'the app itself serves no metrics')
})
