import type { TypeCheck } from '@sinclair/typebox/compiler'
import type { TSchema } from '@sinclair/typebox'
import {
  CliInvalidArgumentError,
  ProviderBadAnswerError,
  ProviderFailedError,
  ProviderRedirectError,
  ProviderRefusedError,
  ProviderUnauthorizedError
} from './errors.js'
import { httpCall, type HttpAnswer } from './http.js'
import { resolveCreateAppOptions, type CreateAppOptions } from './options.js'
import {
  checkOAuthApp,
  checkOAuthAppEnvelope,
  checkProviderErrorBody,
  type OAuthAppAnswer
} from './schemas.js'
import { cutBetweenWords } from './text.js'

export const OAUTH_APPS_PATH = '/api/oauth_apps'

/** oauth-routes' callback route with its default prefix and path (`/auth` + `/callback`). */
export const OAUTH_ROUTES_CALLBACK_PATH = '/auth/callback'

/**
 * A redirect URI no app of these packages would send: its path ends with `/` (`/auth/callback/`), or it is the bare
 * origin, which is no callback route. The provider compares redirect URIs exactly and a registration cannot be undone,
 * so it is refused before anything is sent, naming the URI to use. Null when the path is fine, or when the URI does
 * not parse (redirectUriProblem says what is wrong with it).
 */
export function redirectPathProblem (uri: string): string | null {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return null
  }
  if (!url.pathname.endsWith('/')) return null
  const trimmed = url.pathname.replace(/\/+$/, '')
  if (trimmed === '') {
    return `is the site's root, not a callback route: oauth-routes' callback is ${OAUTH_ROUTES_CALLBACK_PATH} by default; ` +
      `use ${url.origin}${OAUTH_ROUTES_CALLBACK_PATH}`
  }
  return `must not end with / (${url.pathname}): the provider compares redirect URIs exactly and the app's callback route ` +
    `has no trailing slash (oauth-routes' is ${OAUTH_ROUTES_CALLBACK_PATH} by default); use ${url.origin}${trimmed}`
}

/**
 * The warning for a redirect URI whose path is not oauth-routes' default callback (`/auth/callback`), or undefined:
 * registered all the same (an app may serve its callback elsewhere), but the app must then be set to match.
 */
export function redirectPathWarning (uri: string): string | undefined {
  const { pathname: path, search } = new URL(uri)
  if (path !== OAUTH_ROUTES_CALLBACK_PATH) {
    return `the redirect URI's path is ${path}, not ${OAUTH_ROUTES_CALLBACK_PATH}, oauth-routes' default callback: registering it ` +
      'all the same; the app must serve its callback there (oauth-routes\' prefix and routes.callback, and aihubmix-proxy\'s redirectUri)'
  }
  // The provider compares the whole URI: an app that sends PUBLIC_URL + /auth/callback (the README's, the example's)
  // would be refused.
  if (search !== '') {
    return `the redirect URI has a query (${search}): registering it all the same; the app must send it exactly so, query ` +
      'included (aihubmix-proxy\'s redirectUri, the example\'s AIHUBMIX_REDIRECT_URI), not PUBLIC_URL + /auth/callback'
  }
  return undefined
}

/** An app the provider created. `clientSecret` is shown here once: store it, never print it. */
export interface CreatedApp {
  id: number | string
  name: string
  clientId: string
  clientSecret: string
  /** The redirect URI that was sent: the one given, in the form `new URL(uri).href` (lower-case host, no default port). */
  redirectUri: string
  /** The redirect URI the provider says it registered, when it says (it may differ if it normalised it). */
  registeredRedirectUri: string | undefined
  createdTime: number | string | undefined
}

const MAX_REASON_LENGTH = 200

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** A provider-supplied phrase made safe for one terminal line: no control characters, capped, no token. */
function sanitizeReason (reason: string, secrets: string[]): string {
  let text = reason
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, '') // terminal escape sequences (colours, cursor moves)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
  for (const secret of secrets) {
    if (secret !== '') text = text.split(secret).join('[redacted]')
  }
  return text === '' ? 'no reason given' : cutBetweenWords(text, MAX_REASON_LENGTH)
}

