import dc from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import type { AihubmixClient } from './client.js'
import { UpstreamTimeoutError } from './errors.js'

/**
 * What aihubmix-proxy tells `node:diagnostics_channel` (the README lists the channel and its payload): one span
 * per HTTP exchange with the provider, from sending the request until its body is read (or the exchange failed).
 *
 * Nothing is built or measured while the channel has no subscriber (`hasSubscribers` is read first, once per
 * call). The context holds the facts an operator needs and never a header, a body, a token or a code: the
 * endpoint by name (from a fixed set, never the URL), the HTTP status or why there is none, the duration. `client`
 * is the publishing client itself (`fastify.aihubmix`), so that a subscriber can tell the apps of one process
 * apart by identity.
 */

/** TracingChannel of one provider call. */
export const UPSTREAM_CHANNEL = 'aihubmix:upstream'

export type UpstreamEndpoint = 'token' | 'userinfo' | 'topup'

/**
 * The HTTP status of the answer, or why there is none: `timeout` (no whole answer within timeoutMs), `aborted` (the
 * browser went away and the call was cancelled), `error` (refused or reset connection, an answer over the size
 * limit, ...).
 */
export type UpstreamStatus = number | 'timeout' | 'aborted' | 'error'

/**
 * The context object of `tracing:aihubmix:upstream:*`. `status` and `durationMs` are set before `asyncEnd`.
 * A status is what the provider answered, not whether the answer was usable: a 200 with a body that fails the
 * schema is `200` here and an UpstreamInvalidResponseError to the caller. Node's TracingChannel adds `error` when
 * the exchange itself failed (UpstreamTimeoutError, UpstreamUnreachableError, UpstreamBodyTooLargeError, an
 * AbortError), as Node's TracingChannel does; there is never a `result` (the answer is never put on the context).
 */
export interface UpstreamTraceContext {
  readonly client: AihubmixClient
  readonly endpoint: UpstreamEndpoint
  readonly method: 'GET' | 'POST'
  /** Token endpoint only: which grant was asked for (undefined for the other endpoints). */
  readonly grant: 'authorization_code' | 'refresh_token' | undefined
  status?: UpstreamStatus
  durationMs?: number
  error?: unknown
}

const upstreamChannel = dc.tracingChannel(UPSTREAM_CHANNEL)

/** Whether anyone listens: the client builds a context only then. */
export function upstreamTraced (): boolean {
  return upstreamChannel.hasSubscribers
}

/**
 * Runs one exchange as a span of `aihubmix:upstream`: what `TracingChannel.tracePromise` does (the exchange runs
 * inside `start.runStores`, so stores bound to the start channel are current in it; then `end`; once it settles
 * `error` when it failed, `asyncStart`, `asyncEnd`), written out so that the answer goes to the caller and never
 * onto the context, with one promise and two closures per call instead of tracePromise's and a wrapper's.
 * `exchange` is an async function: it never throws synchronously.
 */
export function traceUpstream<T extends { statusCode: number }> (context: UpstreamTraceContext, exchange: () => Promise<T>): Promise<T> {
  const { start, end, asyncStart, asyncEnd, error } = upstreamChannel
  const started = performance.now()
  return start.runStores(context, () => {
    try {
      return exchange().then((answer) => {
        context.status = answer.statusCode
        context.durationMs = performance.now() - started
        asyncStart.publish(context)
        asyncEnd.publish(context)
        return answer
      }, (err: unknown) => {
        context.status = statusOfFailure(err)
        context.durationMs = performance.now() - started
        context.error = err
        error.publish(context)
        asyncStart.publish(context)
        asyncEnd.publish(context)
        throw err
      })
    } finally {
      end.publish(context)
    }
  })
}

function statusOfFailure (err: unknown): UpstreamStatus {
  if (err instanceof UpstreamTimeoutError) return 'timeout'
  if ((err as { name?: unknown } | null)?.name === 'AbortError') return 'aborted'
  return 'error'
}

/** The grant of a token-endpoint form body, from the fixed set (anything else: undefined). */
export function grantOf (body: string | undefined): UpstreamTraceContext['grant'] {
  const grant = body === undefined ? null : new URLSearchParams(body).get('grant_type')
  return grant === 'authorization_code' || grant === 'refresh_token' ? grant : undefined
}
