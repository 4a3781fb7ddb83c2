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
 *
 * For a request whose cookie this instance could not verify (`keep`: signed with a secret it does not have), the
 * clearing line is dropped instead: the cookie is no session here, but it is one wherever the secret is known.
 */
export function sessionCookieClears (cookieName: string, secure: boolean, keep: (request: FastifyRequest) => boolean): OnSend {
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
  return function mendSessionCookieClears (request, reply, payload, done) {
    const header = reply.getHeader('set-cookie')
    const lines = Array.isArray(header) ? header : typeof header === 'string' ? [header] : []
    if (lines.some((line) => line.startsWith(cleared))) {
      const kept = keep(request) ? lines.filter((line) => !line.startsWith(cleared)) : lines.map(mend)
      // removeHeader first: Fastify's reply.header() appends to a set-cookie header already there.
      reply.removeHeader('set-cookie')
      if (kept.length > 0) reply.header('set-cookie', kept)
    }
    done(null, payload)
  }
}