function parseJson (text: string): { ok: true, value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

/** The provider's reason from an error body, or a fallback. */
function reasonOf (json: unknown, secrets: string[]): string {
  if (!checkProviderErrorBody.Check(json)) return 'no reason given'
  const body = json as Record<string, unknown>
  const parts = [body.error, body.error_description, body.message].filter((p): p is string => typeof p === 'string' && p !== '')
  return sanitizeReason(parts.join(': '), secrets)
}

/** Where the first schema failure is, by path only (values may be secrets). */
function firstProblem<T extends TSchema> (check: TypeCheck<T>, value: unknown, prefix = ''): string {
  const first = check.Errors(value).First()
  if (first === undefined) return 'it does not match the expected shape'
  const path = first.path === '' ? '(root)' : `${prefix}${first.path.slice(1).replaceAll('/', '.')}`
  return `${path}: ${first.message.toLowerCase()}`
}

/**
 * Reads a 2xx answer of `POST /api/oauth_apps`: the `{success, message, data}`
 * envelope or the bare app object. `success: false` is a refusal; anything
 * else that does not match is a bad answer. A bad answer keeps no `cause`: the
 * body may hold a client secret, and errors get logged.
 */
export function parseOAuthAppAnswer (statusCode: number, text: string, secrets: string[] = []): OAuthAppAnswer {
  const parsed = parseJson(text)
  if (!parsed.ok) throw new ProviderBadAnswerError('it is not JSON')
  const json = parsed.value
  if (!isObject(json)) throw new ProviderBadAnswerError(`expected a JSON object, got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`)
  if ('success' in json) {
    if (json.success === false) {
      throw new ProviderRefusedError(statusCode, reasonOf(json, secrets), { cause: json })
    }
    if (checkOAuthAppEnvelope.Check(json)) return json.data
    throw new ProviderBadAnswerError(firstProblem(checkOAuthAppEnvelope, json))
  }
  if (checkOAuthApp.Check(json)) return json
  throw new ProviderBadAnswerError(firstProblem(checkOAuthApp, json))
}

/** Maps an answer that is not a 2xx to its error. */
function statusError (answer: HttpAnswer, secrets: string[]): Error {
  const { statusCode } = answer
  if (statusCode === 401 || statusCode === 403) return new ProviderUnauthorizedError(statusCode)
  if (statusCode >= 300 && statusCode < 400) {
    const location = answer.headers.location
    let where = 'nowhere'
    if (typeof location === 'string') {
      try {
        where = new URL(location).origin
      } catch {
        where = 'a relative location'
      }
    }
    return new ProviderRedirectError(statusCode, where)
  }
  // 429 (rate limited) is the provider's trouble as much as a 5xx: try again later.
  if (statusCode >= 500 || statusCode === 429) return new ProviderFailedError(statusCode)
  if (statusCode >= 400) {
    const parsed = parseJson(answer.text)
    return new ProviderRefusedError(statusCode, parsed.ok ? reasonOf(parsed.value, secrets) : 'no reason given')
  }
  return new ProviderBadAnswerError(`unexpected HTTP status ${statusCode}`)
}

/**
 * Registers an OAuth app: `POST <baseUrl>/api/oauth_apps` with the developer
 * token as a Bearer token and `{name, description, redirect_uri}` as JSON.
 * Validates every argument before the request (CliInvalidArgumentError), and
 * maps every failure to one ProviderError subclass with a one-line message.
 */
export async function createApp (options: CreateAppOptions): Promise<CreatedApp> {
  const opts = resolveCreateAppOptions(options)
  const pathProblem = redirectPathProblem(opts.redirectUri)
  if (pathProblem !== null) throw new CliInvalidArgumentError('redirectUri', pathProblem)
  // The provider compares redirect URIs byte for byte, and the app sends the WHATWG form (readConfig's, the example
  // server's, doctor's `redirect.href`): `http://LOCALHOST:3120/...` or `http://localhost:80/...` registered as typed
  // would never match, and every sign-in would fail at the provider.
  const redirectUri = new URL(opts.redirectUri).href
  const secrets = [opts.developerToken]
  const answer = await httpCall({
    url: `${opts.baseUrl}${OAUTH_APPS_PATH}`,
    method: 'POST',
    headers: {
      authorization: `Bearer ${opts.developerToken}`,
      'content-type': 'application/json',
      accept: 'application/json'
    },
    body: JSON.stringify({ name: opts.name, description: opts.description, redirect_uri: redirectUri }),
    timeoutMs: opts.timeoutMs,
    maxBodyBytes: opts.maxBodyBytes,
    dispatcher: opts.dispatcher,
    readBody: true
  })
  if (answer.statusCode < 200 || answer.statusCode > 299) throw statusError(answer, secrets)
  const app = parseOAuthAppAnswer(answer.statusCode, answer.text, secrets)
  return {
    id: app.id,
    name: app.name ?? opts.name,
    clientId: app.client_id,
    clientSecret: app.client_secret,
    redirectUri,
    registeredRedirectUri: app.redirect_uri,
    createdTime: app.created_time
  }
}
