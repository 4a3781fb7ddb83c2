import { resolve } from 'node:path'
import { AUTHORIZE_PATH, authorizeProbeUrl, callAuthorize, credentialsCheck, judgeAuthorize, type AppProbe } from './app-checks.js'
import { ConfigError, encryptionKeyProblem, keyPrefixSlip, listenHost, readConfig, readSessionSecrets, redirectRefusal, redisUrlProblem, refusalKind, unreadVariables, type RefusalKind } from './config.js'
import { EnvFileError, errorInfo } from './errors.js'
import { describeMalformed, isEnvName, readEnvFile, valuesCutAtHash, valuesCutInsideAtHash, type EnvFile } from './env-file.js'
import { httpCall, type HttpAnswer } from './http.js'
import { resolveDoctorOptions, type DoctorOptions } from './options.js'
import { APP_KEY_PREFIX, pingRedis, type RedisAccess, type RedisMemory, type RedisPersistence } from './redis-ping.js'
import { apiPathSuffix, clientIdLooksSecret, credentialLooksPasted, isLoopbackHost, isNodeLoopbackHost, normalizeBaseUrl } from './validate.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'

/** One line of the report. `detail` never holds a secret. */
export interface DoctorCheck {
  status: CheckStatus
  name: string
  detail: string
}

export interface DoctorReport {
  checks: DoctorCheck[]
  /** False when any check failed (warnings do not count). */
  ok: boolean
  /** The env file that was looked at (absolute). */
  envFile: string
}

// The endpoint probed for reachability (AUTHORIZE_PATH) answers something (any status) to a bare GET. With a client
// id and a redirect URI the probe is a real authorization request (no auto_authorize: nothing is granted), whose
// answer also says whether the provider knows the pair.
export const CALLBACK_PATH = '/auth/callback'
const MIN_SECRET_LENGTH = 32

type Env = Record<string, string | undefined>

const LABELS: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' }

/** `ok   name: detail` / `warn name: detail` / `FAIL name: detail`. */
export function formatCheck (check: DoctorCheck): string {
  return `${LABELS[check.status]} ${check.name}: ${check.detail}`
}

/**
 * The failing checks that say, in words of their own, what readConfig() refuses about a variable (of one kind of
 * refusal, or of any): the configuration line is then left out, so that one mistake is one FAIL line.
 */
const SAYS = new WeakMap<DoctorCheck, Array<{ variable: string, kind?: RefusalKind }>>()

/** `check`, recorded as saying what readConfig() refuses about `variables` (of `kind`, or of any kind when none). */
function saying (check: DoctorCheck, variables: readonly string[], kind?: RefusalKind): DoctorCheck {
  SAYS.set(check, variables.map((variable) => kind === undefined ? { variable } : { variable, kind }))
  return check
}

const ok = (name: string, detail: string): DoctorCheck => ({ status: 'ok', name, detail })
const warn = (name: string, detail: string): DoctorCheck => ({ status: 'warn', name, detail })
const fail = (name: string, detail: string): DoctorCheck => ({ status: 'fail', name, detail })

function set (env: Env, name: string): string | undefined {
  const value = env[name]
  return value === undefined || value === '' ? undefined : value
}

function parseUrl (raw: string | undefined): URL | undefined {
  if (raw === undefined) return undefined
  try {
    const url = new URL(raw)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
  } catch {
    return undefined
  }
}

function mode (bits: number): string {
  return `0${bits.toString(8).padStart(3, '0')}`
}

/** An env file that exists but could not be read. */
interface Unreadable { failure: string }

/** `fromVariable`: ENV_FILE named the file (a missing one is a warning: the example server runs without it). */
function envFileCheck (file: EnvFile | Unreadable, fromVariable: boolean, overridden: string[]): DoctorCheck {
  if ('failure' in file) return fail('env file', `${file.failure} (the example server would silently ignore it)`)
  if (!file.exists) {
    const detail = `none at ${file.path}: using the environment only`
    return fromVariable ? warn('env file', detail) : ok('env file', detail)
  }
  // Names only: what a malformed line makes of itself is said by its own warning.
  const count = Object.keys(file.values).filter(isEnvName).length
  const shadow = overridden.length === 0 ? '' : `; the environment overrides ${overridden.join(', ')}`
  const bits = file.mode ?? 0
  if ((bits & 0o077) !== 0) {
    return warn('env file', `${file.path} has mode ${mode(bits)}, readable by others: run chmod 600 ${file.path}${shadow}`)
  }
  return ok('env file', `${file.path} (${count} variable${count === 1 ? '' : 's'}, mode ${mode(bits)})${shadow}`)
}

/**
 * One warning per line of the env file that Node.js does not read as `NAME=value`, a comment or blank: Node (so an app
 * run with --env-file) and the example server skip it or take it, with the next line, as a name, so a variable meant
 * to be set there or on the next line is not. Each says what is wrong with that line, its fix and the variable lost;
 * the line's content is never shown (it may hold a secret).
 */
function malformedChecks (file: EnvFile | Unreadable): DoctorCheck[] {
  if ('failure' in file) return []
  return describeMalformed(file.misread).map((said) => warn('env file', said))
}

