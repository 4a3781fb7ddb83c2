import t from 'tap'
import dc from 'node:diagnostics_channel'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { LOGIN_CHANNEL } from '@fastify-aihubmix/oauth-routes'
import { RefreshRejectedError, type TokenSet } from '@fastify-aihubmix/token-store'
import { login, startProvider } from '../helpers/mock-client.js'
import { metricsApp, scrape } from '../helpers/metrics-app.js'
import { series } from '../helpers/prometheus.js'
import { sid, tokenSet } from '../helpers/token-store.js'

// Issue 19: each metric the README lists moves with the events of its own app: provider calls by endpoint
// and status with their durations, refreshes by result, refresh-lock waits, store errors, sign-ins by result.

const MINUTE = 60_000

t.test('provider calls, refreshes, lock waits and sign-ins are counted as they happen', async (t) => {
  const { provider, app: demo } = await startProvider(t)
  const app = await metricsApp(t, {
    tokenStore: { refreshBackoffMs: 0 },
    proxy: { baseUrl: provider.url, clientId: demo.clientId, clientSecret: demo.clientSecret, redirectUri: demo.redirectUri }
  })
  const tokens = await login(provider, demo) // the provider's own token call, not the app's
  await app.aihubmix.userinfo(tokens.access_token)
  await app.aihubmix.topup(tokens.access_token)

  const id = sid()
  await app.tokenStore.save(id, tokenSet({ refreshToken: tokens.refresh_token, expiresInMs: -MINUTE }))
  await app.tokenStore.getFresh(id, app.aihubmix.refresh)
  const refused = sid()
  await app.tokenStore.save(refused, tokenSet({ expiresInMs: -MINUTE }))
  await t.rejects(app.tokenStore.getFresh(refused, async (): Promise<TokenSet> => { throw new RefreshRejectedError() }))
  const failing = sid()
  await app.tokenStore.save(failing, tokenSet({ expiresInMs: -MINUTE }))
  await t.rejects(app.tokenStore.getFresh(failing, async (): Promise<TokenSet> => { throw new Error('the provider is down') }))
  await t.rejects(app.tokenStore.getFresh(failing, async (): Promise<TokenSet> => { throw new Error('still down') }))
  // Sign-ins are published by oauth-routes (test/example/metrics-listener.test.ts counts real ones).
  dc.channel(LOGIN_CHANNEL).publish({ client: app.aihubmix, outcome: 'ok' })
  dc.channel(LOGIN_CHANNEL).publish({ client: app.aihubmix, outcome: 'access_denied' })

  const samples = await scrape(app)
  t.same(series(samples, 'aihubmix_upstream_requests_total'), {
    'endpoint=token,status=200': 1,
    'endpoint=topup,status=200': 1,
    'endpoint=userinfo,status=200': 1
  })
  t.same(series(samples, 'aihubmix_upstream_request_duration_seconds_count'), { 'endpoint=token': 1, 'endpoint=topup': 1, 'endpoint=userinfo': 1 })
  t.same(series(samples, 'aihubmix_token_refreshes_total'), { 'result=ok': 1, 'result=rejected': 1, 'result=failed': 2 })
  t.same(series(samples, 'aihubmix_refresh_lock_wait_seconds_count'), { '': 4 }, 'one wait per flight')
  t.same(series(samples, 'aihubmix_store_errors_total'), { '': 0 })
  const logins = series(samples, 'aihubmix_logins_total')
  t.equal(logins['result=ok'], 1)
  t.equal(logins['result=access_denied'], 1)
  t.equal(logins['result=invalid_state'], 0, 'every result exists from the start')
  const buckets = series(samples, 'aihubmix_upstream_request_duration_seconds_bucket', { endpoint: 'userinfo' })
  t.equal(buckets['le=+Inf'], 1)
  // The registry's JSON view says the same as its text.
  const json = await app.aihubmixMetrics.registry.getMetricsAsJSON()
  const requests = json.find((m) => m.name === 'aihubmix_upstream_requests_total')
  t.same(requests?.values.map((v) => `${String(v.labels.endpoint)} ${String(v.labels.status)} ${v.value}`).sort(), ['token 200 1', 'topup 200 1', 'userinfo 200 1'])
  const durationCounts = json.find((m) => m.name === 'aihubmix_upstream_request_duration_seconds')?.values
    .filter((v) => (v as { metricName?: string }).metricName === 'aihubmix_upstream_request_duration_seconds_count')
    .map((v) => [v.labels.endpoint, v.value])
  t.same(durationCounts, [['token', 1], ['userinfo', 1], ['topup', 1]])
})

t.test('every failed store command is a store error', async (t) => {
  const closed = createServer()
  closed.listen(0, '127.0.0.1')
  await once(closed, 'listening')
  const port = (closed.address() as { port: number }).port
  await new Promise((resolve) => closed.close(resolve))
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  const app = await metricsApp(t, { tokenStore: { redis } })
  t.same(series(await scrape(app), 'aihubmix_store_errors_total'), { '': 0 })
  await t.rejects(app.tokenStore.get(sid()), { code: 'FST_AIHUBMIX_STORE_UNAVAILABLE' })
  await t.rejects(app.tokenStore.save(sid(), tokenSet()), { code: 'FST_AIHUBMIX_STORE_UNAVAILABLE' })
  t.same(series(await scrape(app), 'aihubmix_store_errors_total'), { '': 2 })
})
