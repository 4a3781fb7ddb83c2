import t from 'tap'
import Fastify, { type FastifyError } from 'fastify'
import {
  InsufficientScopeError,
  CsrfHeaderRequiredError,
  ProxyOptionsError,
  TokenEndpointError,
  UpstreamBodyTooLargeError,
  UpstreamBusyError,
  UpstreamError,
  UpstreamInvalidResponseError,
  UpstreamStatusError,
  UpstreamTimeoutError,
  UpstreamUnauthorizedError,
  UpstreamUnreachableError,
  publicErrorOf,
  sendPublicError
} from '@fastify-aihubmix/aihubmix-proxy'
import { createAihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'
import {
  NoSessionError,
  ReauthRequiredError,
  RefreshBackoffError,
  RefreshBusyError,
  RefreshRejectedError,
  StoreUnavailableError,
  UnauthenticatedError
} from '@fastify-aihubmix/token-store'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'

// Errors come in families tested with `instanceof`: every failure of a call to the provider is an UpstreamError,
// whatever its own code and status, and the public `{error, message}` body of the proxy routes follows the family.
// The codes, statuses and bodies are the documented ones, exactly.

const cause = { cause: new Error('the provider said something') }

/** One of every upstream failure, with its own code and statusCode. */
const upstreamFailures: Array<[FastifyError, string, number]> = [
  [new UpstreamError(), 'FST_AIHUBMIX_BAD_GATEWAY', 502],
  [new UpstreamStatusError(500, cause), 'FST_AIHUBMIX_UPSTREAM_STATUS', 502],
  [new UpstreamInvalidResponseError('userinfo', cause), 'FST_AIHUBMIX_UPSTREAM_INVALID_RESPONSE', 502],
  [new UpstreamBodyTooLargeError(1024), 'FST_AIHUBMIX_UPSTREAM_BODY_TOO_LARGE', 502],
  [new UpstreamUnreachableError(cause), 'FST_AIHUBMIX_UPSTREAM_UNREACHABLE', 502],
  [new UpstreamUnauthorizedError(), 'FST_AIHUBMIX_UPSTREAM_UNAUTHORIZED', 502],
  [new UpstreamBusyError(429, 1000), 'FST_AIHUBMIX_UPSTREAM_BUSY', 503],
  [new UpstreamTimeoutError(10_000, cause), 'FST_AIHUBMIX_UPSTREAM_TIMEOUT', 504],
  [new TokenEndpointError('invalid_grant'), 'FST_AIHUBMIX_TOKEN_ENDPOINT', 502]
]

t.test('every failure of a call to the provider is an UpstreamError, with its own code and status', async (t) => {
  for (const [err, code, statusCode] of upstreamFailures) {
    t.ok(err instanceof UpstreamError, `${code} is an UpstreamError`)
    t.ok(err instanceof Error, `${code} is an Error`)
    t.match(err, { code, statusCode }, `${code}: ${statusCode}`)
  }
  const others: FastifyError[] = [
    new InsufficientScopeError(), new CsrfHeaderRequiredError(), new ProxyOptionsError('x'),
    new UnauthenticatedError(), new ReauthRequiredError(), new StoreUnavailableError(), new RefreshBusyError(),
    new RefreshBackoffError(10), new RefreshRejectedError(), new NoSessionError()
  ]
  for (const err of others) t.notOk(err instanceof UpstreamError, `${err.code} is not`)
  t.notOk(new UpstreamTimeoutError(1) instanceof UpstreamBusyError, 'siblings are not each other')
})

t.test('TokenEndpointError carries the OAuth error as a typed field, and keeps its cause', async (t) => {
  const err = new TokenEndpointError('invalid_client', cause)
  const oauthError: string = err.oauthError
  t.equal(oauthError, 'invalid_client')
  t.equal(err.message, "The AIHubMix token endpoint refused the request: invalid_client (check the clientId and clientSecret given to aihubmix-proxy: the app's credentials from AIHubMix, for this baseUrl)",
    'the app\'s own credentials refused: the message names what to check')
  t.equal(new TokenEndpointError('unauthorized_client').message, "The AIHubMix token endpoint refused the request: unauthorized_client (check the clientId and clientSecret given to aihubmix-proxy: the app's credentials from AIHubMix, for this baseUrl)")
  t.equal(err.cause, cause.cause)
  t.equal(new TokenEndpointError('invalid_grant').message, 'The AIHubMix token endpoint refused the request: invalid_grant', 'no cause, nothing appended')
  t.notOk('cause' in new TokenEndpointError('invalid_grant'))
  t.equal(new TokenEndpointError('invalid_grant').clientRefused, false, 'a refused grant is not a refused client')
})

t.test('the busy and backoff errors carry how long to wait as a typed field', async (t) => {
  const busy = new UpstreamBusyError(503, 2000)
  const wait: number | undefined = busy.retryAfterMs
  t.equal(wait, 2000)
  t.equal(busy.message, 'The AIHubMix provider is busy (HTTP 503); try again later')
  t.equal(new UpstreamBusyError(429).retryAfterMs, undefined, 'no Retry-After, no wait')
  t.equal(busy.upstreamStatus, 503, 'the provider\'s status')
  t.equal(busy.statusCode, 502, 'a 5xx of the provider\'s: a bad gateway')
  t.equal(new UpstreamBusyError(429).statusCode, 503, 'a 429: unavailable for now')
  const backoff = new RefreshBackoffError(1500, cause)
  const left: number = backoff.retryAfterMs
  t.equal(left, 1500)
  t.equal(backoff.cause, cause.cause)
  t.equal(new RefreshBackoffError(1).message, 'The last refresh of this session failed moments ago; it is retried shortly')
})

t.test('the client throws the family: a refused code is a TokenEndpointError, a refused refresh a RefreshRejectedError', async (t) => {
  const mock = await startMockProvider()
  t.teardown(() => mock.close())
  const app = mock.createApp({ name: 'families', redirectUri: 'http://127.0.0.1:1/auth/callback' })
  const client = createAihubmixClient(resolveOptions({ baseUrl: mock.url, clientId: app.clientId, clientSecret: app.clientSecret, redirectUri: app.redirectUri }))
  t.teardown(() => client.close())

  const refused = await client.exchangeCode({ code: 'not-a-code', codeVerifier: 'v'.repeat(43) }).then(() => undefined, (err: unknown) => err)
  t.ok(refused instanceof TokenEndpointError, 'a TokenEndpointError')
  t.ok(refused instanceof UpstreamError, 'of the upstream family')
  t.equal(refused instanceof TokenEndpointError ? refused.oauthError : undefined, 'invalid_grant')

  const rejected = await client.refresh('not-a-refresh-token').then(() => undefined, (err: unknown) => err)
  t.ok(rejected instanceof RefreshRejectedError, 'invalid_grant on refresh: rejected for good')
  t.ok(rejected instanceof RefreshRejectedError && rejected.cause instanceof TokenEndpointError, 'the token endpoint\'s refusal is the cause')

  mock.setFault('token', 'http503', { times: 1 })
  const busy = await client.refresh('not-a-refresh-token').then(() => undefined, (err: unknown) => err)
  t.ok(busy instanceof UpstreamBusyError && busy instanceof UpstreamError, 'a 503 is busy, of the upstream family')
  t.equal(busy instanceof UpstreamBusyError ? busy.retryAfterMs : undefined, 1000, 'with the provider\'s Retry-After: 1')
})

/** Each family's documented answer on the proxy routes. */
const publicAnswers: Array<[FastifyError, number, string, string]> = [
  [new UnauthenticatedError(), 401, 'unauthenticated', 'Sign in first.'],
  [new ReauthRequiredError(), 401, 'reauth_required', 'Access was revoked or has expired; sign in again.'],
  [new CsrfHeaderRequiredError(), 403, 'csrf_header_required', 'This route needs the header X-CSRF: 1.'],
  [new InsufficientScopeError(), 403, 'insufficient_scope', 'The user did not grant the permission this needs.'],
  [new UpstreamTimeoutError(10_000), 504, 'upstream_timeout', 'AIHubMix did not answer in time.'],
  [new UpstreamBusyError(429), 503, 'upstream_unavailable', 'AIHubMix is busy; try again shortly.'],
  [new UpstreamBusyError(503, 1000), 502, 'bad_gateway', 'AIHubMix gave an unusable answer.'],
  [new RefreshBackoffError(100), 503, 'upstream_unavailable', 'AIHubMix is busy; try again shortly.'],
  [new StoreUnavailableError(), 503, 'store_unavailable', 'Session storage is unavailable; try again shortly.'],
  [new RefreshBusyError(), 503, 'refresh_busy', 'Your session is being renewed; try again shortly.'],
  // The provider not reached at all (refused, reset, DNS): said so, not "an unusable answer".
  [new UpstreamUnreachableError(cause), 502, 'bad_gateway', 'AIHubMix could not be reached.'],
  ...upstreamFailures
    .filter(([err]) => !(err instanceof UpstreamBusyError) && !(err instanceof UpstreamTimeoutError) && !(err instanceof UpstreamUnreachableError))
    .map(([err]): [FastifyError, number, string, string] => [err, 502, 'bad_gateway', 'AIHubMix gave an unusable answer.']),
  [new RefreshRejectedError(), 401, 'bad_request', 'The request was not valid.'],
  [Object.assign(new Error('a route\'s own 404'), { code: 'X', statusCode: 404 }), 404, 'bad_request', 'The request was not valid.'],
  [new NoSessionError(), 500, 'internal_error', 'Something went wrong.'],
  [Object.assign(new Error('a bug'), { code: 'X' }), 500, 'internal_error', 'Something went wrong.']
]

t.test('publicErrorOf answers each family with its fixed body, and sendPublicError sends exactly that JSON', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  let current: FastifyError = new UpstreamError()
  app.get('/', async (_request, reply) => sendPublicError(reply, current))
  for (const [err, statusCode, error, message] of publicAnswers) {
    t.same(publicErrorOf(err), { statusCode, error, message }, `${err.code}: ${statusCode} ${error}`)
    current = err
    const res = await app.inject('/')
    t.equal(res.statusCode, statusCode)
    t.equal(res.headers['cache-control'], 'no-store')
    t.same(res.json(), { error, message }, `${err.code}: the body is {error, message} and nothing else`)
  }
  const first = publicErrorOf(new UnauthenticatedError())
  first.message = 'changed by a caller'
  t.equal(publicErrorOf(new UnauthenticatedError()).message, 'Sign in first.', 'each call answers a new object')
})