/** The secrets whose value is worthless when Node.js cuts it short: a cut one is a different secret than the one meant. */
const CUT_SECRETS = ['SESSION_SECRET', 'TOKEN_ENCRYPTION_KEY', 'AIHUBMIX_CLIENT_SECRET']

/**
 * A secret in the env file whose unquoted value has a `#` after its first character: Node.js (so the app and the
 * example server) reads it up to the `#` only. An older example server kept the whole value, so an upgraded
 * deployment gets another secret (sessions end, stored token sets no longer open) or refuses to start. Not when the
 * environment sets the variable: then the file's value is not used.
 */
function cutSecretChecks (file: EnvFile | Unreadable, env: Record<string, string | undefined>): DoctorCheck[] {
  if ('failure' in file || !file.exists) return []
  const secrets = valuesCutAtHash(file.text, CUT_SECRETS.filter((name) => env[name] === undefined))
    .map((name) => warn(name, `cut at '#' (Node.js reads the rest as a comment): quote the value (${name}="...")`))
  // REDIS_URL's password, cut at a `#` written in it (`redis://:pa#ss@host` is `redis://:pa`): quoting would keep the
  // `#`, which starts a fragment in a URL, so the fix is its escape. A `#` after a blank is a comment, and fine.
  const url = env.REDIS_URL === undefined && valuesCutInsideAtHash(file.text, ['REDIS_URL']).length > 0
    ? [warn('REDIS_URL', 'cut at \'#\' (Node.js reads the rest as a comment): write each # in its password as %23 (quotes would not help: in a URL a # starts a fragment)')]
    : []
  return [...secrets, ...url]
}

/** What readConfig() says, and the variable it refused and how (undefined when it accepted the configuration). */
function configurationCheck (env: Env): { check: DoctorCheck, variable?: string, kind?: RefusalKind | undefined } {
  try {
    const config = readConfig(env)
    return { check: ok('configuration', `accepted by the example server (${config.production ? 'production' : 'development: NODE_ENV is not production'})`) }
  } catch (err) {
    if (err instanceof ConfigError) return { check: fail('configuration', err.message), variable: err.variable, kind: refusalKind(err) }
    return { check: fail('configuration', 'the configuration could not be read') }
  }
}

/**
 * Where the Prometheus metrics are (only when METRICS_PORT is set): a listener of their own, never the public port.
 * Beyond loopback they tell whoever reaches them how many sign-ins, refreshes and provider calls happen.
 */
