import { readFile } from 'node:fs/promises'
import t from 'tap'
import { metricsApp, scrape } from '../helpers/metrics-app.js'
import { series } from '../helpers/prometheus.js'

// the metrics README lists the `result` values of aihubmix_logins_total (oauth-routes' LOGIN_ERROR_CODES);
// the scrape must have exactly those series.
t.test('the README\'s login results are the series the scrape has', async (t) => {
  const readme = await readFile(new URL('../../src/metrics/README.md', import.meta.url), 'utf8')
  const row = readme.split('\n').find((line) => line.startsWith('| `aihubmix_logins_total`')) ?? ''
  const listed = [...row.matchAll(/`([a-z_]+)`/g)].map((m) => m[1] as string).filter((w) => w !== 'result' && w !== 'aihubmix_logins_total' && w !== 'counter')
  const app = await metricsApp(t, { metrics: { defaultMetrics: false } })
  const scraped = Object.keys(series(await scrape(app), 'aihubmix_logins_total')).map((k) => k.replace('result=', ''))
  t.same([...listed].sort(), [...scraped].sort(), 'README and scrape name the same results')
})
