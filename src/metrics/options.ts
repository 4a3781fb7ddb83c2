import { Type } from '@sinclair/typebox'
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { MetricsOptionsError } from './errors.js'
import { firstOptionProblem } from './option-errors.js'
import type { AihubmixMetrics } from './metrics.js'

/** Buckets of `aihubmix_upstream_request_duration_seconds` (seconds): prom-client's defaults. */
export const DEFAULT_UPSTREAM_DURATION_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
/** Buckets of `aihubmix_refresh_lock_wait_seconds` (seconds), reaching past token-store's default `lockWaitMs`, so a wait that times out still lands in a bucket. */
export const DEFAULT_LOCK_WAIT_BUCKETS: readonly number[] = Object.freeze([0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 35])
export const DEFAULT_METRICS_PATH = '/metrics'

export interface MetricsOptions {
  /**
   * prom-client's process metrics (CPU, memory, heap, event-loop lag, GC, handles, file descriptors) in the same
   * registry. Default true.
   */
  defaultMetrics?: boolean | undefined
  /** Upper bounds (seconds, increasing) of `aihubmix_upstream_request_duration_seconds`. */
  upstreamDurationBuckets?: number[] | undefined
  /** Upper bounds (seconds, increasing) of `aihubmix_refresh_lock_wait_seconds`. */
  lockWaitBuckets?: number[] | undefined
}

export interface ResolvedMetricsOptions {
  readonly defaultMetrics: boolean
  readonly upstreamDurationBuckets: readonly number[]
  readonly lockWaitBuckets: readonly number[]
}

export interface MetricsRouteOptions {
  /** What to serve: the app's `fastify.aihubmixMetrics`. */
  metrics: AihubmixMetrics
  /** The route's path (under the scope's prefix). Default `/metrics`. */
  path?: string | undefined
}

export interface ResolvedMetricsRouteOptions {
  readonly metrics: AihubmixMetrics
  readonly path: string
}

const Buckets = (description: string): TSchema => Type.Optional(Type.Array(Type.Number({ exclusiveMinimum: 0, expected: 'a number of seconds above 0' }), { minItems: 1, maxItems: 64, description }))

/** The plugin's options (validated once, at registration, by resolveOptions). */
export const MetricsOptionsSchema = Type.Object({
  defaultMetrics: Type.Optional(Type.Boolean()),
  upstreamDurationBuckets: Buckets('upper bounds in seconds, increasing'),
  lockWaitBuckets: Buckets('upper bounds in seconds, increasing')
}, { additionalProperties: false })

/** The route plugin's options, but for `metrics` (an object with methods, checked by shape). */
export const MetricsRouteOptionsSchema = Type.Object({
  metrics: Type.Object({}, { description: 'the app\'s fastify.aihubmixMetrics' }),
  path: Type.Optional(Type.String({ pattern: '^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$', maxLength: 256, expected: 'a path like /metrics' }))
}, { additionalProperties: false })

const checkOptions = TypeCompiler.Compile(MetricsOptionsSchema)
const checkRouteOptions = TypeCompiler.Compile(MetricsRouteOptionsSchema)

/** Options Fastify's `register` may pass along that are not ours. */
const REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

/**
 * Validates the plugin's options once and returns a new, frozen object (the caller's is never mutated).
 * Throws MetricsOptionsError naming the bad option's path (`lockWaitBuckets[2]`, ...).
 */
export function resolveOptions (options: unknown): ResolvedMetricsOptions {
  const input = ours(options)
  const problem = checkOptions.Check(input) ? undefined : firstOptionProblem(checkOptions.Errors(input))
  if (problem !== undefined) throw new MetricsOptionsError(...problem)
  const o = input as MetricsOptions
  return Object.freeze({
    defaultMetrics: o.defaultMetrics ?? true,
    upstreamDurationBuckets: increasing(o.upstreamDurationBuckets, 'upstreamDurationBuckets') ?? DEFAULT_UPSTREAM_DURATION_BUCKETS,
    lockWaitBuckets: increasing(o.lockWaitBuckets, 'lockWaitBuckets') ?? DEFAULT_LOCK_WAIT_BUCKETS
  })
}

/** The same for the route plugin's options. */
export function resolveRouteOptions (options: unknown): ResolvedMetricsRouteOptions {
  const input = ours(options)
  if (input.metrics === undefined) {
    throw new MetricsOptionsError('metrics', 'is required (pass the app\'s fastify.aihubmixMetrics, once the metrics plugin is loaded there: ' +
      'after `await app.register(aihubmixMetrics)`, or in a plugin registered after it)')
  }
  const problem = checkRouteOptions.Check(input) ? undefined : firstOptionProblem(checkRouteOptions.Errors(input))
  if (problem !== undefined) throw new MetricsOptionsError(...problem)
  const o = input as unknown as MetricsRouteOptions
  if (typeof o.metrics.scrape !== 'function' || typeof o.metrics.contentType !== 'string') {
    throw new MetricsOptionsError('metrics', 'expected the app\'s fastify.aihubmixMetrics (an object with scrape() and contentType)')
  }
  return Object.freeze({ metrics: o.metrics, path: o.path ?? DEFAULT_METRICS_PATH })
}

function ours (options: unknown): Record<string, unknown> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new MetricsOptionsError('(options)', 'must be an object')
  }
  const input: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (!REGISTER_OPTIONS.has(key) && value !== undefined) input[key] = value
  }
  return input
}

/** A copy of a bucket list, frozen, after checking that it increases strictly (prom-client would sort it silently). */
function increasing (buckets: number[] | undefined, path: string): readonly number[] | undefined {
  if (buckets === undefined) return undefined
  for (let i = 1; i < buckets.length; i++) {
    if ((buckets[i] as number) <= (buckets[i - 1] as number)) {
      throw new MetricsOptionsError(`${path}[${i}]`, 'expected upper bounds that increase strictly')
    }
  }
  return Object.freeze([...buckets])
}
