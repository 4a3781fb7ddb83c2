/**
 * Type tests for @fastify-aihubmix/metrics: checked by `npx tsc -p test/tsconfig.json` (part of `npm test`; a
 * `@ts-expect-error` that stops erroring fails the type check). The run-time part registers the plugins with the
 * typed options, so the file also proves they run.
 */
import t from 'tap'
import Fastify from 'fastify'
import type { Registry } from 'prom-client'
import tokenStore, { type RefreshTraceContext, type RefreshLockWaitMessage, type StoreErrorMessage } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { type UpstreamTraceContext } from '@fastify-aihubmix/aihubmix-proxy'
import type { LoginMessage, LoginOutcome } from '@fastify-aihubmix/oauth-routes'
import aihubmixMetrics, { metricsRoute, type AihubmixMetrics, type MetricsOptions, type MetricsRouteOptions } from '@fastify-aihubmix/metrics'

const options: MetricsOptions = { defaultMetrics: false, upstreamDurationBuckets: [0.1, 1], lockWaitBuckets: [1, 10] }
const empty: MetricsOptions = {}
// @ts-expect-error defaultMetrics is a boolean
const badDefault: MetricsOptions = { defaultMetrics: 'no' }
// @ts-expect-error buckets are numbers
const badBuckets: MetricsOptions = { lockWaitBuckets: ['1s'] }
// @ts-expect-error there is no such option
const unknown: MetricsOptions = { prefix: 'my_' }
// @ts-expect-error the route plugin needs the app's metrics
const noMetrics: MetricsRouteOptions = { path: '/metrics' }

// The channels' payloads are typed for subscribers.
const outcome: LoginOutcome = 'access_denied'
// @ts-expect-error a login outcome is ok or a login error code
const badOutcome: LoginOutcome = 'maybe'
function onUpstream (context: UpstreamTraceContext): string {
  return `${context.endpoint} ${String(context.status)} ${context.durationMs ?? 0}`
}
function onRefresh (context: RefreshTraceContext): string | undefined {
  return context.outcome
}
function readOnly (metrics: AihubmixMetrics, other: Registry): void {
  // @ts-expect-error the decorator's registry is read-only (frozen at run time too)
  metrics.registry = other
}
function onOthers (wait: RefreshLockWaitMessage, failure: StoreErrorMessage, login: LoginMessage): number {
  return wait.waitMs + failure.command.length + login.outcome.length
}

t.test('the metrics plugin registers with typed options and exposes typed decorators', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: 'p'.repeat(32) })
  await app.register(aihubmixProxy, { baseUrl: 'https://aihubmix.example', clientId: 'client_x', clientSecret: 'secret_x', redirectUri: 'https://app.example/auth/callback' })
  await app.register(aihubmixMetrics, options)
  await app.ready()
  const metrics: AihubmixMetrics = app.aihubmixMetrics
  const registry: Registry = metrics.registry
  t.ok(registry !== undefined)
  const text: string = await metrics.scrape()
  const admin = Fastify()
  t.teardown(() => admin.close())
  const route: MetricsRouteOptions = { metrics, path: '/metrics' }
  await admin.register(metricsRoute, route)
  t.match(text, /aihubmix_logins_total/)
  t.same([empty, badDefault, badBuckets, unknown, noMetrics, outcome, badOutcome].length, 7)
  t.same([typeof onUpstream, typeof onRefresh, typeof onOthers, typeof readOnly], ['function', 'function', 'function', 'function'])
  t.ok(Object.isFrozen(app.aihubmixMetrics))
})