function metricsChecks (env: Env, refused: string | undefined): DoctorCheck[] {
  const port = set(env, 'METRICS_PORT')
  // The configuration's FAIL line already names what is wrong with these two.
  if (refused === 'METRICS_PORT' || refused === 'METRICS_HOST') return []
  if (port === undefined) {
    // No metrics listener, but the example server refuses a METRICS_HOST it could not listen on all the same: said
    // here too, when the configuration's line named another variable it refused first.
    try {
      listenHost(env, 'METRICS_HOST')
      return []
    } catch (err) {
      return [fail('metrics', err instanceof ConfigError ? err.message : 'METRICS_HOST is not a host name or address')]
    }
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return [fail('metrics', 'METRICS_PORT is not a port number (0-65535)')]
  // Checked here too: the configuration's line names only the first variable it refuses (HOST, say).
  let host: string
  try {
    host = listenHost(env, 'METRICS_HOST')
  } catch (err) {
    return [fail('metrics', err instanceof ConfigError ? err.message : 'METRICS_HOST is not a host name or address')]
  }
  // METRICS_PORT=0: any free port, which only the started server knows (it logs where it listens).
  const url = Number(port) === 0
    ? `http://${host.includes(':') ? `[${host}]` : host}, on any free port (METRICS_PORT=0; the server logs which)`
    : `http://${host.includes(':') ? `[${host}]` : host}:${Number(port)}/metrics`
  if (isLoopbackHost(host)) return [ok('metrics', `${url}, loopback only: Prometheus must run on this machine (METRICS_HOST says where to listen)`)]
  return [ok('metrics', `${url}: reachable beyond this machine, so let only Prometheus reach it (a firewall, a private network)`)]
}

/** A client id or secret good enough to send: present, printable, unquoted (its own check does not fail). */
function usableCredential (value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '' && !credentialLooksPasted(value)
}

function credentialChecks (env: Env): DoctorCheck[] {
  const base = set(env, 'AIHUBMIX_BASE_URL')
  const id = env.AIHUBMIX_CLIENT_ID
  const secret = env.AIHUBMIX_CLIENT_SECRET
  if (base === undefined && id === undefined && secret === undefined) return []
  const checks: DoctorCheck[] = []

  if (id === undefined || id.trim() === '') {
    checks.push(base === undefined
      ? warn('AIHUBMIX_CLIENT_ID', 'not set')
      : fail('AIHUBMIX_CLIENT_ID', 'not set (required with AIHUBMIX_BASE_URL; `aihubmix-oauth create-app` writes it)'))
  } else if (credentialLooksPasted(id)) {
    checks.push(fail('AIHUBMIX_CLIENT_ID', 'contains spaces, quotes or control characters (a copy-paste error?)'))
  } else if (clientIdLooksSecret(id, secret)) {
    checks.push(fail('AIHUBMIX_CLIENT_ID', `set (${id.length} characters), but it looks like the client secret (secret_..., or the same as ` +
      'AIHUBMIX_CLIENT_SECRET): are AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET swapped? The client id goes to the browser in the sign-in URL'))
  } else if (!id.startsWith('client_')) {
    // Not quoted: a value of another shape may be any credential pasted in the wrong place.
    checks.push(warn('AIHUBMIX_CLIENT_ID', `set (${id.length} characters), but it does not look like an AIHubMix client id (client_...)`))
  } else {
    checks.push(ok('AIHUBMIX_CLIENT_ID', id))
  }

  if (secret === undefined || secret.trim() === '') {
    checks.push(base === undefined
      ? warn('AIHUBMIX_CLIENT_SECRET', 'not set')
      : fail('AIHUBMIX_CLIENT_SECRET', 'not set (required with AIHUBMIX_BASE_URL; `aihubmix-oauth create-app` writes it)'))
  } else if (credentialLooksPasted(secret)) {
    checks.push(fail('AIHUBMIX_CLIENT_SECRET', `set (${secret.length} characters) but contains spaces, quotes or control characters (a copy-paste error?)`))
  } else if (!secret.startsWith('secret_')) {
    checks.push(warn('AIHUBMIX_CLIENT_SECRET', `set (${secret.length} characters), but it does not look like an AIHubMix client secret (secret_...)`))
  } else {
    checks.push(ok('AIHUBMIX_CLIENT_SECRET', `set (${secret.length} characters)`))
  }
  return checks
}

function sessionSecretCheck (env: Env, production: boolean): DoctorCheck {
  const secret = set(env, 'SESSION_SECRET')
  if (secret === undefined) {
    return production
      ? fail('SESSION_SECRET', `not set (required in production, at least ${MIN_SECRET_LENGTH} characters)`)
      : warn('SESSION_SECRET', 'not set: the example server makes a random one per process (sessions end when it restarts); an app built from the README snippet does not start without it')
  }
  // As the example server reads it (readConfig's own rules): a list, newest first; never a secret, lengths only.
  const read = readSessionSecrets(secret)
  if ('problem' in read) return fail('SESSION_SECRET', read.problem)
  if (secret.length < MIN_SECRET_LENGTH) return fail('SESSION_SECRET', `${secret.length} characters; at least ${MIN_SECRET_LENGTH} are needed`)
  return ok('SESSION_SECRET', read.secrets.length === 1 ? `set (${secret.length} characters)` : `set (${read.secrets.length} secrets, newest first: the first signs, all verify)`)
}

/**
 * TOKEN_ENCRYPTION_KEY as the example server reads it: a comma-separated list (the first encrypts), each key 32+
 * characters or `base64:`/`hex:`; unset, the key is derived from SESSION_SECRET, so a new session secret leaves
 * every stored token set unreadable. That is a warning in production (the root README says to set it), a note in
 * development. Never shows a key.
 */
function tokenKeyCheck (env: Env, production: boolean): DoctorCheck {
  const name = 'TOKEN_ENCRYPTION_KEY'
  const raw = set(env, name)
  if (raw === undefined) {
    return production
      ? warn(name, 'not set: derived from SESSION_SECRET, so a new SESSION_SECRET leaves every stored token set unreadable (every user signs in again); make one with openssl rand -base64 32 and set TOKEN_ENCRYPTION_KEY=base64:<its output>')
      : ok(name, 'not set: the example server derives it from SESSION_SECRET (fine in development; set it in production); an app built from the README snippet does not start without it')
  }
  const keys = raw.split(',').map((k) => k.trim())
  for (const [i, key] of keys.entries()) {
    const problem = encryptionKeyProblem(key)
    if (problem !== undefined) return fail(name, `${keys.length === 1 ? '' : `key ${i + 1} of ${keys.length}: `}${problem}`)
  }
  for (const [i, key] of keys.entries()) {
    const prefix = keyPrefixSlip(key)
    if (prefix !== undefined) {
      return warn(name, `${keys.length === 1 ? '' : `key ${i + 1} of ${keys.length}: `}starts with "${prefix}", which is not a key format ` +
        '("base64:" and "hex:" are; "base64:" reads base64url too): the whole value is used as a passphrase. Write "base64:<key>" ' +
        'or "hex:<key>" before the first start, or keep it as it is once token sets are sealed with it')
    }
  }
  return ok(name, keys.length === 1 ? 'set (1 key)' : `set (${keys.length} keys; the first encrypts)`)
}

type Dispatcher = ReturnType<typeof resolveDoctorOptions>['dispatcher']

/** The provider's base URL as doctor probes it, or undefined when AIHUBMIX_BASE_URL is unset or unusable. */
function providerBase (env: Env): string | undefined {
  const url = parseUrl(set(env, 'AIHUBMIX_BASE_URL'))
  if (url === undefined || url.username !== '' || url.password !== '') return undefined
  return normalizeBaseUrl(url.href)
}

/** Values no line may quote, whatever the provider echoes back. */
function secretsOf (env: Env): string[] {
  const secrets = ['AIHUBMIX_CLIENT_SECRET', 'SESSION_SECRET', 'AIHUBMIX_DEVELOPER_TOKEN']
    .map((name) => set(env, name))
    .filter((value): value is string => value !== undefined)
  for (const secret of (set(env, 'SESSION_SECRET') ?? '').split(',')) if (secret.trim() !== '') secrets.push(secret.trim())
  for (const key of (set(env, 'TOKEN_ENCRYPTION_KEY') ?? '').split(',')) if (key.trim() !== '') secrets.push(key.trim())
  try {
    const password = new URL(set(env, 'REDIS_URL') ?? '').password
    if (password !== '') secrets.push(password)
    if (password !== '') secrets.push(decodeURIComponent(password))
  } catch {}
  return secrets
}

/**
 * The app's side of an authorization request, as the example server would send it: its client id, its redirect
 * URI (readConfig's, else AIHUBMIX_REDIRECT_URI or PUBLIC_URL + /auth/callback) and its scope. Undefined when
 * there is no provider, or no client id or redirect URI worth sending.
 */
function appProbe (env: Env, opts: { timeoutMs: number, dispatcher: Dispatcher }): AppProbe | undefined {
  const base = providerBase(env)
  const clientId = env.AIHUBMIX_CLIENT_ID
  // A client id that looks like the secret is not sent anywhere (the provider would log it).
  if (base === undefined || !usableCredential(clientId) || clientIdLooksSecret(clientId, env.AIHUBMIX_CLIENT_SECRET)) return undefined
  const explicit = env.AIHUBMIX_REDIRECT_URI
  let redirectUri: string | undefined
  let scope: string
  try {
    const config = readConfig(env)
    redirectUri = config.redirectUri
    scope = config.scope.join(' ')
  } catch {
    redirectUri = redirectUriOf(env, publicUrlOf(env).url)?.href
    scope = (env.AIHUBMIX_SCOPE ?? 'profile balance').split(' ').filter((s) => s !== '').join(' ')
  }
  if (redirectUri === undefined) return undefined
  return {
    base,
    clientId,
    redirectUri,
    redirectFrom: explicit === undefined ? 'PUBLIC_URL' : 'AIHUBMIX_REDIRECT_URI',
    scope,
    secrets: secretsOf(env),
    timeoutMs: opts.timeoutMs,
    dispatcher: opts.dispatcher
  }
}

/**
 * The provider's checks: reachability (any HTTP status), then, with an app to ask about, whether it knows the client
 * id with the redirect URI (`app registration`) and the client id with the secret (`client credentials`). Nothing
 * is granted: the authorization request has no auto_authorize, the token request a made-up code.
 */
async function providerChecks (env: Env, opts: { timeoutMs: number, dispatcher: Dispatcher }): Promise<{ provider: DoctorCheck, app: DoctorCheck[] }> {
  const probe = appProbe(env, opts)
  const reach = await providerCheck(env, opts, probe)
  if (probe === undefined || reach.answer === undefined) return { provider: reach.check, app: [] }
  const registration = judgeAuthorize(probe, reach.answer)
  const app: DoctorCheck[] = [{ status: registration.status, name: 'app registration', detail: registration.detail }]
  const secret = env.AIHUBMIX_CLIENT_SECRET
  if (usableCredential(secret)) {
    const credentials = await credentialsCheck(probe, secret, registration)
    app.push({ status: credentials.status, name: 'client credentials', detail: credentials.detail })
  }
  return { provider: reach.check, app }
}

async function providerCheck (env: Env, opts: { timeoutMs: number, dispatcher: Dispatcher }, probe?: AppProbe): Promise<{ check: DoctorCheck, answer?: HttpAnswer }> {
  const raw = set(env, 'AIHUBMIX_BASE_URL')
  if (raw === undefined && env.NODE_ENV === 'production') {
    return { check: saying(fail('provider', 'AIHUBMIX_BASE_URL is not set: the embedded mock provider is for development only; set it to the provider\'s origin, https://api.aihubmix.com'), ['AIHUBMIX_BASE_URL'], 'required') }
  }
  if (raw === undefined) {
    const ignored = ['AIHUBMIX_CLIENT_ID', 'AIHUBMIX_CLIENT_SECRET'].filter((name) => set(env, name) !== undefined)
    if (ignored.length > 0) {
      return { check: warn('provider', `the example server's embedded mock provider (development only): AIHUBMIX_BASE_URL is not set, so ${ignored.join(' and ')} ${ignored.length === 1 ? 'is' : 'are'} ignored; an app built from the README snippet uses https://api.aihubmix.com`) }
    }
    return { check: ok('provider', 'the example server\'s embedded mock provider (development only); an app built from the README snippet uses https://api.aihubmix.com when AIHUBMIX_BASE_URL is unset') }
  }
  const base = providerBase(env)
  if (base === undefined) return { check: saying(fail('provider', 'AIHUBMIX_BASE_URL is not a usable http(s) URL: set it to the provider\'s origin, such as https://api.aihubmix.com'), ['AIHUBMIX_BASE_URL'], 'unusable') }
  // The endpoints are <base>/api/oauth2/*: a base ending in /api (or the AI API's /v1) misses every one of them.
  const wrongPath = apiPathSuffix(new URL(base))
  if (wrongPath !== undefined) {
    return { check: saying(fail('provider', `AIHUBMIX_BASE_URL ends in ${wrongPath}, but the endpoints are AIHUBMIX_BASE_URL + ${AUTHORIZE_PATH.replace(/\/authorize$/, '/*')}: set it to the provider's origin, ${new URL(base).origin}`), ['AIHUBMIX_BASE_URL'], 'path') }
  }
  try {
    const answer = probe === undefined
      ? await httpCall({
        url: `${base}${AUTHORIZE_PATH}`,
        method: 'GET',
        headers: { accept: 'text/html,application/json' },
        timeoutMs: opts.timeoutMs,
        maxBodyBytes: 0,
        dispatcher: opts.dispatcher,
        readBody: false
      })
      : await callAuthorize(authorizeProbeUrl(probe), opts)
    const asked = probe === undefined ? `GET ${AUTHORIZE_PATH}` : `GET ${AUTHORIZE_PATH} for this app`
    if (answer.statusCode === 404) {
      // Not the app's registration: the endpoint itself is not there, so nothing else can be checked against it.
      return { check: fail('provider', `${base} answered HTTP 404 to ${asked}: no OAuth endpoint there; AIHUBMIX_BASE_URL must be the AIHubMix provider's origin (its endpoints are under ${AUTHORIZE_PATH.replace(/\/authorize$/, '/*')})`) }
    }
    return { check: ok('provider', `${base} reachable (${asked} answered HTTP ${answer.statusCode})`), answer }
  } catch (err) {
    return { check: fail('provider', errorInfo(err).message) }
  }
}

/**
 * PUBLIC_URL as the example server reads it: the variable, else `http://localhost:$PORT`. A PORT that is not a
 * port number gives no URL (and the problem names PORT: PUBLIC_URL was never set).
 */
function publicUrlOf (env: Env): { url: URL, problem?: undefined, variable?: undefined } | { url?: undefined, problem: string, variable: string } {
  const raw = set(env, 'PUBLIC_URL')
  if (raw !== undefined) {
    const url = parseUrl(raw)
    return url === undefined ? { problem: 'PUBLIC_URL is not an http(s) URL', variable: 'PUBLIC_URL' } : { url }
  }
  const port = env.PORT ?? '3000'
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return { problem: 'PUBLIC_URL is not set and PORT is not a port number, so its default (http://localhost:$PORT) is unknown', variable: 'PORT' }
  }
  return { url: new URL(`http://localhost:${port}`) }
}

