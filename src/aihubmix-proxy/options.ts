import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Dispatcher } from 'undici'
import { ProxyOptionsError } from './errors.js'
import { firstOptionProblem } from './option-errors.js'

export const DEFAULT_SCOPE = ['profile', 'balance'] as const
export const DEFAULT_TIMEOUT_MS = 10_000
export const DEFAULT_REFRESH_GRACE_MS = 60_000
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024
export const DEFAULT_CONNECTIONS = 64
export const DEFAULT_PREFIX = '/api'
export const DEFAULT_ROUTES = { userInfo: '/user/info', topup: '/user/topup' } as const
export const DEFAULT_CSRF_HEADER = 'x-csrf'

const UrlString = Type.String({ minLength: 1, maxLength: 2048 })
const RoutePath = Type.String({ pattern: '^/[A-Za-z0-9._~!$&\'()*+,;=:@/-]*$', maxLength: 256, expected: 'a path starting with / (at most 256 URL path characters)' })

export const ProxyOptionsSchema = Type.Object({
  /** The provider's origin (optionally with a path prefix); endpoints live under `/api/oauth2/*`. */
  baseUrl: UrlString,
  clientId: Type.String({ minLength: 1, maxLength: 512 }),
  clientSecret: Type.String({ minLength: 1, maxLength: 2048 }),
  redirectUri: UrlString,
  scope: Type.Optional(Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$', expected: 'a scope name (printable ASCII, no space, quote or backslash)' }), { minItems: 1, maxItems: 32 })),
  /** Whole-call deadline for one provider request: from dispatch to the answer's last byte (exchange.ts). */
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
  /**
   * A refresh's answer is still read this long after `timeoutMs` failed its callers (0: torn down at `timeoutMs`):
   * the provider may have rotated the refresh token already, and the answer holds the only copy of the new one.
   */
  refreshGraceMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
  connectTimeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 600_000 })),
  maxBodyBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024 })),
  connections: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
  /** Route prefix of the browser-facing proxy routes. */
  prefix: Type.Optional(Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)*$', maxLength: 256, expected: 'a path prefix like /api (or empty), without a trailing /' })),
  routes: Type.Optional(Type.Union([
    Type.Literal(false),
    Type.Object({
      userInfo: Type.Optional(RoutePath),
      topup: Type.Optional(RoutePath)
    }, { additionalProperties: false })
  ])),
  /** Header the proxy routes require (value `1`): a custom header forces a CORS preflight. */
  csrfHeader: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', maxLength: 64, expected: 'a header name like x-csrf' })),
  /** Optional RFC 7009 revocation endpoint (the provider documents none). Called best-effort at logout. */
  revocationUrl: Type.Optional(UrlString),
  /** Allow an `http:` provider URL that is not loopback (never in production). */
  allowInsecureHttp: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

/**
 * `T` (a schema's `Static`) with `| undefined` on every optional property, nested ones too, as they are accepted at
 * run time: under `exactOptionalPropertyTypes`, `scope: env.AIHUBMIX_SCOPE?.split(' ')` compiles. Each property keeps its
 * documentation (a homomorphic mapped type). `Keep` are left as they are: `prefix` is also one of Fastify's own
 * `register()` options, whose type refuses undefined, so options typed with it would no longer fit `register()`.
 */
type UndefinedWhenOptional<T, Keep extends PropertyKey = never> = T extends (...args: never[]) => unknown
  ? T
  : T extends readonly unknown[]
    ? T
    : T extends object
      ? { [K in keyof T]: K extends Keep ? T[K] : {} extends Pick<T, K> ? UndefinedWhenOptional<T[K]> | undefined : UndefinedWhenOptional<T[K]> }
      : T

/**
 * What the plugin uses of a caller's dispatcher, and no more: its `dispatch()`, given a handler of undici's controller
 * interface (onRequestStart, onResponseStart, onResponseData, onResponseEnd, onResponseError: exchange.ts), which
 * undici 7 and 8 both speak. It never calls anything else on it, nor closes it. A shape rather than undici 7's
 * Dispatcher class, this package's own undici: undici 8's handler type changed the deprecated callbacks (onBodySent's
 * parameters), so TypeScript refused every undici 8 dispatcher that class was asked to stand for.
 */
type UndiciDispatcher = {
  dispatch (options: Dispatcher.DispatchOptions, handler: Pick<Dispatcher.DispatchHandler, 'onRequestStart' | 'onResponseStart' | 'onResponseData' | 'onResponseEnd' | 'onResponseError'>): boolean
}

export type ProxyOptionsInput = UndefinedWhenOptional<Static<typeof ProxyOptionsSchema>, 'prefix'> & {
  /** An undici dispatcher (undici 7 or 8) to use instead of the Pool the plugin creates (it is not closed by the plugin). */
  dispatcher?: UndiciDispatcher | undefined
}

