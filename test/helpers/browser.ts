import { request } from 'undici'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  url: string
}

/**
 * A tiny cookie-keeping HTTP client that behaves like a browser for the flows
 * under test: it follows no redirect on its own (tests look at each hop), keeps
 * cookies per origin and sends each only under its `Path` (RFC 6265 path-match),
 * and records every answer so a leak sweep can read them.
 */
export class TestBrowser {
  /** origin → cookie name → value */
  readonly cookies = new Map<string, Map<string, string>>()
  /** origin → cookie name → Path */
  readonly paths = new Map<string, Map<string, string>>()
  readonly answers: Answer[] = []

  /** The Cookie header this browser sends to `url` (only the cookies whose Path matches its path). */
  cookieHeader (url: string): string | undefined {
    const { origin, pathname } = new URL(url)
    const jar = this.cookies.get(origin)
    const paths = this.paths.get(origin)
    if (jar === undefined) return undefined
    const sent = [...jar].filter(([name]) => pathMatches(pathname, paths?.get(name) ?? '/'))
    if (sent.length === 0) return undefined
    return sent.map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private keep (url: string, setCookie: string | string[] | undefined): void {
    if (setCookie === undefined) return
    const origin = new URL(url).origin
    let jar = this.cookies.get(origin)
    let paths = this.paths.get(origin)
    if (jar === undefined || paths === undefined) {
      jar = new Map()
      paths = new Map()
      this.cookies.set(origin, jar)
      this.paths.set(origin, paths)
    }
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair] = line.split(';')
      const eq = (pair ?? '').indexOf('=')
      if (eq <= 0) continue
      const name = (pair as string).slice(0, eq).trim()
      const value = (pair as string).slice(eq + 1).trim()
      const expired = /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0(;|$)/i.test(line) || value === ''
      // RFC 6265 5.2.4: a Path attribute that does not start with "/" is the default path, the request's directory.
      const path = /;\s*path=(\/[^;]*)/i.exec(line)?.[1] ?? defaultPath(new URL(url).pathname)
      if (expired) {
        jar.delete(name)
        paths.delete(name)
      } else {
        jar.set(name, value)
        paths.set(name, path)
      }
    }
  }

  async fetch (url: string, init: { method?: 'GET' | 'POST' | 'DELETE' | undefined, headers?: Record<string, string> | undefined, body?: string | undefined } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...(init.headers ?? {}) }
    const cookie = this.cookieHeader(url)
    if (cookie !== undefined && headers.cookie === undefined) headers.cookie = cookie
    const res = await request(url, { method: init.method ?? 'GET', headers, body: init.body ?? null })
    const body = await res.body.text()
    this.keep(url, res.headers['set-cookie'])
    const answer: Answer = { status: res.statusCode, headers: res.headers, body, url }
    this.answers.push(answer)
    return answer
  }

  get (url: string, headers?: Record<string, string>): Promise<Answer> {
    return this.fetch(url, { headers })
  }

  post (url: string, headers?: Record<string, string>, body?: string): Promise<Answer> {
    return this.fetch(url, { method: 'POST', headers, body })
  }

  delete (url: string, headers?: Record<string, string>): Promise<Answer> {
    return this.fetch(url, { method: 'DELETE', headers })
  }

  /** Follows one redirect: the absolute URL of the `Location` of `answer`. */
  static location (answer: Answer): string {
    const loc = answer.headers.location
    if (typeof loc !== 'string') throw new Error(`expected a redirect, got ${answer.status}`)
    return new URL(loc, answer.url).href
  }

  /**
   * Every recorded answer of `origin` (default: all) as strings, for leak sweeps.
   * The provider's own redirect legitimately carries the code to the browser; the
   * app's answers must never carry any secret.
   */
  transcript (origin?: string): string[] {
    const out: string[] = []
    for (const a of this.answers) {
      if (origin !== undefined && new URL(a.url).origin !== origin) continue
      out.push(a.body)
      out.push(JSON.stringify(a.headers))
    }
    return out
  }
}

/** RFC 6265 5.1.4: does a request path match a cookie's Path? */
function pathMatches (requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
}

/** RFC 6265 5.1.4: the default Path, the request path up to its last "/". */
function defaultPath (requestPath: string): string {
  const last = requestPath.lastIndexOf('/')
  return last <= 0 ? '/' : requestPath.slice(0, last)
}
