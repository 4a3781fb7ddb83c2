import dc from 'node:diagnostics_channel'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import {
  REFRESH_CHANNEL,
  REFRESH_LOCK_WAIT_CHANNEL,
  STORE_ERROR_CHANNEL,
  type RefreshLockWaitMessage,
  type RefreshTraceContext,
  type StoreErrorMessage,
  type TokenStore
} from '@fastify-aihubmix/token-store'
import { UPSTREAM_CHANNEL, type AihubmixClient, type UpstreamTraceContext } from '@fastify-aihubmix/aihubmix-proxy'
import { LOGIN_CHANNEL, LOGIN_ERROR_CODES, type LoginMessage } from '@fastify-aihubmix/oauth-routes'
import type { ResolvedMetricsOptions } from './options.js'
import { UpstreamMetrics } from './upstream-metrics.js'

/** The metric names: part of the public interface (dashboards and alerts use them), so they do not change. */
export const METRIC_NAMES = Object.freeze({
  logins: 'aihubmix_logins_total',
  refreshes: 'aihubmix_token_refreshes_total',
  upstreamRequests: 'aihubmix_upstream_requests_total',
  upstreamDuration: 'aihubmix_upstream_request_duration_seconds',
  lockWait: 'aihubmix_refresh_lock_wait_seconds',
  storeErrors: 'aihubmix_store_errors_total'
})

/** The app's metrics (`fastify.aihubmixMetrics`). */
export interface AihubmixMetrics {
  /** This app's own prom-client registry: the metrics above, the process metrics unless turned off, and any of yours. */
  readonly registry: Registry
  /** The registry in the Prometheus text format. */
  scrape (): Promise<string>
  /** The Content-Type of what `scrape()` gives. */
  readonly contentType: string
}

/** Label values, each from a fixed set: nothing a user sends or the provider answers becomes a label. */
const ENDPOINTS = new Set(['token', 'userinfo', 'topup'])
const LOGIN_RESULTS = new Set<string>(['ok', 'abandoned', ...LOGIN_ERROR_CODES])
const REFRESH_RESULTS = ['ok', 'rejected', 'failed'] as const
const REFRESH_RESULT_SET = new Set<unknown>(REFRESH_RESULTS)

/** `200`, ..., `599`, or `timeout`, `aborted`, `error` (anything else is `error`). */
function statusLabel (status: unknown): string {
  if (typeof status === 'number') return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : 'error'
  return status === 'timeout' || status === 'aborted' ? status : 'error'
}

export interface MetricsSources {
  /** The app's token store: messages of other stores (other apps in this process) are not counted. */
  store: TokenStore
  /** The app's provider client: the same for provider calls and sign-ins. */
  client: AihubmixClient
}

/**
 * Keeps one app's metrics, from the plugins' diagnostics channels.
 *
 * Channels are process-wide: every app of the process publishes on the same ones. Each message names the object
 * that published it (`store`: the TokenStore, `client`: the provider client), and only messages of this app's
 * own decorators are counted, into a registry of its own, so two apps in one process never see each other's
 * numbers. The handlers run synchronously inside the publishing call: each does one identity check, one counter
 * increment and at most one histogram observation. Label values come from fixed sets (an unknown value is
 * counted as `other` or `error`), so a series can only be one of a known few.
 */
export function createMetrics (sources: MetricsSources, options: ResolvedMetricsOptions): { metrics: AihubmixMetrics, close: () => void } {
  const { store, client } = sources
  const registry = new Registry()
  const registers = [registry]

  const logins = new Counter({
    name: METRIC_NAMES.logins,
    help: 'Sign-ins that ended, by result: ok, or the login error code the browser was sent back with.',
    labelNames: ['result'],
    registers
  })
  const refreshes = new Counter({
    name: METRIC_NAMES.refreshes,
    help: 'Refresh-token grants asked of the provider, by result: ok, rejected (the refresh token was refused for good), failed (transient).',
    labelNames: ['result'],
    registers
  })
  // The two that move on every proxied request: kept without prom-client's per-observation work (upstream-metrics.ts).
  const upstream = new UpstreamMetrics(registry, { requests: METRIC_NAMES.upstreamRequests, duration: METRIC_NAMES.upstreamDuration }, options.upstreamDurationBuckets, ENDPOINTS)
  const lockWait = new Histogram({
    name: METRIC_NAMES.lockWait,
    help: 'Time a refresh waited for its session\'s refresh lock (held by a refresh of another request or instance).',
    buckets: [...options.lockWaitBuckets],
    registers
  })
  const storeErrors = new Counter({
    name: METRIC_NAMES.storeErrors,
    help: 'Store (Redis) commands that failed or did not answer in time.',
    registers
  })
  // Every series of a fixed label set exists from the start (at 0), so that rate() and alerts see it before the
  // first event.
  for (const result of LOGIN_RESULTS) logins.inc({ result }, 0)
  for (const result of REFRESH_RESULTS) refreshes.inc({ result }, 0)
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry })

  const onUpstream = (message: unknown): void => {
    const context = message as UpstreamTraceContext
    if (context.client !== client) return
    upstream.record(ENDPOINTS.has(context.endpoint) ? context.endpoint : 'other', statusLabel(context.status), typeof context.durationMs === 'number' ? context.durationMs / 1000 : undefined)
  }
  const onRefresh = (message: unknown): void => {
    const context = message as RefreshTraceContext
    if (context.store !== store || !REFRESH_RESULT_SET.has(context.outcome)) return
    refreshes.inc({ result: context.outcome as string })
  }
  const onLockWait = (message: unknown): void => {
    const wait = message as RefreshLockWaitMessage
    if (wait.store !== store || typeof wait.waitMs !== 'number') return
    lockWait.observe(wait.waitMs / 1000)
  }
  const onStoreError = (message: unknown): void => {
    if ((message as StoreErrorMessage).store !== store) return
    storeErrors.inc()
  }
  const onLogin = (message: unknown): void => {
    const login = message as LoginMessage
    if (login.client !== client) return
    logins.inc({ result: LOGIN_RESULTS.has(login.outcome) ? login.outcome : 'other' })
  }

  // The tracing channels' asyncEnd: published once per span, after its outcome and duration are set.
  const subscriptions: Array<[dc.Channel, (message: unknown) => void]> = [
    [dc.tracingChannel(UPSTREAM_CHANNEL).asyncEnd, onUpstream],
    [dc.tracingChannel(REFRESH_CHANNEL).asyncEnd, onRefresh],
    [dc.channel(REFRESH_LOCK_WAIT_CHANNEL), onLockWait],
    [dc.channel(STORE_ERROR_CHANNEL), onStoreError],
    [dc.channel(LOGIN_CHANNEL), onLogin]
  ]
  for (const [channel, handler] of subscriptions) channel.subscribe(handler)

  const metrics: AihubmixMetrics = Object.freeze({
    registry,
    contentType: registry.contentType,
    scrape: () => registry.metrics()
  })
  return {
    metrics,
    close () {
      for (const [channel, handler] of subscriptions) channel.unsubscribe(handler)
    }
  }
}