/** The redirect URI the example server sends: AIHUBMIX_REDIRECT_URI, else PUBLIC_URL's origin + /auth/callback. */
function redirectUriOf (env: Env, publicUrl: URL | undefined): URL | undefined {
  const explicit = env.AIHUBMIX_REDIRECT_URI
  return parseUrl(explicit ?? (publicUrl === undefined ? undefined : `${publicUrl.origin}${CALLBACK_PATH}`))
}

function redirectCheck (env: Env): DoctorCheck {
  const { url: publicUrl, problem } = publicUrlOf(env)
  if (publicUrl === undefined) return fail('redirect URI', `cannot check: ${problem}`)
  const explicit = env.AIHUBMIX_REDIRECT_URI
  const redirect = redirectUriOf(env, publicUrl)
  if (redirect === undefined) return fail('redirect URI', 'AIHUBMIX_REDIRECT_URI is not an http(s) URL')
  const shown = explicit ?? redirect.href
  // readConfig refuses it in the same words (the configuration check, left out then: see doctor()).
  const refusal = redirectRefusal(shown, redirect, publicUrl.origin)
  if (refusal !== undefined) {
    // create-app registers a callback on another path (with a warning), then sends the user here: an app of their
    // own serves it there (oauth-routes' prefix and routes.callback), and this line's fix would have them register
    // the example's path, for good. Said, so that they can tell which lines apply to their app.
    const ownApp = redirect.origin === publicUrl.origin
      ? `. An app of your own that serves its callback at ${redirect.pathname} (oauth-routes' prefix and routes.callback) ` +
        'is not the example server: this line is about the example only, the app registration and client credentials lines apply to yours'
      : ''
    return fail('redirect URI', `AIHUBMIX_REDIRECT_URI ${refusal}${ownApp}`)
  }
  const source = explicit === undefined ? 'derived from PUBLIC_URL' : 'matches PUBLIC_URL'
  return ok('redirect URI', `${shown} (${source}; it must equal the app's registered redirect URI exactly)`)
}

