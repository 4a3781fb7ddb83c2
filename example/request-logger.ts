import type { FastifyBaseLogger, FastifyInstance } from 'fastify'

type Bindings = Record<string, unknown>
type LogFn = (...args: unknown[]) => void
type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** A pino logger as far as this file uses it. */
interface PinoLike extends FastifyBaseLogger {
  isLevelEnabled (level: string): boolean
}

/**
 * `request.log` without its cost until it writes: Fastify makes a pino child logger for every request (its
 * bindings serialised, its prototype chain and redaction set up), work done on every request even when nothing
 * is logged at the configured level, which is every request of a healthy server at `warn`. This stands in for
 * that child: a line at an enabled level makes the real child (once per request) and writes through it, with the
 * same bindings (the request id) and options; a line at a disabled level is dropped at once, as pino would.
 */
class LazyRequestLogger {
  readonly #parent: PinoLike
  readonly #bindings: Bindings
  readonly #options: object
  #child: FastifyBaseLogger | undefined

  constructor (parent: PinoLike, bindings: Bindings, options: object) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  #real (): FastifyBaseLogger {
    if (this.#child === undefined) this.#child = this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }

  #write (level: LevelName, args: unknown[]): void {
    // Once a child exists (a level was changed on it, or it wrote), it decides, as it would have alone.
    const child = this.#child
    if (child === undefined && !this.#parent.isLevelEnabled(level)) return
    const real = child ?? this.#real()
    ;(real[level] as LogFn).apply(real, args)
  }

  get level (): string {
    return this.#child?.level ?? this.#parent.level
  }

  set level (level: string) {
    this.#real().level = level
  }

  fatal (...args: unknown[]): void { this.#write('fatal', args) }
  error (...args: unknown[]): void { this.#write('error', args) }
  warn (...args: unknown[]): void { this.#write('warn', args) }
  info (...args: unknown[]): void { this.#write('info', args) }
  debug (...args: unknown[]): void { this.#write('debug', args) }
  trace (...args: unknown[]): void { this.#write('trace', args) }
  silent (): void {}

  /** pino's, for code that asks before it builds a line. */
  isLevelEnabled (level: string): boolean {
    return (this.#child as PinoLike | undefined ?? this.#parent).isLevelEnabled(level)
  }

  /** pino's: the bindings of this request's logger (the request id). */
  bindings (): Bindings {
    return (this.#real() as unknown as { bindings: () => Bindings }).bindings()
  }

  child (bindings: Bindings, options?: object): FastifyBaseLogger {
    return this.#real().child(bindings, options)
  }
}

/** Makes `app`'s request loggers lazy (see LazyRequestLogger); nothing changes when the logger is not pino's. */
export function useLazyRequestLoggers (app: FastifyInstance): void {
  if (typeof (app.log as Partial<PinoLike>).isLevelEnabled !== 'function') return
  app.setChildLoggerFactory(function lazyChild (logger, bindings, options) {
    return new LazyRequestLogger(logger as PinoLike, bindings, options) as unknown as FastifyBaseLogger
  })
}
