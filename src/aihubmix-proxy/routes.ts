import type { ServerResponse } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { ResolvedProxyOptions } from './options.js'
import {
  ReauthRequiredError,
  RefreshBackoffError,
  RefreshBusyError,
  StoreUnavailableError,
  UnauthenticatedError,
  errorLogFields
} from '@fastify-aihubmix/token-store'
import {
  CsrfHeaderRequiredError,
  InsufficientScopeError,
  UpstreamBusyError,
  UpstreamError,
  UpstreamTimeoutError,
  UpstreamUnreachableError
} from './errors.js'
import { ErrorReplySchema, TopupReplySchema, UserInfoReplySchema } from './schemas.js'
import type { AihubmixClient, UpstreamSignal } from './client.js'
import type { CallAsUser } from './call-as-user.js'

export interface PublicError {
  statusCode: number
  error: string
  message: string
}

/** Any error class: only `instanceof` is used. */
type ErrorFamily = abstract new (...args: never) => Error

/** Matches an error of one of these families. */
function anyOf (...families: ErrorFamily[]): (err: Error) => boolean {
  return (err) => families.some((family) => err instanceof family)
}

/**
 * The public answer of each error family, first match wins: a child (UpstreamTimeoutError, UpstreamBusyError)
 * comes before its parent (UpstreamError, whose every other child is a bad gateway). A provider's 503 is busy
 * (token-store backs off by its Retry-After) but answers as every 5xx of the provider's does: 502 bad_gateway.
 */
const PUBLIC_ERRORS: ReadonlyArray<readonly [(err: Error) => boolean, Readonly<PublicError>]> = [
  [anyOf(UnauthenticatedError), { statusCode: 401, error: 'unauthenticated', message: 'Sign in first.' }],
  [anyOf(ReauthRequiredError), { statusCode: 401, error: 'reauth_required', message: 'Access was revoked or has expired; sign in again.' }],
  [anyOf(CsrfHeaderRequiredError), { statusCode: 403, error: 'csrf_header_required', message: 'This route needs the header X-CSRF: 1.' }],
  [anyOf(InsufficientScopeError), { statusCode: 403, error: 'insufficient_scope', message: 'The user did not grant the permission this needs.' }],
  [anyOf(UpstreamTimeoutError), { statusCode: 504, error: 'upstream_timeout', message: 'AIHubMix did not answer in time.' }],
  [(err) => (err instanceof UpstreamBusyError && err.upstreamStatus < 500) || err instanceof RefreshBackoffError, { statusCode: 503, error: 'upstream_unavailable', message: 'AIHubMix is busy; try again shortly.' }],
  [anyOf(StoreUnavailableError), { statusCode: 503, error: 'store_unavailable', message: 'Session storage is unavailable; try again shortly.' }],
  [anyOf(RefreshBusyError), { statusCode: 503, error: 'refresh_busy', message: 'Your session is being renewed; try again shortly.' }],
  [anyOf(UpstreamUnreachableError), { statusCode: 502, error: 'bad_gateway', message: 'AIHubMix could not be reached.' }],
  [anyOf(UpstreamError), { statusCode: 502, error: 'bad_gateway', message: 'AIHubMix gave an unusable answer.' }]
]

/**
 * Maps anything thrown to the documented JSON error: a fixed code and a fixed message per family (it takes
 * `unknown`, as Fastify types an error handler's error). Nothing of the provider's answer, nor of the error's
 * cause, leaks.
 */
export function publicErrorOf (err: unknown): PublicError {
  if (!(err instanceof Error)) return { ...INTERNAL_ERROR }
  for (const [matches, pub] of PUBLIC_ERRORS) {
    if (matches(err)) {
      // The CSRF header the route asked for, as configured (its message names it).
      return err instanceof CsrfHeaderRequiredError ? { ...pub, message: `${err.message}.` } : { ...pub }
    }
  }
  const status = (err as Partial<FastifyError>).statusCode
  // A rate limit of the app's own (@fastify/rate-limit on the sign-in routes): its Retry-After header is already set.
  if (status === 429) return { ...TOO_MANY_REQUESTS }
  if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status < 500) {
    return { statusCode: status, error: 'bad_request', message: 'The request was not valid.' }
  }
  return { ...INTERNAL_ERROR }
}

const INTERNAL_ERROR: Readonly<PublicError> = { statusCode: 500, error: 'internal_error', message: 'Something went wrong.' }
const TOO_MANY_REQUESTS: Readonly<PublicError> = { statusCode: 429, error: 'too_many_requests', message: 'Too many requests; try again later.' }

/** Sends publicErrorOf(err) with `Cache-Control: no-store`: `app.setErrorHandler((err, request, reply) => sendPublicError(reply, err))`. */
export function sendPublicError (reply: FastifyReply, err: unknown): FastifyReply {
  const pub = publicErrorOf(err)
  return reply.code(pub.statusCode).header('cache-control', 'no-store').send({ error: pub.error, message: pub.message })
}

/** Where a response keeps the signal of its upstream call (one shared `close` listener reads it). */
const kClientGone = Symbol('aihubmix-proxy.clientGone')

type AbortListener = () => void

/**
 * The signal of one proxied request: `aborted`, and the `once`/`on`/`removeListener` of an EventEmitter signal, for
 * the one listener the upstream call (exchange.ts) adds. An AbortController per request is an EventTarget, with a
 * listener added and removed on it on every call, and a full EventEmitter has its own init, `once` wrapper and
 * listener bookkeeping: both showed in the route's CPU profile, where this object with one slot does not.
 */
