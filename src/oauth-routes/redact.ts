/**
 * Log redaction for the sign-in routes. Fastify's request logging writes `req.url` with its query string,
 * and the callback's query carries the authorization code and the state (and `/auth/login` a returnTo):
 * `logSerializers.req` writes the URL with those values replaced, and `loggerOptions()` adds pino's
 * redaction of cookies and `Authorization`. Give them to Fastify, not to a route: request logging happens
 * before and after any route runs.
 */

/** Query parameters whose values never reach a log line. */
export const REDACTED_QUERY_PARAMETERS: readonly string[] = Object.freeze(['code', 'state', 'iss', 'error_description', 'returnTo'])
/** Each as compared: lower case, letters and `_` only. */
const REDACTED = new Set(REDACTED_QUERY_PARAMETERS.map((name) => name.toLowerCase()))
export const REDACTION_CENSOR = '[REDACTED]'

/**
 * `url` (a request target: path and query) with the values of the sensitive query parameters replaced. A name is
 * compared as a mangled copy of the callback's URL may spell it: decoded (an encoded `=` too: `code%3D…`), in any case,
 * with anything but letters and `_` left out (`Code`, `code%00`, `code%ZZ`, `code[]`, ` code`), and `;` and `?`
 * separate parameters as `&` does (`x=1;code=…`, `x=1?code=…`: a provider appending its query to a redirect URI that
 * has one). Redacting a value too many costs a log line nothing; one too few writes an authorization code.
 */
export function redactUrl (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const params = url.slice(q + 1).split(/([&;?])/).map((pair, i) => {
    if (i % 2 === 1) return pair
    let decoded: string
    try {
      decoded = decodeURIComponent(pair.replaceAll('+', ' '))
    } catch {
      decoded = pair.replace(/%.{0,2}/g, '')
    }
    const eq = decoded.indexOf('=')
    const name = eq === -1 ? decoded : decoded.slice(0, eq)
    if (!REDACTED.has(name.toLowerCase().replace(/[^a-z_]/g, ''))) return pair
    const rawEq = pair.indexOf('=')
    if (rawEq !== -1) return `${pair.slice(0, rawEq)}=${REDACTION_CENSOR}`
    // The `=` was encoded: nothing of the pair is kept.
    return eq === -1 ? `${pair}=${REDACTION_CENSOR}` : REDACTION_CENSOR
  })
  return `${url.slice(0, q)}?${params.join('')}`
}

/** The request as Fastify's request logging writes it (its default fields), the URL redacted. */
export interface LoggedRequest {
  [field: string]: unknown
  method: string
  url: string
  version?: string
  host?: string
  remoteAddress?: string
  remotePort?: number
}

/** What the serializer reads of a request: every field optional AND possibly undefined, as Fastify's own are (an app
 * compiled with `exactOptionalPropertyTypes` passes Fastify's request, whose `socket.remotePort` is `number | undefined`). */
interface SerializableRequest {
  method: string
  url: string
  host?: string | undefined
  ip?: string | undefined
  socket?: { remotePort?: number | undefined } | null | undefined
  headers?: Record<string, unknown> | undefined
  raw?: { httpVersion?: string | undefined } | undefined
}

/** Pino serializers: `req` as Fastify's default one, with `redactUrl` applied. */
export const logSerializers = Object.freeze({
  req (req: SerializableRequest): LoggedRequest {
    // The fields Fastify's serializer writes; one it has no value for is left out, not set to undefined (Fastify's
    // type for a serializer's answer has them optional, and an app may compile with exactOptionalPropertyTypes).
    const logged: LoggedRequest = { method: req.method, url: redactUrl(req.url) }
    const version = req.headers?.['accept-version']
    if (typeof version === 'string') logged.version = version
    if (req.host !== undefined) logged.host = req.host
    if (req.ip !== undefined) logged.remoteAddress = req.ip
    const port = req.socket?.remotePort
    if (port !== undefined) logged.remotePort = port
    return logged
  }
})

/** Pino paths that hold credentials in Fastify's log lines. */
export const REDACTED_LOG_PATHS: readonly string[] = Object.freeze([
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  'headers.cookie',
  'headers.authorization',
  // A request Node cannot parse (a header block over its limit: 431; a malformed header: 400) is logged by Fastify's
  // client error handler, at trace, with the raw request bytes: its Cookie, Authorization and query string.
  'err.rawPacket'
])

export interface RedactingLoggerOptions {
  level: string
  redact: { paths: string[], censor: string }
  serializers: typeof logSerializers
  hooks: { logMethod: typeof redactMessages }
}

/**
 * Every request target with a query in `text` (a run of characters without blanks that holds a `?`) as `redactUrl`
 * writes it. Fastify's default not-found handler logs `Route GET:/auth/callback?code=…&state=… not found` as the
 * message itself, which no serializer sees: a callback that lands outside oauth-routes' prefix (a redirect URI
 * registered for another path, a prefix moved while sign-ins were under way).
 */
export function redactUrlsIn (text: string): string {
  return text.includes('?') ? text.replace(/[^\s?]*\?\S*/g, (target) => redactUrl(target)) : text
}

/**
 * A pino `hooks.logMethod`: the string arguments of a log call (its message and format arguments) pass through
 * `redactUrlsIn` before pino writes them. A line without a `?` costs one `includes` per string argument.
 */
function redactMessages (this: unknown, args: unknown[], method: (...args: any[]) => void): void {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (typeof arg === 'string') args[i] = redactUrlsIn(arg)
  }
  method.apply(this, args)
}

/**
 * Fastify `logger` options that never write a code, a state, a returnTo, a cookie or an Authorization header (in the
 * request's fields, and in a message that quotes a URL):
 * `Fastify({ logger: loggerOptions({ level: 'info' }) })`. Spread it to add pino options of your own; keep
 * `serializers.req` if you add serializers.
 */
export function loggerOptions (options: { level?: string } = {}): RedactingLoggerOptions {
  return {
    level: options.level ?? 'info',
    redact: { paths: [...REDACTED_LOG_PATHS], censor: REDACTION_CENSOR },
    serializers: logSerializers,
    hooks: { logMethod: redactMessages }
  }
}
