import t from 'tap'
import Fastify from 'fastify'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixMetrics, { MetricsOptionsError, metricsRoute } from '@fastify-aihubmix/metrics'
import { resolveOptions, DEFAULT_LOCK_WAIT_BUCKETS } from '../../src/metrics/options.js'
import { metricsApp, scrape } from '../helpers/metrics-app.js'
import { series } from '../helpers/prometheus.js'

// Issue 19: the plugin's and the route plugin's options are validated once, at registration, into frozen objects;
// a bad one fails with FST_AIHUBMIX_METRICS_OPTIONS naming its path.

function refusal (options: unknown): Error {
  try {
    resolveOptions(options)
  } catch (err) {
    return err as Error
  }
  throw new Error('accepted')
}

t.test('bad plugin options are refused by path, in one line', async (t) => {
  const cases: Array<[unknown, string]> = [
    [{ defaultMetric: true }, 'Invalid metrics option "defaultMetric": is not an option (did you mean defaultMetrics?)'],
    [{ defaultMetrics: 'yes' }, 'Invalid metrics option "defaultMetrics": expected true or false, got a string of 3 characters'],
    [{ lockWaitBuckets: [0.1, 0.05] }, 'Invalid metrics option "lockWaitBuckets[1]": expected upper bounds that increase strictly'],
    [{ lockWaitBuckets: [0.1, 0.1] }, 'Invalid metrics option "lockWaitBuckets[1]": expected upper bounds that increase strictly'],
    [{ upstreamDurationBuckets: [0, 1] }, 'Invalid metrics option "upstreamDurationBuckets[0]": expected a number of seconds above 0, got 0'],
    [{ upstreamDurationBuckets: [] }, 'Invalid metrics option "upstreamDurationBuckets": expected a non-empty list of numbers of seconds above 0, got an empty list'],
    [{ upstreamDurationBuckets: [1, Infinity] }, 'Invalid metrics option "upstreamDurationBuckets[1]": expected a number of seconds above 0, got Infinity'],
    [null, 'Invalid metrics option "(options)": must be an object']
  ]
  for (const [options, message] of cases) {
    const err = refusal(options)
    t.ok(err instanceof MetricsOptionsError, message)
    t.match(err, { code: 'FST_AIHUBMIX_METRICS_OPTIONS', statusCode: 500 })
    t.equal(err.message, message)
  }
})

t.test('options resolve to a new frozen object with defaults; the caller\'s is untouched', async (t) => {
  const input = { lockWaitBuckets: [1, 2] }
  const resolved = resolveOptions(input)
  t.ok(Object.isFrozen(resolved))
  t.ok(Object.isFrozen(resolved.lockWaitBuckets))
  t.same(input, { lockWaitBuckets: [1, 2] })
  t.not(resolved.lockWaitBuckets, input.lockWaitBuckets)
  t.same(resolveOptions({}), { defaultMetrics: true, upstreamDurationBuckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], lockWaitBuckets: DEFAULT_LOCK_WAIT_BUCKETS })
  t.same(resolveOptions({ prefix: '/x', logLevel: 'warn' }).defaultMetrics, true, 'Fastify\'s register options are not ours')
})

t.test('defaultMetrics: false leaves the process metrics out; buckets are the ones given', async (t) => {
  const app = await metricsApp(t, { metrics: { defaultMetrics: false, lockWaitBuckets: [0.5, 5] } })
  const samples = await scrape(app)
  t.notOk(samples.some((s) => s.name.startsWith('process_') || s.name.startsWith('nodejs_')), 'no process metrics')
  t.same(Object.keys(series(samples, 'aihubmix_refresh_lock_wait_seconds_bucket')).sort(), ['le=+Inf', 'le=0.5', 'le=5'])
  const withDefaults = await metricsApp(t)
  t.ok((await scrape(withDefaults)).some((s) => s.name === 'process_resident_memory_bytes'), 'on by default')
})

t.test('registered before token-store or aihubmix-proxy: one line at start naming what to register, and the order', async (t) => {
  const bare = Fastify()
  t.teardown(() => bare.close())
  bare.register(aihubmixMetrics)
  await t.rejects(async () => await bare.ready(), {
    code: 'FST_AIHUBMIX_METRICS_REGISTRATION',
    message: 'the metrics plugin needs @fastify-aihubmix/token-store registered before it (app.tokenStore is missing): register token-store, then aihubmix-proxy, then the metrics plugin'
  })
  const half = Fastify()
  t.teardown(() => half.close())
  half.register(tokenStore, { encryptionKeys: 'hex:' + 'ab'.repeat(32) })
  half.register(aihubmixMetrics)
  await t.rejects(async () => await half.ready(), {
    message: 'the metrics plugin needs @fastify-aihubmix/aihubmix-proxy registered before it (app.aihubmix is missing): register token-store, then aihubmix-proxy, then the metrics plugin'
  })
})

t.test('the route plugin needs the app\'s metrics and a path', async (t) => {
  const app = await metricsApp(t)
  const cases: Array<[Record<string, unknown>, string]> = [
    [{}, 'Invalid metrics option "metrics": is required (pass the app\'s fastify.aihubmixMetrics, once the metrics plugin is loaded there: after `await app.register(aihubmixMetrics)`, or in a plugin registered after it)'],
    [{ metrics: {} }, 'Invalid metrics option "metrics": expected the app\'s fastify.aihubmixMetrics (an object with scrape() and contentType)'],
    [{ metrics: app.aihubmixMetrics, path: 'metrics' }, 'Invalid metrics option "path": expected a path like /metrics, got a string of 7 characters']
  ]
  for (const [options, message] of cases) {
    const server = Fastify()
    t.teardown(() => server.close())
    server.register(metricsRoute, options as never)
    await t.rejects(async () => await server.ready(), { code: 'FST_AIHUBMIX_METRICS_OPTIONS', message })
  }
})