function httpsCheck (env: Env, production: boolean): DoctorCheck {
  const { url: publicUrl, problem } = publicUrlOf(env)
  const urls: Array<[string, URL | undefined]> = [
    ['PUBLIC_URL', publicUrl],
    ['AIHUBMIX_REDIRECT_URI', parseUrl(env.AIHUBMIX_REDIRECT_URI ?? (publicUrl === undefined ? undefined : `${publicUrl.origin}${CALLBACK_PATH}`))]
  ]
  if (set(env, 'AIHUBMIX_BASE_URL') !== undefined) urls.push(['AIHUBMIX_BASE_URL', parseUrl(env.AIHUBMIX_BASE_URL)])
  const known = urls.filter((entry): entry is [string, URL] => entry[1] !== undefined)
  // Browsers keep every *.localhost name on this machine (PUBLIC_URL, the redirect URI); the server resolves the
  // provider's through DNS like any other name, so there only `localhost` itself and loopback addresses count.
  const local = (name: string, url: URL): boolean => name === 'AIHUBMIX_BASE_URL' ? isNodeLoopbackHost(url.hostname) : isLoopbackHost(url.hostname)
  const plainRemote = known.filter(([name, url]) => url.protocol === 'http:' && !local(name, url)).map(([name]) => name)
  const plainLocal = known.filter(([name, url]) => url.protocol === 'http:' && local(name, url)).map(([name]) => name)
  if (plainRemote.length > 0) {
    const what = `${plainRemote.join(', ')} use${plainRemote.length === 1 ? 's' : ''} plain http outside loopback`
    const base = known.find(([name]) => name === 'AIHUBMIX_BASE_URL')?.[1]
    const dns = base !== undefined && plainRemote.includes('AIHUBMIX_BASE_URL') && isLoopbackHost(base.hostname)
      ? ` (AIHUBMIX_BASE_URL's ${base.hostname}: the server resolves *.localhost names through DNS, unlike a browser)`
      : ''
    return production
      ? saying(fail('HTTPS', `${what}${dns}: production requires https: use https://, or http://localhost or http://127.0.0.1 for what runs on this machine`), plainRemote, 'https')
      : warn('HTTPS', `${what}${dns}: fine for a test of the example server, refused in production (cookies are not Secure, OAuth traffic is readable); an app built from the README snippet refuses it (aihubmix-proxy's allowInsecureHttp)`)
  }
  const trust = env.TRUST_PROXY
  if (publicUrl?.protocol === 'https:' && (trust === 'false' || trust === '')) {
    return warn('HTTPS', 'PUBLIC_URL is https but TRUST_PROXY is off: behind a TLS-terminating proxy the Secure session cookie is never set and login loops')
  }
  if (plainLocal.length > 0) {
    return ok('HTTPS', `plain http on loopback only (${plainLocal.join(', ')}): nothing leaves this machine in the clear; any other host needs https`)
  }
  if (known.length === 0) return warn('HTTPS', `cannot check: ${problem ?? 'no URL is known'}`)
  const names = known.map(([name]) => name)
  const unknown = problem === undefined ? '' : ` (not checked: ${problem})`
  return ok('HTTPS', `${names.join(', ')} use${names.length === 1 ? 's' : ''} https${unknown}`)
}