t.test('anything thrown, Error or not, maps to a documented body; an error handler passes Fastify\'s `unknown` as it is', async (t) => {
  for (const thrown of ['a string', undefined, null, 42, { statusCode: 404 }]) {
    t.same(publicErrorOf(thrown), { statusCode: 500, error: 'internal_error', message: 'Something went wrong.' }, `${String(thrown)}: internal_error`)
  }
  t.same(publicErrorOf(Object.assign(new Error('odd'), { statusCode: 404.5 })).error, 'internal_error', 'not an integer status: not a 4xx')
  t.same(publicErrorOf(new UnauthenticatedError()).error, 'unauthenticated')
  const app = Fastify()
  t.teardown(() => app.close())
  // The one-liner the README gives, as written: Fastify 5 types `err` as unknown.
  app.setErrorHandler((err, _request, reply) => sendPublicError(reply, err))
  app.get('/string', async () => { throw 'a string' }) // eslint-disable-line no-throw-literal
  app.get('/unauthenticated', async () => { throw new UnauthenticatedError() })
  t.same((await app.inject('/string')).json(), { error: 'internal_error', message: 'Something went wrong.' })
  const res = await app.inject('/unauthenticated')
  t.same([res.statusCode, res.json()], [401, { error: 'unauthenticated', message: 'Sign in first.' }])
})
