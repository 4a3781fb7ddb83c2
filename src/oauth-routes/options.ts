import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FastifyRequest } from 'fastify'
import type { UserInfo } from '@fastify-aihubmix/aihubmix-proxy'
import { OAuthRoutesOptionsError } from './errors.js'
import { firstOptionProblem } from './option-errors.js'
import { safeReturnTo } from './return-to.js'

const LOCAL_PATH_PATTERN = '^/(?![/\\\\])'
const LOCAL_PATH_EXPECTED = 'a path of this app like / (not //host, nor /\\host)'

export const DEFAULT_PREFIX = '/auth'
export const DEFAULT_ROUTES = { login: '/login', callback: '/callback', logout: '/logout', session: '/session', sessions: '/sessions' } as const
export const DEFAULT_STATE_TTL_MS = 10 * 60 * 1000
export const DEFAULT_ERROR_PATH = '/'
export const DEFAULT_RETURN_TO = '/'
export const DEFAULT_COOKIE_NAME = 'sessionId'
export const DEFAULT_CSRF_HEADER = 'x-csrf'
export const DEFAULT_IDLE_TIMEOUT_MS = 24 * 60 * 60 * 1000
export const DEFAULT_ABSOLUTE_TIMEOUT_MS = 7 * 24 * 60 * 60 * 1000

const RoutePath = Type.String({ pattern: '^/[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*$', maxLength: 256, expected: 'a path like /login (letters, digits and ._~-)' })

export const OAuthRoutesOptionsSchema = Type.Object({
  /** The origin users see (e.g. `https://app.example.com`): postMessage target and cookie security come from it, never from Host headers. */
  publicUrl: Type.String({ minLength: 1, maxLength: 2048 }),
  prefix: Type.Optional(Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)*$', maxLength: 256, expected: 'a path prefix like /auth (or empty), without a trailing /' })),
  routes: Type.Optional(Type.Object({
    login: Type.Optional(RoutePath),
    callback: Type.Optional(RoutePath),
    logout: Type.Optional(RoutePath),
    session: Type.Optional(RoutePath),
    /** The user's sessions: `GET <sessions>`, `DELETE <sessions>/:id`. */
    sessions: Type.Optional(RoutePath)
  }, { additionalProperties: false })),
  /** Path a failed login redirects to, with `?error=<code>`. */
  // A path of this app: one `/`, then anything but a second `/` or a backslash (`//host`, `/\\host` leave the origin);
  // resolveOptions also runs returnTo's own check on it (dot segments, spaces, control characters).
  errorPath: Type.Optional(Type.String({ pattern: LOCAL_PATH_PATTERN, maxLength: 256, expected: LOCAL_PATH_EXPECTED })),
  defaultReturnTo: Type.Optional(Type.String({ pattern: LOCAL_PATH_PATTERN, maxLength: 256, expected: LOCAL_PATH_EXPECTED })),
  stateTtlMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 60 * 60 * 1000 })),
  /** Ask the provider for one-click login (`auto_authorize=true`). */
  autoAuthorize: Type.Optional(Type.Boolean()),
  /** The provider's issuer identifier for RFC 9207 `iss` checks; defaults to the provider's origin. */
  issuer: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  /** Name of @fastify/session's cookie, so logout clears it with the same attributes. */
  cookieName: Type.Optional(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$', maxLength: 128, expected: 'a cookie name (letters, digits and !#$%&\'*+-.^_`|~)' })),
  csrfHeader: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$', maxLength: 64, expected: 'a header name like x-csrf' })),
  /** A signed-in session unused for this long ends (server-side timestamp, checked on every request). */
  idleTimeoutMs: Type.Optional(Type.Integer({ minimum: 1000 })),
  /** A signed-in session ends this long after login, however active. */
  absoluteTimeoutMs: Type.Optional(Type.Integer({ minimum: 1000 })),
  /**
   * No longer changes anything: every sign-in fetches the user's profile (its `id` indexes the session), and
   * `onLogin` always gets it. Still accepted, so that existing configurations keep starting.
   */
  fetchUserInfoOnLogin: Type.Optional(Type.Boolean()),
  /**
   * Refuse to start when aihubmix-proxy's `redirectUri` is not this plugin's callback route (default true).
   * Turn it off only behind a proxy that rewrites paths.
   */
  checkRedirectUri: Type.Optional(Type.Boolean()),
  /** Typed below (OAuthRoutesOptions); in the schema so that a misspelt hook is named and a wrong one said like any option. */
  onLogin: Type.Optional(Type.Function([Type.Any()], Type.Any())),
  onLogout: Type.Optional(Type.Function([Type.Any()], Type.Any()))
}, { additionalProperties: false })

export interface LoginEvent {
  request: FastifyRequest
  /** The provider's userinfo (a sign-in whose userinfo fails does not happen: it fails with `userinfo_failed`). */
  userinfo: UserInfo
  scope: string[]
}
export interface LogoutEvent {
  request: FastifyRequest
}

/**
 * `T` (a schema's `Static`) with `| undefined` on every optional property, nested ones too, as they are accepted at
 * run time: under `exactOptionalPropertyTypes`, `cookieName: env.COOKIE` compiles. Each property keeps its
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

export type OAuthRoutesOptions = UndefinedWhenOptional<Omit<Static<typeof OAuthRoutesOptionsSchema>, 'onLogin' | 'onLogout'>, 'prefix'> & {
  /** Called after a successful login, before the redirect. Errors are logged, never break the login. */
  onLogin?: ((event: LoginEvent) => void | Promise<void>) | undefined
  /** Called on logout, before the session is destroyed. Errors are logged. */
  onLogout?: ((event: LogoutEvent) => void | Promise<void>) | undefined
}