async function redisChecks (env: Env, timeoutMs: number): Promise<DoctorCheck[]> {
  const raw = set(env, 'REDIS_URL')
  if (raw === undefined) return [ok('Redis', 'not configured: in-memory stores (sessions end at restart; one instance only)')]
  // What the example server refuses to start with, in its words (nothing is sent: the URL is not what is meant).
  const problem = redisUrlProblem(raw)
  if (problem !== undefined) return [saying(fail('Redis', `REDIS_URL: ${problem}`), ['REDIS_URL'])]
  const cache = set(env, 'REDIS_CLIENT_CACHE') === 'on'
  const ping = await pingRedis(raw, { timeoutMs, tracking: cache, persistence: true, memory: true, access: true })
  if (!ping.ok) return [fail('Redis', `${ping.target}: ${ping.detail}`)]
  let reachable = ping.tracking === undefined
    ? ok('Redis', `${ping.target} ${ping.detail}`)
    : ping.tracking.allowed
      ? ok('Redis', `${ping.target} ${ping.detail}; ${ping.tracking.detail} (REDIS_CLIENT_CACHE=on)`)
      : warn('Redis', `${ping.target} ${ping.detail}, but ${ping.tracking.detail}: with REDIS_CLIENT_CACHE=on every value is still read from Redis (uncached)`)
  // A password this Redis does not have: the app works (ioredis goes on without it), so a warning, not a failure.
  if (ping.passwordIgnored !== undefined) reachable = warn('Redis', `${reachable.detail}, but ${ping.passwordIgnored}`)
  // A user an ACL keeps from what the app runs answers PONG all the same, and then the app's store requests fail: one
  // line, a failure (a warning when only what the app can do without is refused). INFO, when the tracking check has
  // said it already, is not said again.
  const access = ping.access === undefined ? undefined : accessProblem(ping.access, ping.tracking?.allowed === false)
  if (access !== undefined) {
    reachable = access.fails
      ? fail('Redis', `${ping.target} ${ping.detail}, but ${access.detail}`)
      : warn('Redis', `${reachable.detail}${reachable.status === 'ok' ? ',' : ';'} but ${access.detail}`)
  }
  return [
    reachable,
    ...(ping.persistence === undefined ? [] : [persistenceCheck(ping.persistence)]),
    ...(ping.memory === undefined ? [] : [evictionCheck(ping.memory)])
  ]
}

/** Where every command, key and channel the app needs of Redis is listed (token-store's README, "Redis ACL"). */
const REDIS_ACL_DOCS = 'https://github.com/fastify-aihubmix/fastify-aihubmix/tree/main/src/token-store#redis-acl'

