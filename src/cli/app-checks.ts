import { createHash, randomBytes } from 'node:crypto'
import type { Dispatcher } from 'undici'
import { errorInfo } from './errors.js'
import { httpCall, type HttpAnswer } from './http.js'
import { cutBetweenWords } from './text.js'

/**
 * What `doctor` asks the provider about the app itself, without side effects: an authorization request that no
 * user answers (no `auto_authorize`, so no code is issued and nothing is granted), and a token request with a
 * made-up code (it cannot succeed, but the provider authenticates the client before it looks at the code).
 */

export const AUTHORIZE_PATH = '/api/oauth2/authorize'
export const TOKEN_PATH = '/api/oauth2/token'
/** Enough of an error page to quote its first words; the rest is discarded. */
const MAX_READ_BYTES = 64 * 1024
/** Longest provider text quoted in a report line. */
const MAX_QUOTE = 160

export interface AppProbe {
  /** The provider's origin plus optional path prefix, no trailing slash. */
  base: string
  clientId: string
  /** The redirect URI exactly as the example server sends it. */
  redirectUri: string
  /** The variable the redirect URI comes from: AIHUBMIX_REDIRECT_URI, or PUBLIC_URL (+ /auth/callback) when unset. */
  redirectFrom: 'AIHUBMIX_REDIRECT_URI' | 'PUBLIC_URL'
  /** Space-separated, as the example server sends it. */
  scope: string
  /** Values never to be quoted (the client secret, session secret, ...), whatever the provider echoes. */
  secrets: string[]
  timeoutMs: number
  dispatcher: Dispatcher | undefined
}

/** A throwaway authorization request: a random state and the S256 challenge of a random, forgotten verifier. */
export function authorizeProbeUrl (probe: AppProbe): string {
  const params = new URLSearchParams({
    client_id: probe.clientId,
    redirect_uri: probe.redirectUri,
    response_type: 'code',
    scope: probe.scope,
    state: randomBytes(16).toString('base64url'),
    code_challenge: createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url'),
    code_challenge_method: 'S256'
  })
  return `${probe.base}${AUTHORIZE_PATH}?${params.toString()}`
}

/** The authorization probe: a GET, redirects not followed, only the beginning of the body read. */
export async function callAuthorize (url: string, opts: { timeoutMs: number, dispatcher: Dispatcher | undefined }): Promise<HttpAnswer> {
  return await httpCall({
    url,
    method: 'GET',
    headers: { accept: 'text/html,application/json' },
    timeoutMs: opts.timeoutMs,
    maxBodyBytes: MAX_READ_BYTES,
    overflow: 'truncate',
    dispatcher: opts.dispatcher,
    readBody: true
  })
}

export type Status = 'ok' | 'warn' | 'fail'
export interface Verdict { status: Status, detail: string }

/** What the authorization probe said about the client id and the redirect URI. */
export interface AuthorizeVerdict extends Verdict {
  /** The provider's objection when it refused: the client id, the redirect URI, or either. */
  refused?: 'client' | 'redirect' | 'either'
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' }

function decodeEntities (text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, name: string) => {
    if (name.startsWith('#x') || name.startsWith('#X')) return String.fromCodePoint(Number.parseInt(name.slice(2), 16) % 0x110000)
    if (name.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)) % 0x110000)
    return ENTITIES[name.toLowerCase()] ?? all
  })
}