export interface ResolvedProxyOptions {
  baseUrl: URL
  origin: string
  basePath: string
  clientId: string
  clientSecret: string
  redirectUri: string
  scope: string[]
  timeoutMs: number
  refreshGraceMs: number
  connectTimeoutMs: number
  maxBodyBytes: number
  connections: number
  prefix: string
  routes: false | { userInfo: string, topup: string }
  csrfHeader: string
  revocationUrl: URL | undefined
  dispatcher: Dispatcher | undefined
}

const checkOptions = TypeCompiler.Compile(ProxyOptionsSchema)

/** The properties of `o` that are not undefined: an option given as undefined is one left out. */
function definedOnly<T extends object> (o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> }
}

/**
 * What this process reaches on this machine whatever DNS answers: `localhost` exactly, 127.0.0.0/8 and ::1. Not
 * *.localhost: Node.js resolves those names through the system's resolver, which may ask network DNS, so a plain-http
 * call to one may leave the machine (browsers keep them local, which matters for the redirect URI only).
 */
export function isLoopbackHost (hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h)
}

/** What each URL option looks like, for the error that names a value without its scheme. */
const URL_EXAMPLES: Record<string, string> = {
  baseUrl: 'https://api.aihubmix.com',
  redirectUri: 'https://app.example/auth/callback',
  revocationUrl: 'https://api.aihubmix.com/api/oauth2/revoke'
}