/** Commands whose refusal leaves the app running, and what it does without each. */
const SIDE_COMMANDS: Readonly<Record<string, string>> = Object.freeze({
  time: 'without TIME, refresh fences go by each machine\'s clock instead of Redis\'s',
  info: 'without INFO, token-store cannot warn about a Redis that evicts sessions',
  hello: 'without HELLO, an app on ioredis 6 cannot connect (ioredis 5, the example\'s, does not send it)'
})

/**
 * What this Redis keeps from the app, in one phrase naming the missing permissions, the grant that fixes it and where
 * the full list is; undefined when nothing is missing. `fails` when the app's store needs what is missing (a command
 * of its, a key or a channel under its prefix, a command this Redis lacks, another refusal such as OOM or READONLY);
 * else only commands the app runs without, degraded (SIDE_COMMANDS). Commands and patterns only: the URL's user is
 * shown as <user>. `infoSaid`: the tracking check has said INFO is refused.
 */
function accessProblem (a: RedisAccess, infoSaid: boolean): { fails: boolean, detail: string } | undefined {
  const commands = a.commands.filter((c) => !(infoSaid && c === 'info'))
  const side = commands.filter((c) => Object.hasOwn(SIDE_COMMANDS, c))
  const fails = a.keys || a.channels || commands.length > side.length || a.unknown.length > 0 || a.refused.length > 0
  const said: string[] = []
  if (commands.length > 0 || a.keys || a.channels) {
    const missing = [
      ...(commands.length === 0 ? [] : [`the command${commands.length === 1 ? '' : 's'} ${commands.join(', ')}`]),
      ...(a.keys ? [`keys ${APP_KEY_PREFIX}* (~${APP_KEY_PREFIX}*)`] : []),
      ...(a.channels ? [`channels ${APP_KEY_PREFIX}* (&${APP_KEY_PREFIX}*)`] : [])
    ]
    const grant = [...commands.map((c) => `+${c}`), ...(a.keys ? [`~${APP_KEY_PREFIX}*`] : []), ...(a.channels ? [`&${APP_KEY_PREFIX}*`] : [])]
    const effect = fails
      ? ', which the app\'s store needs (its requests would answer 503 store_unavailable)'
      : ` (${side.map((c) => SIDE_COMMANDS[c]).join('; ')})`
    said.push(`this Redis user may not use ${missing.join(', ')} (NOPERM)${effect}: grant ${grant.length === 1 ? 'it' : 'them'} (ACL SETUSER <user> ${grant.join(' ')})`)
  }
  if (a.unknown.length > 0) said.push(`this Redis does not know ${a.unknown.join(', ')} (Redis 6.2 or newer is needed, or the command was renamed)`)
  for (const r of a.refused) said.push(`Redis refused ${r.command}: ${r.error}`)
  if (said.length === 0) return undefined
  return { fails, detail: `${said.join('; ')}; every command, key and channel the app needs is listed under "Redis ACL" in @fastify-aihubmix/token-store's README (${REDIS_ACL_DOCS})` }
}

/** `maxmemory` in bytes, said the way people size it. */
function bytes (value: string): string {
  const n = Number(value)
  if (!Number.isFinite(n)) return value
  const gib = 1024 ** 3
  const mib = 1024 ** 2
  if (n >= gib) return `${Number((n / gib).toFixed(1))} GB`
  if (n >= mib) return `${Number((n / mib).toFixed(1))} MB`
  return `${n} bytes`
}

/**
 * What a full Redis does to sessions. Every key the app writes has a TTL, so every policy but `noeviction` may evict
 * them when `maxmemory` is reached: volatile-* as much as allkeys-*. An evicted session or token set signs its user
 * out; an evicted session index (a user's list of sessions, read least often) leaves devices signed in after "sign out
 * everywhere"; an evicted refresh lock lets a second instance refresh with a refresh token the first is already using (with
 * rotation and reuse detection the provider then revokes the grant). Under noeviction a full Redis refuses writes
 * instead (sign-ins and refreshes answer 503) and keeps everyone signed in; signed-in requests go on.
 */
function evictionCheck (m: RedisMemory): DoctorCheck {
  const name = 'Redis eviction'
  if (!m.readable) {
    return ok(name, `not checked (${m.refused}): make sure this Redis's maxmemory-policy is noeviction, or a full Redis evicts sessions, token sets and refresh locks`)
  }
  if (m.policy === 'noeviction') {
    return m.maxmemory === '0'
      ? ok(name, 'maxmemory-policy noeviction, maxmemory 0 (no limit): nothing is evicted')
      : ok(name, `maxmemory-policy noeviction (maxmemory ${bytes(m.maxmemory)}): nothing is evicted; when full, sign-ins and refreshes answer 503 until there is room, so keep maxmemory above what sessions need`)
  }
  if (m.maxmemory === '0') {
    return ok(name, `maxmemory 0 (no limit): nothing is evicted; should a limit be set, set maxmemory-policy noeviction with it (${m.policy} would evict sessions)`)
  }
  const volatile = m.policy.startsWith('volatile-') ? ' (every key this app writes has a TTL, so a volatile-* policy evicts them too)' : ''
  return warn(name, `maxmemory-policy ${m.policy} (maxmemory ${bytes(m.maxmemory)}): a full Redis evicts sessions, token sets and refresh locks${volatile}, ` +
    'signing users out; an evicted session index (read least often, so first to go under an LRU policy) has "sign out everywhere" ' +
    'leave other devices signed in; and a lost refresh lock lets two instances refresh with the same refresh token; set maxmemory-policy noeviction, ' +
    'with enough maxmemory: a full Redis then refuses new sign-ins and refreshes (503) and keeps everyone signed in')
}