function textOfHtml (html: string): string {
  const body = html
    .replace(/<(script|style|title|head)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
  // An error page's message is usually its first paragraph; else all of its text.
  const paragraph = /<p\b[^>]*>([\s\S]*?)<\/p\s*>/i.exec(body)?.[1]
  const strip = (s: string): string => decodeEntities(s.replace(/<[^>]*>/g, ' '))
  const text = paragraph === undefined ? '' : strip(paragraph).trim()
  return text !== '' ? text : strip(body)
}

function stringField (value: unknown, name: string): string | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const field = (value as Record<string, unknown>)[name]
  return typeof field === 'string' && field !== '' ? field : undefined
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The OAuth error code of an answer: RFC 6749 `{error}`, or the provider's `{success: false, error}` envelope. */
function oauthError (json: unknown): string | undefined {
  return stringField(json, 'error')
}

/** The provider's own words about an answer (JSON error fields, or an HTML or text page), not yet checked for secrets. */
function providerText (answer: HttpAnswer): string {
  const json = parseJson(answer.text)
  if (json !== undefined && typeof json === 'object' && json !== null) {
    const error = oauthError(json)
    const description = stringField(json, 'error_description') ?? stringField(json, 'message')
    return [error, description].filter((s) => s !== undefined).join(': ')
  }
  const type = String(answer.headers['content-type'] ?? '')
  return type.includes('html') || /^\s*</.test(answer.text) ? textOfHtml(answer.text) : answer.text
}

/**
 * The provider's text fit to quote in a report line: one line of printable characters, at most MAX_QUOTE of them,
 * holding none of `secrets` and nothing that looks like a credential or token (a long run of token characters).
 * Undefined when there is nothing to quote or it must not be quoted.
 */
export function quotable (text: string, secrets: readonly string[]): string | undefined {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').replace(/ ([:;,.])/g, '$1').trim()
  if (line === '') return undefined
  if (secrets.some((secret) => secret.length >= 4 && line.includes(secret))) return undefined
  if (/[A-Za-z0-9_~+/=.-]{32,}/.test(line)) return undefined
  return cutBetweenWords(line, MAX_QUOTE)
}

/** `HTTP 400` or `HTTP 400: "the provider's words"`. */
function said (statusCode: number, text: string, secrets: readonly string[]): string {
  const quote = quotable(text, secrets)
  return quote === undefined ? `HTTP ${statusCode}` : `HTTP ${statusCode}: "${quote}"`
}

/** Which of the two the provider's words blame. */
function blame (text: string): 'client' | 'redirect' | 'either' {
  if (/redirect/i.test(text)) return 'redirect'
  if (/client/i.test(text)) return 'client'
  return 'either'
}

/** The variable, with its value only when it has the shape of a client id (anything else may be a pasted credential). */
function clientIdNamed (probe: AppProbe): string {
  return probe.clientId.startsWith('client_') ? `AIHUBMIX_CLIENT_ID ${probe.clientId}` : 'AIHUBMIX_CLIENT_ID'
}

function redirectNamed (probe: AppProbe): string {
  return probe.redirectFrom === 'AIHUBMIX_REDIRECT_URI'
    ? `AIHUBMIX_REDIRECT_URI ${probe.redirectUri}`
    : `the redirect URI ${probe.redirectUri} (PUBLIC_URL + /auth/callback: AIHUBMIX_REDIRECT_URI is not set)`
}

function redirectFix (probe: AppProbe): string {
  return probe.redirectFrom === 'AIHUBMIX_REDIRECT_URI'
    ? 'set AIHUBMIX_REDIRECT_URI to the registered one'
    : 'fix PUBLIC_URL, or set AIHUBMIX_REDIRECT_URI to the registered one'
}

function refusal (probe: AppProbe, cause: 'client' | 'redirect' | 'either', what: string): AuthorizeVerdict {
  const id = clientIdNamed(probe)
  switch (cause) {
    case 'client':
      return {
        status: 'fail',
        refused: cause,
        detail: `the provider does not know ${id} (${what}): copy the client id from the developer console, or register the app with aihubmix-oauth create-app`
      }
    case 'redirect':
      return {
        status: 'fail',
        refused: cause,
        detail: `the provider refused ${redirectNamed(probe)} for ${id} (${what}): it must equal the app's registered redirect URI exactly; ${redirectFix(probe)}`
      }
    case 'either':
      return {
        status: 'fail',
        refused: cause,
        detail: `the provider refused the authorization request (${what}): most likely ${id} is not registered, or ${redirectNamed(probe)} is not the app's registered redirect URI`
      }
  }
}

/** The redirect URI without its query and fragment, to tell a redirect back to the app from one within the provider. */
function sameEndpoint (a: URL, b: URL): boolean {
  return a.origin === b.origin && a.pathname === b.pathname
}

/**
 * Reads the answer to the authorization probe. A consent page (200) or a redirect to the provider's sign-in or
 * consent page accepts the client id and redirect URI together; a 4xx (the provider's own error page: it must not
 * send an unknown client or an unregistered redirect URI back anywhere) refuses one of them.
 */
export function judgeAuthorize (probe: AppProbe, answer: HttpAnswer): AuthorizeVerdict {
  const { statusCode } = answer
  const accepted = `the provider accepts AIHUBMIX_CLIENT_ID with redirect URI ${probe.redirectUri}`
  if (statusCode >= 200 && statusCode < 300) {
    return { status: 'ok', detail: `${accepted} (HTTP ${statusCode}: its consent page; nothing was authorized)` }
  }
  if (statusCode >= 300 && statusCode < 400) {
    const raw = answer.headers.location
    let location: URL | undefined
    try {
      location = typeof raw === 'string' ? new URL(raw, `${probe.base}${AUTHORIZE_PATH}`) : undefined
    } catch {}
    if (location === undefined) return { status: 'warn', detail: `not checked: the provider answered HTTP ${statusCode} without a usable Location` }
    const error = location.searchParams.get('error') ?? undefined
    const words = [error, location.searchParams.get('error_description') ?? undefined].filter((s) => s !== undefined).join(': ')
    if (sameEndpoint(location, new URL(probe.redirectUri))) {
      // Sent back to the app: the provider verified both (RFC 6749 4.1.2.1), and objects to something else, if anything.
      if (error === undefined) return { status: 'ok', detail: `${accepted} (HTTP ${statusCode} back to the app)` }
      const scope = error === 'invalid_scope' ? ': check AIHUBMIX_SCOPE' : ''
      return {
        status: 'warn',
        detail: `${accepted}, but refused the request (${said(statusCode, words, probe.secrets)} at the redirect URI)${scope}`
      }
    }
    if (error !== undefined) return refusal(probe, blame(words), `HTTP ${statusCode} to its error page${quoteOf(words, probe)}`)
    return { status: 'ok', detail: `${accepted} (HTTP ${statusCode} to its sign-in or consent page ${location.origin}${location.pathname}; nothing was authorized)` }
  }
  if (statusCode >= 400 && statusCode < 500) {
    const text = providerText(answer)
    return refusal(probe, blame(text), said(statusCode, text, probe.secrets))
  }
  return { status: 'warn', detail: `not checked: the provider answered HTTP ${statusCode}` }
}

function quoteOf (text: string, probe: AppProbe): string {
  const quote = quotable(text, probe.secrets)
  return quote === undefined ? '' : `: "${quote}"`
}

/**
 * Checks the client secret with a token request that cannot succeed: a made-up code and code verifier. The
 * provider authenticates the client first: `invalid_client` (or 401) refuses the id and secret; `invalid_grant`
 * accepts them and refuses only the code. Neither the secret nor anything the provider answers beyond its error
 * code is shown.
 */
export async function credentialsCheck (probe: AppProbe, clientSecret: string, authorize: AuthorizeVerdict | undefined): Promise<Verdict> {
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: `doctor_${randomBytes(16).toString('base64url')}`,
    redirect_uri: probe.redirectUri,
    client_id: probe.clientId,
    client_secret: clientSecret,
    code_verifier: randomBytes(32).toString('base64url')
  })
  let answer: HttpAnswer
  try {
    answer = await httpCall({
      url: `${probe.base}${TOKEN_PATH}`,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      timeoutMs: probe.timeoutMs,
      maxBodyBytes: MAX_READ_BYTES,
      overflow: 'truncate',
      dispatcher: probe.dispatcher,
      readBody: true
    })
  } catch (err) {
    return { status: 'warn', detail: `AIHUBMIX_CLIENT_SECRET could not be checked: ${errorInfo(err).message}` }
  }
  const { statusCode } = answer
  const error = oauthError(parseJson(answer.text))
  const code = error !== undefined && /^[a-z_]{1,40}$/.test(error) ? error : undefined
  const status = code === undefined ? `HTTP ${statusCode}` : `${code}, HTTP ${statusCode}`
  if (code === 'invalid_client' || statusCode === 401) {
    if (authorize?.refused === 'client') {
      return { status: 'fail', detail: `the provider refused AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET (${status}): it does not know the client id (above), so the secret could not be checked on its own` }
    }
    if (authorize?.status === 'ok') {
      return { status: 'fail', detail: `the provider refused AIHUBMIX_CLIENT_SECRET for ${clientIdNamed(probe)} (${status}): copy the secret of this app again, or register a new app with aihubmix-oauth create-app` }
    }
    return { status: 'fail', detail: `the provider refused AIHUBMIX_CLIENT_ID / AIHUBMIX_CLIENT_SECRET (${status}): check both against the app in the developer console` }
  }
  if (code === 'invalid_grant') {
    return { status: 'ok', detail: `the provider accepts AIHUBMIX_CLIENT_ID with AIHUBMIX_CLIENT_SECRET (a made-up code was refused with ${status}, as it must be; nothing was granted)` }
  }
  return { status: 'warn', detail: `AIHUBMIX_CLIENT_SECRET could not be checked: a token request with a made-up code answered ${status}, neither invalid_client nor invalid_grant` }
}
