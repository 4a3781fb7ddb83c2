import { errors, type Dispatcher } from 'undici'
import { UpstreamBodyTooLargeError, UpstreamTimeoutError } from './errors.js'

/**
 * Cancels an upstream call: an AbortSignal, or (cheaper per request) an object with `aborted` and EventEmitter's
 * `on`/`once`/`removeListener` for `abort` (an EventEmitter, or anything with those).
 */
export type UpstreamSignal = AbortSignal | EmitterSignal

/** The EventEmitter side of an UpstreamSignal. */
export interface EmitterSignal {
  readonly aborted: boolean
  on (event: 'abort', listener: () => void): unknown
  once (event: 'abort', listener: () => void): unknown
  removeListener (event: 'abort', listener: () => void): unknown
}

/** One answer of the provider, read whole. */
export interface RawAnswer {
  statusCode: number
  /** The body as UTF-8 text. */
  text: string
  /** The first `Retry-After` header, when there is one. */
  retryAfter: string | undefined
}

export interface ExchangeRequest {
  origin: string
  path: string
  method: 'GET' | 'POST'
  headers: Record<string, string>
  body: string | undefined
  timeoutMs: number
  maxBodyBytes: number
  signal: UpstreamSignal | undefined
  /**
   * 0: the call fails at `timeoutMs` (UpstreamTimeoutError) and is torn down. More: the call's promise still fails
   * at `timeoutMs`, with an UpstreamTimeoutError that carries the answer's `late` reading (LateAnswer), and the call
   * goes on for at most `graceMs` more (client.ts: the refresh grant, whose answer carries the only copy of the
   * rotated refresh token).
   */
  graceMs?: number | undefined
}

/**
 * The rest of a call whose deadline passed while it was kept (`graceMs`): `answer` settles with the answer, read
 * whole, or fails (UpstreamTimeoutError at `timeoutMs + graceMs`, or as a call fails); `cancel` ends it at once.
 */
export interface LateAnswer {
  readonly answer: Promise<RawAnswer>
  cancel (err: Error): void
}

/** The LateAnswer an exchange's UpstreamTimeoutError carries, when its call was kept past the deadline. */
export function lateAnswerOf (err: unknown): LateAnswer | undefined {
  return typeof err === 'object' && err !== null ? lateAnswers.get(err) : undefined
}

/** Kept beside the errors, not on them: an error is logged and published, a pending answer is nobody's business. */
const lateAnswers = new WeakMap<object, LateAnswer>()

type AbortFn = (err: Error) => void

/**
 * One call to the provider on undici's dispatcher interface, read into a string as it arrives. What
 * `dispatcher.request()` adds around the same call (an AsyncResource, a Readable for the body and the reading of
 * it, a second listener and closure for the signal) showed in the proxy's CPU profile, for an answer of a few
 * hundred bytes that is read whole anyway. The same limits hold: a declared Content-Length above `maxBodyBytes` is
 * refused before the body is read, a body that grows past it while it arrives is cut there, and the signal cancels
 * the call (with undici's RequestAbortedError, as before).
 *
 * `timeoutMs` is a deadline for the whole call, from dispatch (waiting for a connection of the pool included) to
 * the last byte of the body: one timer per call, cleared when the call settles, fails the call with
 * UpstreamTimeoutError and tears the request down. undici's headersTimeout and bodyTimeout are idle timers (each
 * byte that arrives starts them again): a provider that trickles its answer a byte at a time kept a call, the
 * refresh every request of the session joined, and the refresh lock renewed for it, waiting for as long as it
 * trickled. One plain timer costs a Timeout object and a list insert and unlink on the timer list of its duration
 * (the same for every call); AbortSignal.timeout would add an AbortSignal, its listener and a weak reference per
 * call on the hot path.
 *
 * This is the part both handler interfaces share: the plugin's own Pool (undici 7) is driven through the handler
 * interface it runs natively (RawExchange: raw header buffers, no objects built), a dispatcher of the caller's
 * through the one every undici from 7 on accepts (ControlledExchange: undici 8 knows no other).
 */
abstract class Exchange {
  readonly #maxBodyBytes: number
  #resolve: (answer: RawAnswer) => void
  #reject: (err: Error) => void
  readonly #signal: UpstreamSignal | undefined
  #timeoutMs: number
  /** Still to be granted after the deadline (0 once granted, or when none was asked for). */
  #graceMs: number
  #deadline: NodeJS.Timeout | null
  #abort: AbortFn | null = null
  #settled = false
  #statusCode = 0
  #retryAfter: string | undefined = undefined
  #first: Buffer | null = null
  #more: Buffer[] | null = null
  #size = 0

