import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import { isLoopbackHost } from 'aihubmix-oauth'

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

function portOf (url: URL): string {
  return url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80'
}

/**
 * Adds the redirect to `app` when PUBLIC_URL is loopback: an `onRequest` hook of the routes of BROWSER_PATHS only
 * (added as they are registered, so call this before registering them), first among theirs, before any session is
 * read. No other route (the `/api` hot path) runs it.
 */
export function redirectOtherLoopbackNames (app: FastifyInstance, publicUrl: string): void {
  const target = new URL(publicUrl)
  if (!isLoopbackHost(target.hostname)) return
  const redirect: onRequestHookHandler = (request, reply, done) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      done()
      return
    }
    let seen: URL | undefined
    try {
      seen = new URL(`${request.protocol}://${request.host}`)
    } catch {
      seen = undefined
    }
    if (seen === undefined || seen.hostname === target.hostname || !isLoopbackHost(seen.hostname) || portOf(seen) !== portOf(target)) {
      done()
      return
    }
    // The path is one of BROWSER_PATHS: the Location stays at PUBLIC_URL's origin, its query as it came. Answered
    // here, so `done` is not called. Only an origin-form target (`/path?query`) is copied: an absolute-form one
    // (`GET http://x@evil.example/ HTTP/1.1`, which Fastify routes by its path) made `http://localhost:3000http://x@...`
    // (no browser sends one to an origin server; a security review found it), so its path and query are taken.
    const path = request.url.startsWith('/') ? request.url : pathAndQuery(request.url)
    reply.header('cache-control', 'no-store').redirect(`${target.origin}${path}`, 302)
  }
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat()
    if (!BROWSER_PATHS.has(route.url) || !methods.some((method) => method === 'GET' || method === 'HEAD')) return
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat()
    route.onRequest = [redirect, ...own]
  })
}

/** The path and query of an absolute-form request target, or `/` when it is not a URL. */
function pathAndQuery (target: string): string {
  try {
    const url = new URL(target)
    return `${url.pathname}${url.search}`
  } catch {
    return '/'
  }
}