function parseHttpUrl (value: string, path: string, allowInsecure: boolean): URL {
  // The URL parser drops spaces and control characters around a URL (and some inside it), so the URL would pass
  // here while the value sent went on holding them: a redirect URI of ` http://...` reached the provider as
  // `redirect_uri=+http...`, refused there. A copy-paste or a quoted env file value keeps them.
  if (value.trim() !== value || /^['"]|['"]$/.test(value)) {
    throw new ProxyOptionsError(`"${path}": has spaces, line breaks or quotes around it (a copy-paste, or quotes kept from an env file?): remove them, so that the value is the URL alone`)
  }
  // A host without its scheme (`api.aihubmix.com`, `127.0.0.1:4000`) is not a URL, or one whose scheme is the host.
  const absolute = `must be an absolute URL with its scheme, such as ${URL_EXAMPLES[path] ?? 'https://api.aihubmix.com'}${allowInsecure ? '' : ' (http:// only on loopback)'}`
  // Before the parser, whose refusal of `http://localhost:3000 /auth/callback` (a padded origin with a path after it)
  // would be said as "not an absolute URL".
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(value)) {
    throw new ProxyOptionsError(`"${path}": has spaces or control characters in it: remove them (or percent-encode them, a space as %20)`)
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ProxyOptionsError(`"${path}": ${absolute}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ProxyOptionsError(`"${path}": ${/^[a-z][a-z\d+.-]*:\/\//i.test(value) ? 'must be an http(s) URL' : absolute}`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new ProxyOptionsError(`"${path}": must not carry credentials`)
  }
  // The redirect URI is opened by the browser, which keeps *.localhost on this machine; the provider's URLs are called
  // from here.
  const localName = url.hostname.toLowerCase().endsWith('.localhost')
  if (url.protocol === 'http:' && !allowInsecure && !isLoopbackHost(url.hostname) && !(localName && path === 'redirectUri')) {
    const dns = localName ? ` (${url.hostname} is not: Node.js resolves *.localhost names through DNS, so the call may leave this machine)` : ''
    throw new ProxyOptionsError(`"${path}": must use https unless it is http://localhost or a loopback address${dns}: use https://, or http://localhost or http://127.0.0.1 for a server on this machine`)
  }
  return url
}

/**
 * A client id or secret as the provider issues them: printable ASCII without spaces, not in quotes (the rule of
 * `aihubmix-oauth doctor`'s AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET checks, in its words).
 */
function usableCredential (value: string): boolean {
  return /^[\x21-\x7e]+$/.test(value) && !/^['"]|['"]$/.test(value)
}

/** Validates once at registration; returns a new object and never mutates the input. */
export function resolveOptions (input: ProxyOptionsInput): ResolvedProxyOptions {
  if (input === null || typeof input !== 'object') {
    throw new ProxyOptionsError('"(options)": must be an object')
  }
  const { dispatcher, ...plain } = input
  const problem = checkOptions.Check(plain) ? undefined : firstOptionProblem(checkOptions.Errors(plain))
  if (problem !== undefined) throw new ProxyOptionsError(`"${problem[0]}": ${problem[1]}`)
  if (dispatcher !== undefined && (typeof dispatcher !== 'object' || dispatcher === null || typeof (dispatcher as { dispatch?: unknown }).dispatch !== 'function')) {
    throw new ProxyOptionsError('"dispatcher": must be an undici Dispatcher (with dispatch(), such as a Pool, an Agent or a MockAgent)')
  }
  // Kept from a Docker env_file or a Kubernetes secret (quotes), or a copy-paste (spaces, a line break): the provider
  // then refuses every sign-in with invalid_client, which says nothing of why. The value itself is never quoted.
  for (const name of ['clientId', 'clientSecret'] as const) {
    if (!usableCredential(plain[name])) {
      throw new ProxyOptionsError(`"${name}": contains spaces, quotes or control characters (a copy-paste error, or quotes kept from an env file?): ` +
        'remove them (the provider issues printable ASCII without spaces or quotes, and would refuse it as invalid_client)')
    }
  }
  // The client id goes to the browser in every sign-in URL: a secret given as the id would be in its address bar,
  // its history and the provider's logs (the same rule as `aihubmix-oauth doctor`'s; the value is never quoted).
  if (plain.clientId.startsWith('secret_') || plain.clientId === plain.clientSecret) {
    throw new ProxyOptionsError('"clientId": looks like the client secret (it starts with secret_, or equals clientSecret): are clientId and ' +
      'clientSecret swapped? The client id (client_...) goes to the browser in the sign-in URL; the secret must stay on the server')
  }
  const allowInsecure = plain.allowInsecureHttp === true
  const baseUrl = parseHttpUrl(plain.baseUrl, 'baseUrl', allowInsecure)
  if (baseUrl.search !== '' || baseUrl.hash !== '') {
    throw new ProxyOptionsError('"baseUrl": must not have a query or a fragment')
  }
  // The endpoints are <baseUrl>/api/oauth2/*: a base ending in /api (or the provider's AI API base, /v1) is the
  // provider's origin with a part of an endpoint's path, and every call would miss (404 at the provider).
  const wrongPath = /\/(api(\/oauth2)?|v1)\/*$/.exec(baseUrl.pathname)
  if (wrongPath !== null) {
    throw new ProxyOptionsError(`"baseUrl": ends in ${wrongPath[0].replace(/\/+$/, '')}, but the endpoints are <baseUrl>/api/oauth2/*, so ` +
      `every call would miss. Fix: the provider's origin without that path (${baseUrl.origin})`)
  }
  parseHttpUrl(plain.redirectUri, 'redirectUri', allowInsecure)
  // OAuth 2.0 forbids a fragment in a redirect URI (RFC 6749 3.1.2): the provider refuses the sign-in, or, were it
  // registered so, the code would come back after a # the browser never sends. Said at start, not at the first sign-in.
  if (plain.redirectUri.includes('#')) {
    throw new ProxyOptionsError(`"redirectUri": must not have a fragment (#...): OAuth 2.0 forbids one in a redirect URI. Fix: ${plain.redirectUri.slice(0, plain.redirectUri.indexOf('#'))}`)
  }
  const revocationUrl = plain.revocationUrl === undefined
    ? undefined
    : parseHttpUrl(plain.revocationUrl, 'revocationUrl', allowInsecure)
  if (plain.revocationUrl?.includes('#') === true) throw new ProxyOptionsError('"revocationUrl": must not have a fragment (#...)')
  const routes = plain.routes === false
    ? false
    : { ...DEFAULT_ROUTES, ...definedOnly(plain.routes ?? {}) }
  return {
    baseUrl,
    origin: baseUrl.origin,
    basePath: baseUrl.pathname.replace(/\/+$/, ''),
    clientId: plain.clientId,
    clientSecret: plain.clientSecret,
    redirectUri: plain.redirectUri,
    scope: [...(plain.scope ?? DEFAULT_SCOPE)],
    timeoutMs: plain.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    refreshGraceMs: plain.refreshGraceMs ?? DEFAULT_REFRESH_GRACE_MS,
    connectTimeoutMs: plain.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    maxBodyBytes: plain.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    connections: plain.connections ?? DEFAULT_CONNECTIONS,
    prefix: plain.prefix ?? DEFAULT_PREFIX,
    routes,
    // Header names are case-insensitive; Node gives them in lower case (`X-Team-CSRF` is `x-team-csrf`).
    csrfHeader: plain.csrfHeader?.toLowerCase() ?? DEFAULT_CSRF_HEADER,
    revocationUrl,
    // Typed as undici 7's Dispatcher inside (the plugin's own Pool is one), used as UndiciDispatcher above says: only
    // its dispatch() is called, with a controller handler (exchange.ts), and it is never closed (client.ts).
    dispatcher: dispatcher as Dispatcher | undefined
  }
}
