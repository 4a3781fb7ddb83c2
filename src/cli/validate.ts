import { isIP } from 'node:net'

/**
 * Argument rules of `create-app`, checked before any request is made. Each
 * function answers why a value is refused (a phrase to follow the argument's
 * name), or null when it is fine.
 */

export const MAX_NAME_LENGTH = 100
export const MAX_DESCRIPTION_LENGTH = 1000
export const MAX_URL_LENGTH = 2000

/** Hosts for which a plain-http redirect URI is accepted (development on this machine). */
const DEV_REDIRECT_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/
/** `host:port...` without `scheme://` (`localhost:3000/auth/callback`, `app.example:8443`). */
const HOST_AND_PORT = /^[^:/?#]+:\d/

/**
 * What a browser keeps on this machine: localhost, *.localhost, 127.0.0.0/8 and ::1 (bracketed or not). For the URLs
 * only a browser opens (PUBLIC_URL, the redirect URI): browsers resolve every *.localhost name to loopback themselves.
 */
export function isLoopbackHost (hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return h.endsWith('.localhost') || isNodeLoopbackHost(h)
}

/**
 * What Node.js itself reaches on this machine: `localhost` exactly, 127.0.0.0/8 and ::1 (bracketed or not). Not
 * *.localhost: Node.js asks the system's resolver for those names, and glibc passes them on to network DNS, so a
 * plain-http request to one may leave the machine. For the URLs this process connects to (the provider's).
 */
export function isNodeLoopbackHost (hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'))
}

/**
 * Why plain http to the provider's `url` is refused, for a host that is not `localhost` or a loopback address: one
 * phrase that names the fix, to follow the variable's or option's name. `rule` says when https is required.
 */
export function plainHttpProviderRefusal (url: URL, rule = 'must use https'): string {
  const dns = url.hostname.toLowerCase().endsWith('.localhost')
    ? ` (${url.hostname} is not: Node.js resolves *.localhost names through DNS, so the request may leave this machine)`
    : ''
  return `${rule} unless it is http://localhost or a loopback address${dns}: use https://, or http://localhost or http://127.0.0.1 for a provider on this machine`
}

export function nameProblem (name: string): string | null {
  if (name.trim() === '') return 'must not be empty'
  if (name.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`
  if (CONTROL.test(name)) return 'must not contain control characters or line breaks'
  return null
}

export function descriptionProblem (description: string): string | null {
  if (description.length > MAX_DESCRIPTION_LENGTH) return `must be at most ${MAX_DESCRIPTION_LENGTH} characters`
  return null
}

/**
 * RFC 6749 3.1.2 and the provider's rule 4: an absolute URL without a fragment,
 * https, or plain http only for localhost, 127.0.0.1 and [::1]. The value ends
 * up in an env file, so it must be printable ASCII without spaces.
 */
export function redirectUriProblem (uri: string): string | null {
  if (uri.length === 0) return 'must not be empty'
  if (uri.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`
  if (!PRINTABLE_ASCII.test(uri)) return 'must be printable ASCII without spaces (percent-encode anything else)'
  const notAbsolute = 'must be an absolute URL such as https://app.example/auth/callback (http:// only on loopback)'
  // `localhost:3000/auth/callback` parses, as a URL of the scheme `localhost:`: a host and port without a scheme
  // is not an absolute URL at all, and "must be an https URL" would not tell what is missing.
  if (HOST_AND_PORT.test(uri)) return notAbsolute
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return notAbsolute
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https URL'
  if (url.protocol === 'http:' && !DEV_REDIRECT_HOSTS.has(url.hostname)) {
    return 'must use https (plain http is accepted only for localhost, 127.0.0.1 and [::1])'
  }
  if (uri.includes('#')) return 'must not have a fragment (#...)'
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password'
  return null
}

/**
 * The provider's origin for app creation. The developer token travels with the
 * request, so plain http is only accepted for a loopback address (a local mock).
 */
export function baseUrlProblem (base: string): string | null {
  if (!PRINTABLE_ASCII.test(base)) return 'must be an absolute https URL'
  let url: URL
  try {
    url = new URL(base)
  } catch {
    return 'must be an absolute https URL, like https://api.aihubmix.com'
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https URL'
  if (url.protocol === 'http:' && !isNodeLoopbackHost(url.hostname)) {
    // The developer token goes with the request: plain http only where Node.js itself stays on this machine.
    return url.hostname.toLowerCase().endsWith('.localhost')
      ? plainHttpProviderRefusal(url)
      : 'must use https (plain http would send the developer token unencrypted; it is accepted only for localhost and loopback addresses such as 127.0.0.1)'
  }
  if (url.username !== '' || url.password !== '') return 'must not carry a user name or password'
  if (url.search !== '' || url.hash !== '' || base.includes('?') || base.includes('#')) return 'must not have a query or a fragment'
  const wrongPath = apiPathSuffix(url)
  if (wrongPath !== undefined) {
    return `must be the provider's origin, ${url.origin}, not a URL ending in ${wrongPath}: the endpoints (/api/oauth2/*, /api/oauth_apps) are added to it`
  }
  return null
}

/**
 * `/api`, `/api/oauth2` or `/v1` when the base URL's path ends in one (trailing slashes aside): the AI API's base or
 * a part of the endpoints' paths, easy to copy, which makes every endpoint a 404. Undefined for any other path.
 */
export function apiPathSuffix (url: URL): string | undefined {
  return /\/(api(\/oauth2)?|v1)$/.exec(url.pathname.replace(/\/+$/, ''))?.[0]
}

/** A developer token goes into an `Authorization` header: printable ASCII, no spaces. */
export function developerTokenProblem (token: string): string | null {
  if (token === '') return 'is empty'
  if (!PRINTABLE_ASCII.test(token)) return 'must be printable ASCII without spaces (check for a stray quote or line break)'
  return null
}

/** `https://host/prefix/` → `https://host/prefix` (endpoints are appended to it). */
export function normalizeBaseUrl (base: string): string {
  const url = new URL(base)
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

/**
 * A client id or secret as the provider issues them: printable ASCII, no spaces, no quotes around it. A copy-paste
 * or an env file whose quotes were kept (Docker's env_file, a Kubernetes secret) breaks that, and the provider then
 * refuses every sign-in as invalid_client.
 */
export function credentialLooksPasted (value: string): boolean {
  return !/^[\x21-\x7e]+$/.test(value) || /^['"]|['"]$/.test(value)
}

/**
 * A client id that is the client secret: one shaped as the provider issues secrets (`secret_...`), or the very value
 * of the secret (the two swapped, or the secret pasted twice). The client id goes to the browser in the sign-in URL.
 */
export function clientIdLooksSecret (id: string, secret: string | undefined): boolean {
  return id.startsWith('secret_') || (secret !== undefined && secret !== '' && id === secret)
}