  constructor (request: ExchangeRequest, resolve: (answer: RawAnswer) => void, reject: (err: Error) => void) {
    this.#maxBodyBytes = request.maxBodyBytes
    this.#resolve = resolve
    this.#reject = reject
    this.#timeoutMs = request.timeoutMs
    this.#graceMs = request.graceMs ?? 0
    this.#deadline = setTimeout(expire, request.timeoutMs, this)
    const signal = request.signal
    this.#signal = signal
    if (signal !== undefined) {
      if ('addEventListener' in signal) signal.addEventListener('abort', this.cancel, { once: true })
      else signal.once('abort', this.cancel)
    }
  }

  /** The signal's listener: one per call. */
  readonly cancel = (): void => {
    this.fail(new errors.RequestAbortedError())
  }

  /**
   * The whole-call deadline passed (the timer's callback, `expire`). Each turn of the event loop runs its timers
   * before it reads the sockets: after the loop was held up past the deadline, the answer may be waiting there,
   * read a moment later in the same turn. The call fails after that (setImmediate runs once this turn's I/O was
   * read), unless the answer completed it meanwhile.
   */
  expired (): void {
    this.#deadline = null
    if (!this.#settled) setImmediate(timedOut, this)
  }

  /**
   * The deadline passed and this turn's I/O did not complete the call: it fails, and is torn down; or, with a grace,
   * its promise fails (the same UpstreamTimeoutError) while the call goes on, now settling its LateAnswer, until
   * the grace is over too.
   */
  timedOut (): void {
    if (this.#settled) return
    const grace = this.#graceMs
    if (grace <= 0) {
      this.fail(new UpstreamTimeoutError(this.#timeoutMs))
      return
    }
    this.#graceMs = 0
    const err = new UpstreamTimeoutError(this.#timeoutMs)
    const failCallers = this.#reject
    const answer = new Promise<RawAnswer>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // Whoever is handed the LateAnswer may drop it: its failure is then nobody's to report.
    answer.catch(() => {})
    lateAnswers.set(err, { answer, cancel: (why) => { this.fail(why) } })
    this.#timeoutMs += grace
    this.#deadline = setTimeout(expire, grace, this)
    failCallers(err)
  }

  /** The request is on its way; `abort` tears it down. */
  protected started (abort: AbortFn): void {
    if (this.#settled) abort(new errors.RequestAbortedError())
    else this.#abort = abort
  }

  /**
   * The answer's status and the two headers it needs (each the first of its name; `lengths`: how many
   * Content-Length headers came). false: refused, the call is over.
   */
  protected headers (statusCode: number, contentLength: string | undefined, lengths: number, retryAfter: string | undefined): boolean {
    this.#statusCode = statusCode
    this.#retryAfter = retryAfter
    // One declared length above the cap: refused before a byte of the body is read.
    if (lengths === 1 && Number(contentLength) > this.#maxBodyBytes) {
      this.fail(new UpstreamBodyTooLargeError(this.#maxBodyBytes))
      return false
    }
    return true
  }

  /** A part of the body. false: the call is over (the cap was passed, or it ended otherwise). */
  protected data (chunk: Buffer): boolean {
    if (this.#settled) return false
    this.#size += chunk.length
    if (this.#size > this.#maxBodyBytes) {
      this.fail(new UpstreamBodyTooLargeError(this.#maxBodyBytes))
      return false
    }
    if (this.#first === null) this.#first = chunk
    else (this.#more ??= [this.#first]).push(chunk)
    return true
  }

  protected end (): void {
    if (this.#settled) return
    const more = this.#more
    const body = more !== null ? Buffer.concat(more, this.#size) : this.#first
    this.#settle()
    this.#resolve({ statusCode: this.#statusCode, text: body === null ? '' : body.toString('utf8'), retryAfter: this.#retryAfter })
  }

  /** The dispatcher's report of a failure (also of one this side caused: then already settled, ignored). */
  protected error (err: Error): void {
    if (this.#settled) return
    this.#settle()
    this.#reject(err)
  }

  /** Ends the call with `err`: rejected now, and the request torn down (undici then reports it, ignored). */
  fail (err: Error): void {
    if (this.#settled) return
    this.#settle()
    this.#reject(err)
    const abort = this.#abort
    this.#abort = null
    abort?.(err)
  }

  #settle (): void {
    this.#settled = true
    this.#first = null
    this.#more = null
    const deadline = this.#deadline
    if (deadline !== null) {
      this.#deadline = null
      clearTimeout(deadline)
    }
    const signal = this.#signal
    if (signal === undefined) return
    if ('removeEventListener' in signal) signal.removeEventListener('abort', this.cancel)
    else signal.removeListener('abort', this.cancel)
  }
}

/** The deadline timer's callback: one function for every call (the exchange comes as the timer's argument). */
function expire (exchange: Exchange): void {
  exchange.expired()
}

function timedOut (exchange: Exchange): void {
  exchange.timedOut()
}

/** undici 7's native handler interface: raw header name and value buffers, read without building an object. */
class RawExchange extends Exchange {
  onConnect (abort: AbortFn): void {
    this.started(abort)
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[] | string[] | null, _resume: () => void): boolean {
    // 1xx: informational, the answer is still to come.
    if (statusCode < 200) return true
    let contentLength: string | undefined
    let lengths = 0
    let retryAfter: string | undefined
    if (rawHeaders !== null) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        const name = rawHeaders[i] as Buffer | string
        if (headerIs(name, 'content-length')) {
          if (lengths++ === 0) contentLength = String(rawHeaders[i + 1])
        } else if (retryAfter === undefined && headerIs(name, 'retry-after')) {
          retryAfter = String(rawHeaders[i + 1])
        }
      }
    }
    return this.headers(statusCode, contentLength, lengths, retryAfter)
  }

  onData (chunk: Buffer): boolean {
    return this.data(chunk)
  }

  onComplete (): void {
    this.end()
  }

  onError (err: Error): void {
    this.error(err)
  }
}

/** The controller interface (undici 7 wraps it, undici 8 has only it): headers as an object. */
class ControlledExchange extends Exchange {
  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.started((err) => { controller.abort(err) })
  }

  onResponseStart (_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return
    const length = headers['content-length']
    const retryAfter = headers['retry-after']
    this.headers(statusCode, firstOf(length), length === undefined ? 0 : Array.isArray(length) ? length.length : 1, firstOf(retryAfter))
  }

  onResponseData (_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.data(chunk)
  }

  onResponseEnd (): void {
    this.end()
  }

  onResponseError (_controller: Dispatcher.DispatchController, err: Error): void {
    this.error(err)
  }
}

function firstOf (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** `name` (a raw header name, any case) is `lower` (lower case ASCII). */
function headerIs (name: Buffer | string, lower: string): boolean {
  const length = lower.length
  if (name.length !== length) return false
  if (typeof name === 'string') return name.toLowerCase() === lower
  for (let i = 0; i < length; i++) {
    const want = lower.charCodeAt(i)
    const byte = name[i] as number
    // A letter in either case (| 0x20 lower-cases an ASCII letter); anything else exactly.
    if (byte !== want && !(want >= 0x61 && want <= 0x7a && (byte | 0x20) === want)) return false
  }
  return true
}

/**
 * One exchange with the provider on `dispatcher`; rejects with undici's errors (or UpstreamBodyTooLargeError, or
 * UpstreamTimeoutError when the whole call took longer than `timeoutMs`) as they come. `own`: the dispatcher is the plugin's own undici 7 Pool (its native handler interface), else a caller's.
 */
export function dispatchExchange (dispatcher: Dispatcher, own: boolean, request: ExchangeRequest): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    if (request.signal?.aborted === true) {
      reject(new errors.RequestAbortedError())
      return
    }
    const handler = own ? new RawExchange(request, resolve, reject) : new ControlledExchange(request, resolve, reject)
    // undici's dispatchers report every failure to onError; a dispatcher of the caller's might throw instead.
    try {
      dispatcher.dispatch({
        origin: request.origin,
        path: request.path,
        method: request.method,
        headers: request.headers,
        body: request.body ?? null,
        // undici's own idle timers stay, as long as the call may last (its grace included): the deadline above is
        // what bounds the whole call.
        headersTimeout: request.timeoutMs + (request.graceMs ?? 0),
        bodyTimeout: request.timeoutMs + (request.graceMs ?? 0)
      }, handler)
    } catch (err) {
      handler.fail(err instanceof Error ? err : new Error(String(err)))
    }
  })
}
