import type { FastifyReply, FastifyRequest } from 'fastify'

type OnSend = (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => void

/**
 * An onSend hook that gives @fastify/session's clearing of the session cookie the attributes the cookie was set with.
 *
 * @fastify/session clears the cookie of a session it did not find (ended on another device, expired, forged) with its
 * path and domain only: no Secure, no HttpOnly. A browser refuses such a line for a `__Host-` or `__Secure-` cookie,
 * so the dead cookie stayed for its whole max age, one store read on each request that sent it. The line is given
 * `HttpOnly`, `SameSite=Lax` and, where cookies are Secure (an https publicUrl), `Secure`, as oauth-routes' own logout
 * clears it. Only a clearing line (an empty value) of the session cookie is touched; it must run after
 * @fastify/session's onSend, which it does when registered after it in the same scope.
 */
export function sessionCookieClears (cookieName: string, secure: boolean): OnSend {
  const cleared = `${cookieName}=;`
  const mend = (line: string): string => {
    if (!line.startsWith(cleared)) return line
    const names = new Set(line.split(';').slice(1).map((part) => part.trim().split('=')[0]?.toLowerCase()))
    let mended = line
    if (!names.has('httponly')) mended += '; HttpOnly'
    if (!names.has('samesite')) mended += '; SameSite=Lax'
    if (secure && !names.has('secure')) mended += '; Secure'
    return mended
  }
  return function mendSessionCookieClears (_request, reply, payload, done) {
    const header = reply.getHeader('set-cookie')
    // removeHeader first: Fastify's reply.header() appends to a set-cookie header already there.
    if (Array.isArray(header)) {
      if (header.some((line) => line.startsWith(cleared))) reply.removeHeader('set-cookie').header('set-cookie', header.map(mend))
    } else if (typeof header === 'string' && header.startsWith(cleared)) {
      reply.removeHeader('set-cookie').header('set-cookie', mend(header))
    }
    done(null, payload)
  }
}
