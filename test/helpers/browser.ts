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
 * cookies per origin, and records every answer so a leak sweep can read them.
 */
export class TestBrowser {
  readonly cookies = new Map<string, Map<string, string>>()
  readonly answers: Answer[] = []

  cookieHeader (url: string): string | undefined {
    const jar = this.cookies.get(new URL(url).origin)
    if (jar === undefined || jar.size === 0) return undefined
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  private keep (url: string, setCookie: string | string[] | undefined): void {
    if (setCookie === undefined) return
    const origin = new URL(url).origin
    let jar = this.cookies.get(origin)
    if (jar === undefined) {
      jar = new Map()
      this.cookies.set(origin, jar)
    }
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair] = line.split(';')
      const eq = (pair ?? '').indexOf('=')
      if (eq <= 0) continue
      const name = (pair as string).slice(0, eq).trim()
      const value = (pair as string).slice(eq + 1).trim()
      const expired = /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0/i.test(line) || value === ''
      if (expired) jar.delete(name)
      else jar.set(name, value)
    }
  }

  async fetch (url: string, init: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...(init.headers ?? {}) }
    const cookie = this.cookieHeader(url)
    if (cookie !== undefined && headers.cookie === undefined) headers.cookie = cookie
    const res = await request(url, { method: init.method ?? 'GET', headers, body: init.body })
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