class ClientGoneSignal {
  aborted = false
  #listener: AbortListener | undefined = undefined

  on (event: string, listener: AbortListener): this {
    if (event === 'abort') this.#listener = listener
    return this
  }

  once (event: string, listener: AbortListener): this {
    return this.on(event, listener)
  }

  addListener (event: string, listener: AbortListener): this {
    return this.on(event, listener)
  }

  removeListener (event: string, listener: AbortListener): this {
    if (event === 'abort' && this.#listener === listener) this.#listener = undefined
    return this
  }

  off (event: string, listener: AbortListener): this {
    return this.removeListener(event, listener)
  }

  abort (): void {
    if (this.aborted) return
    this.aborted = true
    const listener = this.#listener
    this.#listener = undefined
    listener?.()
  }
}

/** `close` of a response (`this`): the browser went away before the answer was written. Shared, no closure per request. */
function onResponseClose (this: ServerResponse & { [kClientGone]?: ClientGoneSignal }): void {
  if (!this.writableFinished) this[kClientGone]?.abort()
}

/**
 * A signal that aborts the upstream call when the browser disconnects before the
 * answer is written, so an abandoned request does not hold a pooled connection.
 * (A refresh in flight is never aborted: other requests may be waiting on it.)
 */
function abortOnClientGone (reply: FastifyReply): UpstreamSignal {
  const signal = new ClientGoneSignal()
  const res = reply.raw as ServerResponse & { [kClientGone]?: ClientGoneSignal }
  res[kClientGone] = signal
  res.on('close', onResponseClose)
  return signal
}

const errorResponses = {
  401: ErrorReplySchema,
  403: ErrorReplySchema,
  502: ErrorReplySchema,
  503: ErrorReplySchema,
  504: ErrorReplySchema
}

/** At most one warning per this many ms about requests that failed because the token store is unavailable. */
const STORE_OUTAGE_LOG_INTERVAL_MS = 10_000

/**
 * Which level a request failed by a store outage is logged at: warn for the first in STORE_OUTAGE_LOG_INTERVAL_MS
 * (`more()` then says how many went to debug since the last warning), debug for the others. (oauth-routes' routes
 count theirs apart.)
 */
function outageLog (): { level: () => 'warn' | 'debug', more: () => string } {
  let warnedAt = -Infinity
  let quiet = 0
  let told = 0
  return {
    level () {
      const now = Date.now()
      if (now - warnedAt < STORE_OUTAGE_LOG_INTERVAL_MS) {
        quiet++
        return 'debug'
      }
      warnedAt = now
      told = quiet
      quiet = 0
      return 'warn'
    },
    more () {
      return told === 0 ? '' : ` (${told} more at debug since the last warning)`
    }
  }
}

/** The browser-facing proxy routes, encapsulated under `options.prefix`. */
export async function proxyRoutes (
  fastify: FastifyInstance,
  opts: { options: ResolvedProxyOptions, client: AihubmixClient, callAsUser: CallAsUser }
): Promise<void> {
  const { options, client, callAsUser } = opts
  const routes = options.routes
  if (routes === false) return
  const csrfHeader = options.csrfHeader

  // Every method of every route here: a custom header forces a CORS preflight
  // that no foreign origin passes (forms and text/plain posts included).
  // A callback hook, not an async one: no promise and no extra tick per request on the hot path.
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    reply.header('cache-control', 'no-store')
    reply.header('x-content-type-options', 'nosniff')
    if (request.headers[csrfHeader] !== '1') done(new CsrfHeaderRequiredError(csrfHeader))
    else done()
  })

  const storeOutage = outageLog()
  fastify.setErrorHandler(async (err: FastifyError, request, reply) => {
    const pub = publicErrorOf(err)
    if (err.name === 'AbortError' && reply.raw.destroyed) {
      // The browser went away and its upstream call was cancelled: nobody to answer.
      return reply.code(499).send()
    }
    if (pub.statusCode >= 500) {
      // With a store error's cause (Redis full, refused, timed out): hundreds of 503 lines without it never said why.
      // A store outage fails every request that needs the store (about 500 lines per instance in a 4 s Redis restart,
      // an operator review found): one warning per STORE_OUTAGE_LOG_INTERVAL_MS, the others at debug.
      const outage = err instanceof StoreUnavailableError
      const level = outage ? storeOutage.level() : 'warn'
      request.log[level]({ error: errorLogFields(err) }, `aihubmix proxy error${outage && level === 'warn' ? storeOutage.more() : ''}`)
    }
    return sendPublicError(reply, err)
  })

  // Everything under the prefix answers JSON and needs the header, unknown routes included. Without a prefix, every
  // unknown path of the app would be "under" it (a page's /favicon.ico answered 403, and an app's own not-found
  // handler could not be set): the app's not-found handling stays the app's.
  if (options.prefix !== '') {
    fastify.setNotFoundHandler(async (_request, reply) => {
      return reply.code(404).send({ error: 'not_found', message: 'No such route.' })
    })
  }

  // Typed from the schemas: a handler whose answer is not the 200 schema's shape does not compile. At run time
  // this is `fastify` itself (the type provider is types only), and the response schemas were already there.
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  app.get(routes.userInfo, {
    schema: { response: { 200: UserInfoReplySchema, ...errorResponses } }
  }, (request, reply) => callAsUser(request, client.userinfo, abortOnClientGone(reply)))

  app.get(routes.topup, {
    schema: { response: { 200: TopupReplySchema, ...errorResponses } }
  }, (request, reply) => callAsUser(request, client.topup, abortOnClientGone(reply)))
}
