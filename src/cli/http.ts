import { Agent, request, type Dispatcher } from 'undici'
import { ProviderBadAnswerError, ProviderTimeoutError, ProviderUnreachableError, errorInfo } from './errors.js'

export interface HttpCall {
  url: string
  method: 'GET' | 'POST'
  headers?: Record<string, string>
  body?: string
  timeoutMs: number
  maxBodyBytes: number
  /** Used as is and not closed; without it an Agent is created for this call and destroyed after it. */
  dispatcher: Dispatcher | undefined
  /** Read the body (true) or discard it (false: only the status matters). */
  readBody: boolean
  /**
   * A body over `maxBodyBytes`: refused with ProviderBadAnswerError (the default), or cut at the cap and the rest
   * discarded (`truncate`: when only the beginning matters, e.g. an error page's first words).
   */
  overflow?: 'fail' | 'truncate'
}

export interface HttpAnswer {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  /** The body as UTF-8 text ('' when it was discarded). */
  text: string
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT'])

/** One short phrase for a network failure; never the error's message (it may quote a URL or header). */
export function describeNetworkError (err: unknown): string {
  const code = errorInfo(err).code ?? ''
  switch (code) {
    case 'ECONNREFUSED': return 'connection refused'
    case 'ENOTFOUND': return 'host not found (DNS)'
    case 'EAI_AGAIN': return 'DNS lookup failed (temporary)'
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED': return 'the connection closed before an answer'
    case 'EHOSTUNREACH':
    case 'ENETUNREACH': return 'network unreachable'
    case '': return 'network error'
  }
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL')) return `TLS error (${code})`
  return `network error (${code})`
}

function timedOut (err: unknown, signal: AbortSignal): boolean {
  if (signal.aborted) return true
  const code = errorInfo(err).code ?? ''
  return TIMEOUT_CODES.has(code)
}

/**
 * One HTTP call with a whole-call deadline, a body cap and no redirects
 * followed. Network failures and timeouts become ProviderUnreachableError and
 * ProviderTimeoutError; a body over the cap becomes ProviderBadAnswerError.
 */
export async function httpCall (call: HttpCall): Promise<HttpAnswer> {
  const origin = new URL(call.url).origin
  // The caller's dispatcher, or one of this call's own (destroyed when it ends).
  const own = call.dispatcher === undefined
    ? new Agent({ connect: { timeout: call.timeoutMs }, headersTimeout: call.timeoutMs, bodyTimeout: call.timeoutMs })
    : undefined
  const dispatcher: Dispatcher = call.dispatcher ?? own as Agent
  const deadline = new AbortController()
  const timer = setTimeout(() => { deadline.abort() }, call.timeoutMs)
  try {
    let answer: Dispatcher.ResponseData
    try {
      answer = await request(call.url, {
        method: call.method,
        headers: call.headers ?? {},
        body: call.body ?? null,
        dispatcher,
        signal: deadline.signal
      })
    } catch (err) {
      if (timedOut(err, deadline.signal)) throw new ProviderTimeoutError(origin, call.timeoutMs, { cause: err })
      throw new ProviderUnreachableError(origin, describeNetworkError(err), { cause: err })
    }
    const { statusCode, headers, body } = answer
    // A destroyed body emits 'error' (aborted): listen so it is not an uncaught one.
    const discard = (): void => {
      body.on('error', () => {})
      body.destroy()
    }
    if (!call.readBody) {
      discard()
      return { statusCode, headers, text: '' }
    }
    const truncate = call.overflow === 'truncate'
    const tooLarge = (): Error => new ProviderBadAnswerError(`the answer is larger than ${call.maxBodyBytes} bytes`)
    const declared = Number(headers['content-length'])
    if (!truncate && Number.isFinite(declared) && declared > call.maxBodyBytes) {
      discard()
      throw tooLarge()
    }
    const chunks: Buffer[] = []
    let size = 0
    try {
      for await (const chunk of body) {
        const piece = chunk as Buffer
        if (size + piece.length > call.maxBodyBytes) {
          discard()
          if (!truncate) throw tooLarge()
          chunks.push(piece.subarray(0, call.maxBodyBytes - size))
          break
        }
        size += piece.length
        chunks.push(piece)
      }
    } catch (err) {
      if (err instanceof ProviderBadAnswerError) throw err
      if (timedOut(err, deadline.signal)) throw new ProviderTimeoutError(origin, call.timeoutMs, { cause: err })
      throw new ProviderUnreachableError(origin, describeNetworkError(err), { cause: err })
    }
    return { statusCode, headers, text: Buffer.concat(chunks).toString('utf8') }
  } finally {
    clearTimeout(timer)
    if (own !== undefined) await own.destroy().catch(() => {})
  }
}
