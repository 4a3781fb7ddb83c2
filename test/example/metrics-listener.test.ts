import t from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { request } from 'undici'
import fastifyCookie from '@fastify/cookie'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { LOGIN_ERROR_CODES } from '@fastify-aihubmix/oauth-routes'
import { main } from '../../example/server.js'
import { TestBrowser } from '../helpers/browser.js'
import { findLeaks } from '../helpers/stack.js'
import { parseSamples, series } from '../helpers/prometheus.js'
import { freePort } from '../helpers/free-port.js'

// Issue 19: with METRICS_PORT the example server (started as `npm start` starts
// it) serves Prometheus metrics on a listener of its own. After one sign-in, one failed sign-in, a few API calls,
// a forced refresh and a provider 500, the scraped counters say exactly that; the public port has no /metrics;
// nothing secret is in the scrape.

const CSRF = { 'x-csrf': '1' }

t.test('the metrics listener counts what happened, and only on its own port', async (t) => {
  const mock = await startMockProvider({ tokenPrefix: 'leakcanary' })
  t.teardown(() => mock.close())
  const [port, metricsPort] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${port}`
  const sessionSecret = randomBytes(32).toString('base64url')
  const demo = mock.createApp({ name: 'metrics test', redirectUri: `${url}/auth/callback` })
  const server = await main({
    ENV_FILE: join(tmpdir(), `no-such-env-file-${randomBytes(4).toString('hex')}`),
    PORT: String(port),
    PUBLIC_URL: url,
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: demo.clientId,
    AIHUBMIX_CLIENT_SECRET: demo.clientSecret,
    SESSION_SECRET: sessionSecret,
    METRICS_PORT: String(metricsPort),
    LOG_LEVEL: 'silent'
  })
  t.teardown(() => server.close())
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`

  // One sign-in.
  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  const done = await browser.get(TestBrowser.location(back))
  t.equal(done.status, 302)
  t.equal(new URL(TestBrowser.location(done)).pathname, '/', 'signed in')
  // One failed sign-in: a callback this browser never started.
  const stranger = new TestBrowser()
  const failed = await stranger.get(`${url}/auth/callback?code=code_x&state=${'s'.repeat(43)}`)
  t.equal(new URL(TestBrowser.location(failed)).search, '?error=invalid_state')
  // A few API calls.
  for (let i = 0; i < 3; i++) t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 200)
  // A forced refresh: the provider refuses the access token (401), the app refreshes once and retries.
  mock.expireAccessTokens()
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 200, 'after a refresh')
  // A provider 500.
  mock.setFault('userinfo', 'http500', { times: 1 })
  t.equal((await browser.get(`${url}/api/user/info`, CSRF)).status, 502)
  t.same(mock.counts().grants, { authorization_code: 1, refresh_token: 1 }, 'the provider saw one code exchange and one refresh')

  const res = await request(metricsUrl)
  const text = await res.body.text()
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const samples = parseSamples(text)

  t.same(series(samples, 'aihubmix_logins_total'), {
    ...Object.fromEntries(LOGIN_ERROR_CODES.map((code) => [`result=${code}`, 0])),
    'result=ok': 1,
    'result=abandoned': 0,
    'result=invalid_state': 1
  }, 'one sign-in, one invalid_state, every other result at 0')
  t.same(series(samples, 'aihubmix_token_refreshes_total'), { 'result=ok': 1, 'result=rejected': 0, 'result=failed': 0 })
  t.same(series(samples, 'aihubmix_upstream_requests_total'), {
    'endpoint=token,status=200': 2,
    'endpoint=userinfo,status=200': 5,
    'endpoint=userinfo,status=401': 1,
    'endpoint=userinfo,status=500': 1
  }, 'code exchange and refresh; the sign-in\'s profile, three calls, the refused one, its retry, the 500')
  t.same(series(samples, 'aihubmix_upstream_request_duration_seconds_count'), {
    'endpoint=token': 2,
    'endpoint=userinfo': 7,
    'endpoint=topup': 0
  })
  const sums = series(samples, 'aihubmix_upstream_request_duration_seconds_sum')
  t.ok((sums['endpoint=token'] as number) > 0 && (sums['endpoint=userinfo'] as number) > 0, 'durations are measured')
  t.same(series(samples, 'aihubmix_refresh_lock_wait_seconds_count'), { '': 1 }, 'one refresh flight waited for its lock')
  t.same(series(samples, 'aihubmix_store_errors_total'), { '': 0 })
  t.ok(samples.some((s) => s.name === 'process_cpu_user_seconds_total'), 'process metrics too')
  t.ok(samples.some((s) => s.name === 'nodejs_eventloop_lag_seconds'), 'event-loop lag too')

  const sid = fastifyCookie.unsign(decodeURIComponent(browser.cookies.get(url)?.get('sid') ?? ''), sessionSecret)
  t.ok(sid.valid, 'the test knows the session id it sweeps for')
  const issued = mock.issued()
  const secrets = [
    ...issued.accessTokens,
    ...issued.refreshTokens,
    ...issued.codes,
    demo.clientSecret,
    sessionSecret,
    sid.value as string,
    browser.cookies.get(url)?.get('sid') as string,
    mock.user.email as string
  ]
  t.ok(issued.refreshTokens.length >= 2, 'the sweep has rotated tokens to look for')
  t.same(findLeaks(secrets, [text]), [], 'no token, code, secret, session id or e-mail in the scrape')

  const publicMetrics = await request(`${url}/metrics`)
  t.equal(publicMetrics.statusCode, 404, 'the public port does not serve /metrics')
  t.notMatch(await publicMetrics.body.text(), /aihubmix_/)
  const elsewhere = await request(`http://127.0.0.1:${metricsPort}/api/user/info`, { headers: CSRF })
  t.equal(elsewhere.statusCode, 404, 'the metrics listener serves nothing of the app')
  await elsewhere.body.dump()
})