export interface ResolvedOAuthRoutesOptions {
  publicOrigin: string
  /** What publicUrl has after its origin (`/app`), which it should not have; '' when it is an origin. */
  publicUrlBeyondOrigin: string
  secureCookies: boolean
  prefix: string
  routes: { login: string, callback: string, logout: string, session: string, sessions: string }
  errorPath: string
  defaultReturnTo: string
  stateTtlMs: number
  autoAuthorize: boolean
  issuer: string | undefined
  cookieName: string
  csrfHeader: string
  fetchUserInfoOnLogin: boolean
  checkRedirectUri: boolean
  idleTimeoutMs: number
  absoluteTimeoutMs: number
  onLogin: OAuthRoutesOptions['onLogin']
  onLogout: OAuthRoutesOptions['onLogout']
}

const checkOptions = TypeCompiler.Compile(OAuthRoutesOptionsSchema)

/** The properties of `o` that are not undefined: an option given as undefined is one left out. */
function definedOnly<T extends object> (o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, value]) => value !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> }
}

export function resolveOptions (input: OAuthRoutesOptions): ResolvedOAuthRoutesOptions {
  if (input === null || typeof input !== 'object') throw new OAuthRoutesOptionsError('options must be an object')
  const problem = checkOptions.Check(input) ? undefined : firstOptionProblem(checkOptions.Errors(input))
  const { onLogin, onLogout, ...plain } = input
  if (problem !== undefined) throw new OAuthRoutesOptionsError(`"${problem[0]}": ${problem[1]}`)
  // The pattern alone passes `/.//host` (a dot segment: the browser goes to //host), spaces and control characters
  // (browsers drop tabs and line breaks, turning `/\t/host` into //host): returnTo's check refuses them all.
  for (const name of ['errorPath', 'defaultReturnTo'] as const) {
    const path = plain[name]
    if (path !== undefined && safeReturnTo(path, '') === '') {
      throw new OAuthRoutesOptionsError(`"${name}": must be ${LOCAL_PATH_EXPECTED}, in printable characters without dot segments that lead off the origin, such as /login`)
    }
  }
  // `?error=<code>` follows errorPath: after a fragment it would never reach the server.
  if (plain.errorPath?.includes('#') === true) {
    throw new OAuthRoutesOptionsError('"errorPath": must not have a fragment (#...): the ?error=<code> that follows it would be part of the fragment, which never reaches the server')
  }
  // The URL parser drops spaces and control characters around a URL: the same value given to aihubmix-proxy's
  // redirectUri reached the provider with them. Refused here too, in the same words.
  if (plain.publicUrl.trim() !== plain.publicUrl || /^['"]|['"]$/.test(plain.publicUrl)) {
    throw new OAuthRoutesOptionsError('"publicUrl": has spaces, line breaks or quotes around it (a copy-paste, or quotes kept from an env file?): remove them, so that the value is the URL alone')
  }
  let publicUrl: URL
  try {
    publicUrl = new URL(plain.publicUrl)
  } catch {
    throw new OAuthRoutesOptionsError('publicUrl must be an absolute URL')
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(plain.publicUrl)) {
    throw new OAuthRoutesOptionsError('"publicUrl": has spaces or control characters in it: remove them (or percent-encode them, a space as %20)')
  }
  if (publicUrl.protocol !== 'https:' && publicUrl.protocol !== 'http:') {
    throw new OAuthRoutesOptionsError('publicUrl must be an http(s) URL')
  }
  return {
    publicOrigin: publicUrl.origin,
    publicUrlBeyondOrigin: (publicUrl.pathname + publicUrl.search + publicUrl.hash).replace(/^\/$/, ''),
    secureCookies: publicUrl.protocol === 'https:',
    prefix: plain.prefix ?? DEFAULT_PREFIX,
    routes: { ...DEFAULT_ROUTES, ...definedOnly(plain.routes ?? {}) },
    errorPath: plain.errorPath ?? DEFAULT_ERROR_PATH,
    defaultReturnTo: plain.defaultReturnTo ?? DEFAULT_RETURN_TO,
    stateTtlMs: plain.stateTtlMs ?? DEFAULT_STATE_TTL_MS,
    autoAuthorize: plain.autoAuthorize ?? true,
    issuer: plain.issuer,
    cookieName: plain.cookieName ?? DEFAULT_COOKIE_NAME,
    // Header names are case-insensitive; Node gives them in lower case (`X-Team-CSRF` is `x-team-csrf`).
    csrfHeader: plain.csrfHeader?.toLowerCase() ?? DEFAULT_CSRF_HEADER,
    fetchUserInfoOnLogin: plain.fetchUserInfoOnLogin ?? onLogin !== undefined,
    checkRedirectUri: plain.checkRedirectUri ?? true,
    idleTimeoutMs: plain.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    absoluteTimeoutMs: plain.absoluteTimeoutMs ?? DEFAULT_ABSOLUTE_TIMEOUT_MS,
    onLogin,
    onLogout
  }
}
