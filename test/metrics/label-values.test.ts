import t from 'tap'
import dc from 'node:diagnostics_channel'
import { REFRESH_CHANNEL } from '@fastify-aihubmix/token-store'
import { UPSTREAM_CHANNEL } from '@fastify-aihubmix/aihubmix-proxy'
import { LOGIN_CHANNEL, LOGIN_ERROR_CODES } from '@fastify-aihubmix/oauth-routes'
import { metricsApp, scrape } from '../helpers/metrics-app.js'
import { series } from '../helpers/prometheus.js'

// Issue 19: label values come from fixed sets, whatever a message carries: a value outside them is counted as
// `other` (endpoint, sign-in result) or `error` (status), never as itself. Messages of another app's store or
// client are not counted at all.

t.test('label values are bounded; other apps\' messages are ignored', async (t) => {
  const app = await metricsApp(t)
  const upstream = dc.tracingChannel(UPSTREAM_CHANNEL).asyncEnd
  const login = dc.channel(LOGIN_CHANNEL)
  const refresh = dc.tracingChannel(REFRESH_CHANNEL).asyncEnd
  const client = app.aihubmix

  upstream.publish({ client, endpoint: 'userinfo', method: 'GET', status: 200, durationMs: 3 })
  upstream.publish({ client, endpoint: 'userinfo', method: 'GET', status: 'timeout', durationMs: 10_000 })
  upstream.publish({ client, endpoint: 'userinfo', method: 'GET', status: 'aborted', durationMs: 1 })
  upstream.publish({ client, endpoint: '/api/oauth2/userinfo?access_token=at_x', method: 'GET', status: 200, durationMs: 1 })
  upstream.publish({ client, endpoint: 'topup', method: 'GET', status: 'user@example.com', durationMs: 1 })
  upstream.publish({ client, endpoint: 'topup', method: 'GET', status: 1234, durationMs: 1 })
  upstream.publish({ client, endpoint: 'topup', method: 'GET', status: 200.5 })
  login.publish({ client, outcome: 'ok' })
  login.publish({ client, outcome: 'code_mock_x' })
  refresh.publish({ store: app.tokenStore, force: false, outcome: 'rt_mock_x' })
  refresh.publish({ store: app.tokenStore, force: false })
  // Another app's messages.
  upstream.publish({ client: {}, endpoint: 'userinfo', method: 'GET', status: 200, durationMs: 1 })
  login.publish({ client: {}, outcome: 'ok' })
  refresh.publish({ store: {}, force: false, outcome: 'ok' })

  const samples = await scrape(app)
  t.same(series(samples, 'aihubmix_upstream_requests_total'), {
    'endpoint=userinfo,status=200': 1,
    'endpoint=userinfo,status=timeout': 1,
    'endpoint=userinfo,status=aborted': 1,
    'endpoint=other,status=200': 1,
    'endpoint=topup,status=error': 3
  })
  t.same(series(samples, 'aihubmix_upstream_request_duration_seconds_count'), {
    'endpoint=token': 0,
    'endpoint=userinfo': 3,
    'endpoint=topup': 2,
    'endpoint=other': 1
  }, 'a message without a duration is counted but not timed')
  const logins = series(samples, 'aihubmix_logins_total')
  t.same(Object.keys(logins).sort(), ['ok', 'abandoned', 'other', ...LOGIN_ERROR_CODES].map((r) => `result=${r}`).sort())
  t.equal(logins['result=ok'], 1)
  t.equal(logins['result=other'], 1)
  t.same(series(samples, 'aihubmix_token_refreshes_total'), { 'result=ok': 0, 'result=rejected': 0, 'result=failed': 0 }, 'no refresher outcome, nothing counted')
})
