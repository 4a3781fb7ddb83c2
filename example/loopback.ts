import type { FastifyInstance } from 'fastify'

/**
 * One server, two loopback names: `npm start` listens on 127.0.0.1 and PUBLIC_URL says `http://localhost:3000` (or
 * the other way round), and a browser reaches the page under either name. Under the one that is not PUBLIC_URL's the
 * page loads, but a sign-in cannot finish: the login cookie is set for the name the page was opened at, the
 * provider sends the user back to PUBLIC_URL, where it is not sent (invalid_state), and the sign-in window is cut
 * off from the page that opened it (another origin). So what a user opens in the browser, the page and the start of
 * a sign-in, is sent to the same path at PUBLIC_URL first.
 *
 * Only then: a GET (or HEAD) of those paths, PUBLIC_URL itself on a loopback name, and a request whose host (as
 * Fastify reads it: X-Forwarded-Host from a trusted proxy) is another loopback name or address with the same port.
 * API calls, and every host that is not loopback (a reverse proxy's), are answered as they are.
 */

/** What a user opens in the browser: the page, and the sign-in's start (the popup, or the full-page fallback). */
const BROWSER_PATHS: ReadonlySet<string> = new Set(['/', '/auth/login'])

/** Whether `hostname` (as `URL` parses it, IPv6 in brackets) names this machine: localhost, 127.0.0.0/8, ::1. */
export function isLoopbackName (hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h)
}

function portOf (url: URL): string {
  return url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80'
}

/** The path of `url` (before its query) when it is one of BROWSER_PATHS. */
function isBrowserPath (url: string): boolean {
  const query = url.indexOf('?')
  return BROWSER_PATHS.has(query === -1 ? url : url.slice(0, query))
}

/**
 * Adds the redirect to `app` (an `onRequest` hook of the root, before any session is read) when PUBLIC_URL is loopback.
 * A callback-style hook: every request passes through it (the `/api` hot path too), and most leave at the first check
 * without a promise.
 */
export function redirectOtherLoopbackNames (app: FastifyInstance, publicUrl: string): void {
  const target = new URL(publicUrl)
  if (!isLoopbackName(target.hostname)) return
  app.addHook('onRequest', (request, reply, done) => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || !isBrowserPath(request.url)) {
      done()
      return
    }
    let seen: URL | undefined
    try {
      seen = new URL(`${request.protocol}://${request.host}`)
    } catch {
      seen = undefined
    }
    if (seen === undefined || seen.hostname === target.hostname || !isLoopbackName(seen.hostname) || portOf(seen) !== portOf(target)) {
      done()
      return
    }
    // The path is one of BROWSER_PATHS: the Location stays at PUBLIC_URL's origin, its query as it came. Answered
    // here, so `done` is not called.
    reply.header('cache-control', 'no-store').redirect(`${target.origin}${request.url}`, 302)
  })
}
