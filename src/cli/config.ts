import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { closest } from './option-errors.js'
import { clientIdLooksSecret, credentialLooksPasted, isLoopbackHost, isNodeLoopbackHost, plainHttpProviderRefusal } from './validate.js'

/**
 * The example server's configuration, read from the environment (every variable and
 * its default are listed in this package's README). A bad or unsafe value throws a ConfigError whose
 * message is one line naming the variable; the server never starts half-configured.
 */
export class ConfigError extends Error {
  constructor (readonly variable: string, problem: string) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
  }
}

/**
 * The kind of a refusal that doctor also says on a line of its own (HTTPS, provider), so that one mistake is one FAIL
 * line: 'https' (plain http outside loopback in production), 'path' (a provider URL ending in /api, /api/oauth2 or
 * /v1), 'required' (no provider in production), 'unusable' (empty, or not a usable http(s) URL). Read with refusalKind(); not a part
 * of ConfigError's own surface.
 */
export type RefusalKind = 'https' | 'path' | 'required' | 'unusable'

const KINDS = new WeakMap<ConfigError, RefusalKind>()

/** A ConfigError of a kind doctor can tell apart (see RefusalKind). */
function refuse (variable: string, kind: RefusalKind, problem: string): ConfigError {
  const err = new ConfigError(variable, problem)
  KINDS.set(err, kind)
  return err
}

/** The kind of a refusal readConfig() threw, when doctor says that kind on a line of its own; else undefined. */
export function refusalKind (err: ConfigError): RefusalKind | undefined {
  return KINDS.get(err)
}

export interface ProviderConfig {
  baseUrl: string
  clientId: string
  clientSecret: string
}

export interface ExampleConfig {
  port: number
  host: string
  publicUrl: string
  /** Set when AIHUBMIX_BASE_URL is given; undefined means "start the embedded mock provider". */
  provider: ProviderConfig | undefined
  redirectUri: string
  scope: string[]
  /** The secret that signs session cookies: SESSION_SECRET's first (`sessionSecrets[0]`). */
  sessionSecret: string
  /**
   * SESSION_SECRET's secrets, newest first (a comma-separated list, each trimmed; one secret is a list of one): the
   * first signs session cookies, every one verifies them. What @fastify/session's `secret` and token-store's
   * `sessionCookie.secret` take, so that rotating it (`<new>,<old>`) keeps every user signed in.
   */
  sessionSecrets: string[]
  /** True when SESSION_SECRET was not set and a random one was made for this process. */
  sessionSecretGenerated: boolean
  /**
   * True when PUBLIC_URL is plain http on a host other than loopback (allowed outside production, for a test): the
   * session cookie is then not Secure and the OAuth traffic is readable on the way.
   */
  plainHttpPublicUrl: boolean
  tokenEncryptionKeys: string[]
  redisUrl: string | undefined
  /** REDIS_CLIENT_CACHE=on: token-store's `redisClientCache` (needs REDIS_URL). */
  redisClientCache: boolean
  production: boolean
  /** TRUST_PROXY: Fastify's `trustProxy` (true, false, or addresses and subnets separated by commas). */
  trustProxy: string | boolean
  logLevel: string
  /** METRICS_PORT: the port of the Prometheus metrics listener (0: any free one); undefined: no metrics. */
  metricsPort: number | undefined
  /** METRICS_HOST: the address the metrics listener binds to. */
  metricsHost: string
}

type Env = Record<string, string | undefined>

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
const MIN_SECRET_LENGTH = 32