/**
 * Whether sessions survive a Redis restart. Token sets hold refresh tokens that the provider rotates: a Redis that
 * comes back without them (no persistence), or with an older snapshot (RDB only) that holds refresh tokens already
 * used, signs those users out.
 */
function persistenceCheck (p: RedisPersistence): DoctorCheck {
  const name = 'Redis persistence'
  if (!p.readable) {
    return ok(name, `not checked (${p.refused}): make sure this Redis keeps its data across a restart (appendonly yes), or every user must sign in again after one`)
  }
  if (p.appendonly === 'yes') {
    const loss = p.appendfsync === 'always'
      ? 'nothing acknowledged is lost'
      : p.appendfsync === 'everysec'
        ? 'a crash can lose about the last second of writes'
        : 'a crash can lose the writes the operating system had not flushed'
    return ok(name, `appendonly yes (appendfsync ${p.appendfsync}): sessions survive a Redis restart; ${loss}`)
  }
  if (p.save.trim() !== '') {
    return warn(name, `snapshots only (save "${p.save}", appendonly no): a restart brings back the last snapshot, and users who signed in or whose tokens were refreshed since must sign in again; set appendonly yes`)
  }
  return warn(name, 'this Redis persists nothing (appendonly no, save ""): a restart ends every session and every user must sign in again; set appendonly yes')
}

/**
 * Checks a configuration the way the example server reads it: the process
 * environment, with the env file filling what it leaves unset; then
 * `readConfig()`, the credentials, the session secret and encryption key, the provider's
 * reachability, the redirect URI against PUBLIC_URL, whether the provider
 * knows the client id with the redirect URI and with the secret, HTTPS, and Redis. The
 * network checks run concurrently; the report keeps a fixed order.
 */
export async function doctor (options: DoctorOptions): Promise<DoctorReport> {
  const opts = resolveDoctorOptions(options)
  const path = resolve(opts.cwd, opts.envFile)
  let file: EnvFile | Unreadable
  try {
    file = await readEnvFile(path)
  } catch (err) {
    if (!(err instanceof EnvFileError)) throw err
    file = { failure: err.message }
  }
  // A file named in the call (--env-file, --env, -e) that is not there: the configuration meant is elsewhere, and
  // checking the environment alone would report on another one. One line, nothing else checked.
  if (options.envFile !== undefined && !('failure' in file) && !file.exists) {
    return { checks: [fail('env file', `no file at ${path}: check the path (nothing else was checked)`)], ok: false, envFile: path }
  }
  const fileValues = 'failure' in file ? {} : file.values
  const env: Env = { ...fileValues }
  const overridden: string[] = []
  for (const [name, value] of Object.entries(opts.env)) {
    if (value === undefined) continue
    if (Object.hasOwn(fileValues, name) && fileValues[name] !== value) overridden.push(name)
    env[name] = value
  }
  const production = env.NODE_ENV === 'production'
  const fromVariable = set(opts.env, 'ENV_FILE') !== undefined

  const [{ provider, app }, redis] = await Promise.all([
    providerChecks(env, { timeoutMs: opts.timeoutMs, dispatcher: opts.dispatcher }),
    redisChecks(env, opts.timeoutMs)
  ])
  const configuration = configurationCheck(env)
  const own = [...credentialChecks(env), sessionSecretCheck(env, production), tokenKeyCheck(env, production)]
  for (const check of own) if (check.status === 'fail') saying(check, [check.name])
  const redirect = redirectCheck(env)
  const https = httpsCheck(env, production)
  // The redirect URI cannot be checked because of the variable readConfig() refused: that line says it already.
  const unknownOrigin = publicUrlOf(env).variable
  const redirectLine = unknownOrigin !== undefined && unknownOrigin === configuration.variable ? [] : [redirect]
  if (configuration.variable === 'AIHUBMIX_REDIRECT_URI' && redirect.status === 'fail') saying(redirect, ['AIHUBMIX_REDIRECT_URI'])
  // One mistake, one FAIL line: a variable readConfig() refused that a failing check says in words of its own (of the
  // same kind of refusal) is said once, by that check.
  const saidBelow = [...own, provider, redirect, https, ...redis].some((c) => c.status === 'fail' && (SAYS.get(c) ?? []).some((said) =>
    said.variable === configuration.variable && (said.kind === undefined || said.kind === configuration.kind)))
  const checks = [
    envFileCheck(file, fromVariable, overridden),
    ...malformedChecks(file),
    ...cutSecretChecks(file, opts.env),
    ...unreadVariables(env).map((line) => warn(line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1).replace(/^is /, ''))),
    ...(saidBelow ? [] : [configuration.check]),
    ...own,
    provider,
    ...redirectLine,
    ...app,
    ...metricsChecks(env, configuration.variable),
    https,
    ...redis
  ]
  return { checks, ok: !checks.some((c) => c.status === 'fail'), envFile: path }
}