function readUrl (env: Env, name: string, fallback?: string): URL {
  const raw = env[name] ?? fallback
  if (raw === undefined || raw === '') throw refuse(name, 'unusable', 'is required')
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw refuse(name, 'unusable', 'is not an absolute URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse(name, 'unusable', 'must be an http: or https: URL')
  if (url.username !== '' || url.password !== '') throw refuse(name, 'unusable', 'must not contain credentials')
  return url
}

function nonEmpty (env: Env, name: string): string | undefined {
  const value = env[name]
  if (value === undefined) return undefined
  if (value.trim() === '') throw refuse(name, 'unusable', 'is set but empty')
  return value
}

/**
 * Where a listener listens (`HOST`, `METRICS_HOST`; 127.0.0.1 when unset), as Node's `listen()` takes it: a host name or
 * a bare IP address. A URL, a bracketed IPv6 address or a host with a port would otherwise pass here and stop the
 * server later with `getaddrinfo ENOTFOUND`, a line that names no variable.
 */
export function listenHost (env: Env, name: 'HOST' | 'METRICS_HOST'): string {
  const host = env[name] ?? '127.0.0.1'
  if (isIP(host) !== 0 || /^[\w-]+(?:\.[\w-]+)*\.?$/.test(host)) return host
  const example = 'e.g. 127.0.0.1, ::1, 0.0.0.0 or localhost'
  if (/^\[.*\]$/.test(host)) throw new ConfigError(name, `must be an address without brackets: ${host.slice(1, -1)}`)
  if (host.includes('://')) throw new ConfigError(name, `must be a host name or address, not a URL (${example})`)
  if (/^[\w.-]+:\d+$/.test(host)) throw new ConfigError(name, `must be a host name or address without a port (${name === 'HOST' ? 'PORT' : 'METRICS_PORT'} sets the port)`)
  throw new ConfigError(name, `must be a host name or address (${example})`)
}

export function readConfig (env: Env = process.env): ExampleConfig {
  const production = env.NODE_ENV === 'production'

  const portRaw = env.PORT ?? '3000'
  if (!/^\d{1,5}$/.test(portRaw) || Number(portRaw) > 65535) throw new ConfigError('PORT', 'must be a port number (0-65535)')
  const port = Number(portRaw)
  const host = listenHost(env, 'HOST')

  const publicUrlParsed = readUrl(env, 'PUBLIC_URL', `http://localhost:${port}`)
  if (publicUrlParsed.pathname !== '/' || publicUrlParsed.search !== '' || publicUrlParsed.hash !== '') {
    throw new ConfigError('PUBLIC_URL', 'must be an origin only, like https://app.example.com')
  }
  // PUBLIC_URL and the redirect URI are opened by browsers only, which keep every *.localhost name on this machine.
  if (production && publicUrlParsed.protocol === 'http:' && !isLoopbackHost(publicUrlParsed.hostname)) {
    throw refuse('PUBLIC_URL', 'https', 'must be https in production')
  }
  const publicUrl = publicUrlParsed.origin

  let provider: ProviderConfig | undefined
  const baseRaw = nonEmpty(env, 'AIHUBMIX_BASE_URL')
  if (baseRaw !== undefined) {
    const base = readUrl(env, 'AIHUBMIX_BASE_URL')
    // What aihubmix-proxy refuses at start too, but naming its option (baseUrl), not the variable to fix.
    if (base.search !== '' || base.hash !== '' || baseRaw.includes('#')) throw new ConfigError('AIHUBMIX_BASE_URL', 'must not have a query or a fragment')
    const wrongPath = /\/(api(\/oauth2)?|v1)\/*$/.exec(base.pathname)
    if (wrongPath !== null) {
      throw refuse('AIHUBMIX_BASE_URL', 'path', `ends in ${wrongPath[0].replace(/\/+$/, '')}, but the endpoints are <base URL>/api/oauth2/*, so every call ` +
        `would miss: use the provider's origin without that path (${base.origin})`)
    }
    // The server calls the provider, and resolves a *.localhost name through DNS like any other: only `localhost`
    // itself and loopback addresses stay on this machine.
    if (base.protocol === 'http:' && !isNodeLoopbackHost(base.hostname) && production) {
      throw refuse('AIHUBMIX_BASE_URL', 'https', plainHttpProviderRefusal(base, 'must be https in production'))
    }
    const clientId = nonEmpty(env, 'AIHUBMIX_CLIENT_ID')
    if (clientId === undefined) throw new ConfigError('AIHUBMIX_CLIENT_ID', 'is required when AIHUBMIX_BASE_URL is set')
    const clientSecret = nonEmpty(env, 'AIHUBMIX_CLIENT_SECRET')
    if (clientSecret === undefined) throw new ConfigError('AIHUBMIX_CLIENT_SECRET', 'is required when AIHUBMIX_BASE_URL is set')
    // The provider would refuse every sign-in as invalid_client; aihubmix-proxy refuses it at start too, but names
    // its option, not the variable to fix.
    for (const [variable, value] of [['AIHUBMIX_CLIENT_ID', clientId], ['AIHUBMIX_CLIENT_SECRET', clientSecret]] as const) {
      if (credentialLooksPasted(value)) {
        throw new ConfigError(variable, 'contains spaces, quotes or control characters (a copy-paste error, or quotes kept from an env file?): remove them')
      }
    }
    if (clientIdLooksSecret(clientId, clientSecret)) {
      throw new ConfigError('AIHUBMIX_CLIENT_ID', 'looks like the client secret (secret_..., or the same as AIHUBMIX_CLIENT_SECRET): are ' +
        'AIHUBMIX_CLIENT_ID and AIHUBMIX_CLIENT_SECRET swapped? The client id goes to the browser in the sign-in URL')
    }
    provider = { baseUrl: base.href.replace(/\/+$/, ''), clientId, clientSecret }
  } else if (production) {
    throw refuse('AIHUBMIX_BASE_URL', 'required', 'is required in production (the embedded mock provider is for development)')
  }

  const redirect = readUrl(env, 'AIHUBMIX_REDIRECT_URI', `${publicUrl}/auth/callback`)
  if ((env.AIHUBMIX_REDIRECT_URI ?? '').includes('#')) {
    throw new ConfigError('AIHUBMIX_REDIRECT_URI', 'must not have a fragment (#...): OAuth 2.0 forbids one in a redirect URI')
  }
  if (production && redirect.protocol === 'http:' && !isLoopbackHost(redirect.hostname)) {
    throw refuse('AIHUBMIX_REDIRECT_URI', 'https', 'must be https in production')
  }
  // Said here, not only by doctor's redirect check: doctor reported the configuration "accepted by the example
  // server" and then that the server refuses to start with it.
  const refusal = redirectRefusal(env.AIHUBMIX_REDIRECT_URI ?? redirect.href, redirect, publicUrl)
  if (refusal !== undefined) throw new ConfigError('AIHUBMIX_REDIRECT_URI', refusal)

  const scopeRaw = env.AIHUBMIX_SCOPE ?? 'profile balance'
  const scope = scopeRaw.split(' ').filter((s) => s !== '')
  // A comma is legal in a scope name (RFC 6749), so the proxy accepts "profile,balance" as ONE scope, which the
  // provider refuses (invalid_scope) on every sign-in: the other list variables here take commas, this one does not.
  if (scope.some((s) => s.includes(','))) {
    throw new ConfigError('AIHUBMIX_SCOPE', `scopes are separated by spaces, not commas: write "${scope.join(',').split(',').filter((s) => s !== '').join(' ')}"`)
  }
  if (scope.length === 0 || scope.some((s) => !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s))) {
    throw new ConfigError('AIHUBMIX_SCOPE', 'must be space-separated scope names, e.g. "profile balance"')
  }

  // SESSION_SECRET: one secret, or several separated by commas, newest first (the first signs, all verify: rotation),
  // as the root README's snippet and the plugins' log lines say.
  const secretRaw = env.SESSION_SECRET
  let sessionSecrets: string[]
  let sessionSecretGenerated = false
  if (secretRaw === undefined || secretRaw === '') {
    if (production) throw new ConfigError('SESSION_SECRET', 'is required in production (at least 32 characters)')
    sessionSecrets = [randomBytes(32).toString('base64url')]
    sessionSecretGenerated = true
  } else {
    const read = readSessionSecrets(secretRaw)
    if ('problem' in read) throw new ConfigError('SESSION_SECRET', read.problem)
    if (secretRaw.length < MIN_SECRET_LENGTH) throw new ConfigError('SESSION_SECRET', `must be at least ${MIN_SECRET_LENGTH} characters`)
    sessionSecrets = read.secrets
  }
  const sessionSecret = sessionSecrets[0] as string

  // TOKEN_ENCRYPTION_KEY: one key, or several separated by commas (the first
  // encrypts, all decrypt: key rotation). Defaults to SESSION_SECRET's secrets, in
  // their order, from each of which token-store derives a distinct key: rotating
  // SESSION_SECRET as <new>,<old> then keeps the stored token sets readable too.
  const keyRaw = env.TOKEN_ENCRYPTION_KEY
  let tokenEncryptionKeys: string[]
  if (keyRaw === undefined || keyRaw === '') {
    tokenEncryptionKeys = [...sessionSecrets]
  } else {
    tokenEncryptionKeys = keyRaw.split(',').map((k) => k.trim())
    for (const [i, key] of tokenEncryptionKeys.entries()) {
      const problem = encryptionKeyProblem(key)
      if (problem !== undefined) {
        throw new ConfigError('TOKEN_ENCRYPTION_KEY', tokenEncryptionKeys.length === 1 ? problem : `key ${i + 1} of ${tokenEncryptionKeys.length}: ${problem}`)
      }
    }
  }

  let redisUrl: string | undefined
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') {
    const problem = redisUrlProblem(env.REDIS_URL)
    if (problem !== undefined) throw new ConfigError('REDIS_URL', problem)
    redisUrl = env.REDIS_URL
  }

  const cacheRaw = env.REDIS_CLIENT_CACHE ?? ''
  if (cacheRaw !== '' && cacheRaw !== 'on' && cacheRaw !== 'off') throw new ConfigError('REDIS_CLIENT_CACHE', 'must be on or off')
  const redisClientCache = cacheRaw === 'on'
  if (redisClientCache && redisUrl === undefined) throw new ConfigError('REDIS_CLIENT_CACHE', 'on needs REDIS_URL (the in-memory stores have nothing to cache)')

  const trustRaw = env.TRUST_PROXY ?? 'loopback'
  let trustProxy: string | boolean = trustRaw
  if (trustRaw === 'true') trustProxy = true
  else if (trustRaw === 'false' || trustRaw === '') trustProxy = false
  else if (/^\d{1,2}$/.test(trustRaw)) {
    // Fastify would read it as the address 0.0.0.1, not as a number of proxies: trusted nothing, silently.
    throw new ConfigError('TRUST_PROXY', 'a number of proxies is not read here (it would be taken for an address): list the proxies\' addresses or subnets (e.g. 10.0.0.0/8), or loopback')
  } else {
    // Fastify hands a list to proxy-addr, which throws `invalid IP address: ...` at start: a line naming no variable.
    const problem = trustProxyProblem(trustRaw)
    if (problem !== undefined) {
      throw new ConfigError('TRUST_PROXY', `${problem}: it must be true, false, or addresses and subnets separated by commas (e.g. loopback, 10.0.0.0/8)`)
    }
  }

  const logLevel = env.LOG_LEVEL ?? 'info'
  if (!LOG_LEVELS.has(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${[...LOG_LEVELS].join(', ')}`)

  // Metrics have a listener of their own (never the public port): set METRICS_PORT to turn it on.
  const metricsRaw = env.METRICS_PORT ?? ''
  let metricsPort: number | undefined
  if (metricsRaw !== '') {
    if (!/^\d{1,5}$/.test(metricsRaw) || Number(metricsRaw) > 65535) throw new ConfigError('METRICS_PORT', 'must be a port number (0-65535), or unset for no metrics listener')
    metricsPort = Number(metricsRaw)
    if (metricsPort !== 0 && metricsPort === port) throw new ConfigError('METRICS_PORT', 'must differ from PORT: metrics are never served on the public listener')
  }
  const metricsHost = listenHost(env, 'METRICS_HOST')

  return {
    port,
    host,
    publicUrl,
    provider,
    redirectUri: redirect.href,
    scope,
    sessionSecret,
    sessionSecrets,
    sessionSecretGenerated,
    plainHttpPublicUrl: publicUrlParsed.protocol === 'http:' && !isLoopbackHost(publicUrlParsed.hostname),
    tokenEncryptionKeys,
    redisUrl,
    redisClientCache,
    production,
    trustProxy,
    logLevel,
    metricsPort,
    metricsHost
  }
}

/**
 * Why the example server refuses to start with this redirect URI, or undefined: it serves its callback at PUBLIC_URL's
 * origin + /auth/callback, and oauth-routes (checkRedirectUri, RedirectUriMismatchError, registered by example/app.ts)
 * refuses any other, as an app built from the README's snippet does. `shown` is the URI as the variable gives it.
 * Shared by readConfig and doctor's redirect check, so both say it in the same words.
 */
export function redirectRefusal (shown: string, redirect: URL, publicOrigin: string): string | undefined {
  const served = `${publicOrigin}/auth/callback`
  if (redirect.origin + redirect.pathname === served) return undefined
  const where = redirect.origin !== publicOrigin ? `is not on PUBLIC_URL's origin ${publicOrigin}` : 'is not the callback route /auth/callback'
  return `${shown} ${where}: the example server refuses to start with it (its callback is ${served}). ` +
    `Fix: set PUBLIC_URL to the origin browsers use for the app, or unset AIHUBMIX_REDIRECT_URI and register ${served} as the app's redirect URI`
}

/**
 * A prefix that reads like a key format but is neither of token-store's two (`base64url:`, `b64:`, `HEX:`): the key
 * is then a passphrase, which token-store says at start too. The prefix only, never the key.
 */
export function keyPrefixSlip (key: string): string | undefined {
  if (key.startsWith('base64:') || key.startsWith('hex:')) return undefined
  return /^(?:base64url|base64|b64url|b64|base32|base16|hex)\s*:/i.exec(key)?.[0]
}

/**
 * SESSION_SECRET as the example server reads it: secrets separated by commas, newest first, each trimmed and, in a
 * list, at least 32 characters; or why it is refused (one phrase naming the fix: lengths and positions, never a
 * secret). The length of a single secret is the caller's to check (MIN_SECRET_LENGTH). A value with a blank or a
 * quote at its very start or end is refused whole: quotes kept from an env file, a line break from a secret store,
 * and another instance that trims nothing would sign with another secret. Shared with doctor.
 */
export function readSessionSecrets (raw: string): { secrets: string[] } | { problem: string } {
  if (/^[\s"']|[\s"']$/.test(raw)) {
    return { problem: 'has a blank or a quote at its start or end (quotes kept from an env file?): remove them, so that the value is the secret alone' }
  }
  const secrets = raw.split(',').map((s) => s.trim())
  // One secret's length is said by each caller in its own words (readConfig: "must be at least 32 characters").
  if (secrets.length === 1) return { secrets }
  for (const [i, secret] of secrets.entries()) {
    const which = `secret ${i + 1} of ${secrets.length} (newest first, separated by commas)`
    if (secret === '') return { problem: `${which} is empty: remove the extra comma` }
    if (/^["']|["']$/.test(secret)) return { problem: `${which} has a quote at its start or end: remove it, so that each secret is the secret alone` }
    if (secret.length < MIN_SECRET_LENGTH) {
      return { problem: `${which} is ${secret.length} characters; each needs at least ${MIN_SECRET_LENGTH} (a secret with a comma in it must be replaced: openssl rand -base64 48)` }
    }
  }
  return { secrets }
}

/**
 * Why the example server would not start with this REDIS_URL, or undefined: what token-store refuses, and what
 * ioredis under it would stop the start with in words that name no variable (`URI malformed`). One phrase naming
 * the fix, which never quotes the URL: it may hold a password. Shared with doctor's Redis check, which says the same.
 */
export function redisUrlProblem (raw: string): string | undefined {
  // Passed to token-store as it is, which refuses what the URL parser would have dropped (ioredis' does not).
  if (raw.trim() !== raw || /^['"]|['"]$/.test(raw)) {
    return 'has spaces, line breaks or quotes around it (a copy-paste, or quotes kept from an env file?): remove them, so that the value is the URL alone'
  }
  let parsed: URL | undefined
  try {
    parsed = new URL(raw)
  } catch {}
  if (parsed === undefined || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
    return userInfoCutShort(raw) ?? 'must be a redis:// or rediss:// URL'
  }
  if (!/^\/?(\d{1,5})?$/.test(parsed.pathname)) {
    return userInfoCutShort(raw) ?? 'its path must be a database number (redis://host:6379/0), or nothing'
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) {
    return 'has spaces or control characters in it: remove them (a password with a space is written %20)'
  }
  // ioredis percent-decodes the user name and the password, and a % that starts no %XX of UTF-8 stopped the start
  // with `URI malformed` (and doctor with an unexpected failure).
  for (const [part, value] of [['user name', parsed.username], ['password', parsed.password]] as const) {
    try {
      decodeURIComponent(value)
    } catch {
      return `its ${part} is not valid percent-encoding (a % must start an escape such as %40 for @): write each % in the ${part} as %25`
    }
  }
  for (const [name, value] of parsed.searchParams) {
    const accepts = Object.hasOwn(REDIS_URL_QUERY, name) ? REDIS_URL_QUERY[name] : undefined
    // A name is shown only when it cannot be a part of a password pasted in the wrong place.
    const shown = /^[A-Za-z][A-Za-z0-9]{0,40}$/.test(name) ? ` ${name}` : ''
    if (accepts === undefined) {
      return `its query parameter${shown} is not one token-store reads: remove it (only ${Object.keys(REDIS_URL_QUERY).join(', ')} are)`
    }
    if (!accepts.test(value)) return `its ${name} must be ${name === 'family' ? '4 or 6' : 'true or false'}`
  }
  return undefined
}

/**
 * For a REDIS_URL the parser refused or read wrong that has the shape redis://user:password@host, with a `#`, `/` or
 * `?` before the host's `@`: written as is there, each ends the URL's user info early (the rest becomes a port, a path,
 * a query or a fragment). Says which characters to escape, never which one the password holds.
 */
function userInfoCutShort (raw: string): string | undefined {
  const shape = /^rediss?:\/\/(.*)@((?:\[[0-9A-Fa-f:.]+\]|[\w.-]+)(?::\d*)?(?:\/\d*)?(?:\?[^#]*)?)$/s.exec(raw)
  if (shape === null || !/[#/?]/.test(shape[1] ?? '')) return undefined
  return 'looks like redis://user:password@host with a #, / or ? in its user name or password, which ends that part of the URL ' +
    'early: percent-encode them in it (# as %23, / as %2F, ? as %3F, and % as %25)'
}

/** The query parameters of REDIS_URL that token-store reads, and what each accepts (any other stops the start). */
const REDIS_URL_QUERY: Readonly<Record<string, RegExp>> = Object.freeze({ connectionName: /^/, family: /^[46]$/, enableOfflineQueue: /^(true|false)$/ })

/** Why Fastify's trustProxy (proxy-addr) would refuse a list of trusted addresses, or undefined. */
function trustProxyProblem (list: string): string | undefined {
  for (const entry of list.split(',').map((part) => part.trim())) {
    const shown = entry.length > 60 ? `${entry.slice(0, 60)}...` : entry
    if (entry === '') return 'has an empty entry'
    if (/^(loopback|linklocal|uniquelocal)$/.test(entry)) continue
    const [address = '', bits, ...more] = entry.split('/')
    const family = isIP(address)
    if (family === 0 || more.length > 0) return `${shown} is not an address, a subnet, loopback, linklocal or uniquelocal`
    if (bits === undefined) continue
    const prefixOk = /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
    if (!prefixOk && !(family === 4 && isIP(bits) === 4)) return `${shown} has no valid prefix length (0-${family === 4 ? 32 : 128})`
  }
  return undefined
}

/** Every variable readConfig() reads. */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze([
  'PORT', 'HOST', 'PUBLIC_URL', 'AIHUBMIX_BASE_URL', 'AIHUBMIX_CLIENT_ID', 'AIHUBMIX_CLIENT_SECRET', 'AIHUBMIX_REDIRECT_URI',
  'AIHUBMIX_SCOPE', 'SESSION_SECRET', 'TOKEN_ENCRYPTION_KEY', 'REDIS_URL', 'REDIS_CLIENT_CACHE', 'NODE_ENV', 'TRUST_PROXY',
  'LOG_LEVEL', 'METRICS_PORT', 'METRICS_HOST'
])
/** Names of this configuration's families: a set one that is none of its variables is looked at as a slip. */
const FAMILY = /^(AIHUBMIX|REDIS|SESSION|TOKEN|ENCRYPTION|METRICS?|PUBLIC|TRUST)_/i
/** Other tools' names for what one variable here holds. */
const OTHER_NAMES: Readonly<Record<string, string>> = Object.freeze({
  REDIS_HOST: 'REDIS_URL',
  REDIS_PORT: 'REDIS_URL',
  REDIS_PASSWORD: 'REDIS_URL',
  REDIS_DB: 'REDIS_URL',
  REDIS_TLS_URL: 'REDIS_URL',
  AIHUBMIX_API_BASE: 'AIHUBMIX_BASE_URL',
  AIHUBMIX_URL: 'AIHUBMIX_BASE_URL',
  AIHUBMIX_SECRET: 'AIHUBMIX_CLIENT_SECRET',
  AIHUBMIX_REDIRECT_URL: 'AIHUBMIX_REDIRECT_URI',
  ENCRYPTION_KEY: 'TOKEN_ENCRYPTION_KEY',
  TRUST_PROXIES: 'TRUST_PROXY',
  METRICS_ADDR: 'METRICS_HOST',
  METRICS_ADDRESS: 'METRICS_HOST',
  METRICS_BIND: 'METRICS_HOST',
  METRICS_LISTEN: 'METRICS_HOST',
  METRICS_LISTEN_ADDRESS: 'METRICS_HOST',
  METRIC_ADDR: 'METRICS_HOST',
  METRIC_HOST: 'METRICS_HOST'
})

/**
 * One line for each variable set in `env` that readConfig() does not read but that looks meant for one it reads that
 * is not set (`REDIS_URI`, `TOKEN_ENCRYPTION_KEYS`, `REDIS_HOST` without `REDIS_URL`): the example would start with
 * the default (in memory, a key made from SESSION_SECRET), and nothing said the value was ignored. Names only, never
 * a value.
 */
export function unreadVariables (env: Record<string, string | undefined>): string[] {
  const lines: string[] = []
  for (const name of Object.keys(env).sort()) {
    const value = env[name]
    if (value === undefined || value === '' || CONFIG_VARIABLES.includes(name) || !FAMILY.test(name)) continue
    // In any case: environment names are case-sensitive, and `redis_url` is not read either.
    const meant = OTHER_NAMES[name.toUpperCase()] ?? closest(name, CONFIG_VARIABLES)
    // Nothing when the one meant is set as well: the other is some other tool's (Kubernetes gives every pod
    // REDIS_PORT=tcp://... for a Service named redis).
    if (meant !== undefined && (env[meant] === undefined || env[meant] === '')) lines.push(`${name} is set but not read (did you mean ${meant}?)`)
  }
  return lines
}

/**
 * Why token-store would refuse `key` (as its key ring reads one: `base64:` of exactly 32 bytes, `hex:` and 64 hex
 * digits, else a passphrase of 32+ characters), or undefined. Says lengths, never the key.
 */
export function encryptionKeyProblem (key: string): string | undefined {
  if (/^["']|["']$/.test(key)) return 'a key with quotes around it (kept from an env file?): remove them'
  if (key.startsWith('base64:')) {
    const text = key.slice('base64:'.length)
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return 'a base64: key that is not base64'
    const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64').length
    return bytes === 32 ? undefined : `a base64: key of ${bytes} bytes; exactly 32 are needed (openssl rand -base64 32)`
  }
  if (key.startsWith('hex:')) {
    return /^[0-9a-fA-F]{64}$/.test(key.slice('hex:'.length)) ? undefined : 'a hex: key must be exactly 64 hex digits (openssl rand -hex 32)'
  }
  return key.length >= MIN_SECRET_LENGTH ? undefined : `${key.length} characters; at least ${MIN_SECRET_LENGTH} are needed (or base64:/hex: 32 bytes)`
}
