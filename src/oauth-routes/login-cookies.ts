import type { FastifyReply, FastifyRequest } from 'fastify'
import type {} from '@fastify/cookie'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { TOKEN_PATTERN } from './pkce.js'

/** Pending logins one browser keeps at most; a login started beyond it drops the oldest. */
export const MAX_PENDING_LOGINS = 5
/** A validated `returnTo` longer than this is not carried through the login (the default is used instead). */
export const MAX_PENDING_RETURN_TO_LENGTH = 512
/** Characters of the state in a login cookie's name: 48 bits, enough to tell a handful of pending logins apart. */
const ID_LENGTH = 8
const ID_PATTERN = /^[A-Za-z0-9_-]{8}$/
const LOGIN_NAME = 'aihubmix-login-'
const INDEX_NAME = 'aihubmix-logins'
/** Longest sealed value a login cookie can hold (a longer one is refused before any decryption). */
const MAX_SEALED_LENGTH = 1024

/** What a login started and its callback needs: never readable by the page or the browser (sealed, HttpOnly). */
export interface PendingLogin {
  /** PKCE verifier */
  verifier: string
  /** validated returnTo */
  returnTo: string
  mode: 'popup' | 'redirect'
  /** epoch ms */
  created: number
}

const SealedLogin = Type.Object({
  v: Type.String({ pattern: TOKEN_PATTERN.source }),
  r: Type.String({ maxLength: MAX_PENDING_RETURN_TO_LENGTH }),
  m: Type.Union([Type.Literal('popup'), Type.Literal('redirect')]),
  t: Type.Integer({ minimum: 0 })
}, { additionalProperties: false })
const checkSealedLogin = TypeCompiler.Compile(SealedLogin)

/** The token store's sealing (AES-256-GCM with its key ring), as this module needs it. */
export interface Sealer {
  seal (plaintext: string, context: string): string
  unseal (sealed: string, context: string): string | null
}

export interface LoginCookiesOptions {
  /** `Secure`, the `__Host-` prefix and `Path=/` (the public URL is https). */
  secure: boolean
  /** Full path of the login route: the index cookie's `Path` on plain http. */
  loginPath: string
  /** Full path of the callback route: every login cookie's `Path` on plain http. */
  callbackPath: string
  ttlMs: number
  sealer: Sealer
}

/**
 * Pending logins live in the browser that started them, so a login that is never finished costs the
 * server nothing: no session, no record, no memory.
 *
 * One cookie per login, `aihubmix-login-<first 8 characters of the state>`, `Max-Age=<state life>`, `HttpOnly`,
 * `SameSite=Lax` (sent on the provider's top-level redirect back, not on cross-site subrequests). Under https it is
 * `__Host-aihubmix-login-…`, `Secure`, `Path=/`: a sibling host (`evil.example.com` beside `app.example.com`) can
 * set a cookie for the parent domain under any other name, `__Secure-` ones included, and so plant its own
 * pending login in a victim's browser and sign the victim into the attacker's account at the callback (login
 * CSRF); browsers let only the host itself set a `__Host-` cookie. On plain http (local development) nothing can
 * stop that, and the cookie keeps `Path=<callback>`. Its value is the verifier, returnTo, mode and creation time sealed with the
 * token-store key ring, with the cookie's name AND the full state as associated data. So:
 * - bound to the browser: another browser has no such cookie (login CSRF, code injection fail);
 * - a cookie renamed to another state's name, or paired with another state in the query (swapped), does not
 *   open; neither does a tampered one, nor one sealed under a key that left the ring;
 * - the page cannot read it (HttpOnly) and the browser cannot read the verifier (sealed);
 * - it expires twice: the cookie's `Max-Age`, and the sealed creation time checked at the callback;
 * - several tabs each have their own cookie, so logins started together finish on their own.
 * Single use is the callback's part: it clears the cookie in its answer, and claims the state in the store
 * before the code is exchanged (a replayed pair, from a lost answer or a captured cookie, is refused there).
 *
 * Bounds: a sealed value is at most about 830 characters (returnTo is capped), and a browser keeps at most
 * MAX_PENDING_LOGINS of them: on http the login route cannot see cookies scoped to the callback, so a small index
 * cookie scoped to the login route (`[__Host-]aihubmix-logins`, `Path=/` under https: the ids, oldest first) says
 * which to expire when a new login would pass the bound. The index is a hint, not a check: a lost or edited one can
 * only leave extra cookies until their `Max-Age`, never let a login through.
 */
export class LoginCookies {
  readonly #prefix: string
  readonly #indexName: string
  readonly #loginPath: string
  readonly #callbackPath: string
  readonly #maxAgeSeconds: number
  readonly #ttlMs: number
  readonly #secure: boolean
  readonly #sealer: Sealer

  constructor (options: LoginCookiesOptions) {
    // __Host- demands Secure, Path=/ and no Domain (see the class comment for why nothing weaker will do).
    this.#prefix = options.secure ? '__Host-' : ''
    this.#indexName = this.#prefix + INDEX_NAME
    this.#loginPath = options.secure ? '/' : options.loginPath
    this.#callbackPath = options.secure ? '/' : options.callbackPath
    this.#ttlMs = options.ttlMs
    this.#maxAgeSeconds = Math.ceil(options.ttlMs / 1000)
    this.#secure = options.secure
    this.#sealer = options.sealer
  }

  /** The name of the cookie that holds the pending login of `state`. */
  nameOf (state: string): string {
    return this.#prefix + LOGIN_NAME + state.slice(0, ID_LENGTH)
  }

  /** Sets the cookie of a new login; expires the oldest ones when the browser would hold more than the bound. */
  issue (request: FastifyRequest, reply: FastifyReply, state: string, login: PendingLogin): void {
    const name = this.nameOf(state)
    const plaintext = JSON.stringify({ v: login.verifier, r: login.returnTo, m: login.mode, t: login.created })
    reply.setCookie(name, this.#sealer.seal(plaintext, context(name, state)), this.#attributes(this.#callbackPath, this.#maxAgeSeconds))

    const id = state.slice(0, ID_LENGTH)
    const ids = this.#index(request).filter((known) => known !== id)
    while (ids.length >= MAX_PENDING_LOGINS) {
      const oldest = ids.shift() as string
      reply.setCookie(this.#prefix + LOGIN_NAME + oldest, '', { ...this.#attributes(this.#callbackPath, 0), expires: new Date(0) })
    }
    ids.push(id)
    reply.setCookie(this.#indexName, ids.join('.'), this.#attributes(this.#loginPath, this.#maxAgeSeconds))
  }

  /**
   * The pending login of `state` in this browser, or null (no cookie, tampered, swapped, expired). A cookie
   * that was there is cleared in the reply whatever it held: it is never good twice.
   */
  take (request: FastifyRequest, reply: FastifyReply, state: string): PendingLogin | null {
    const name = this.nameOf(state)
    if (request.cookies?.[name] === undefined) return null
    reply.setCookie(name, '', { ...this.#attributes(this.#callbackPath, 0), expires: new Date(0) })
    return this.peek(request, state)
  }

  /** The pending login of `state` in this browser, or null, leaving its cookie as it is (see take). */
  peek (request: FastifyRequest, state: string): PendingLogin | null {
    const name = this.nameOf(state)
    const sealed = request.cookies?.[name]
    if (sealed === undefined || sealed.length > MAX_SEALED_LENGTH) return null
    const plaintext = this.#sealer.unseal(sealed, context(name, state))
    if (plaintext === null) return null
    let value: unknown
    try {
      value = JSON.parse(plaintext)
    } catch {
      return null
    }
    if (!checkSealedLogin.Check(value)) return null
    if (Date.now() - value.t > this.#ttlMs) return null
    return { verifier: value.v, returnTo: value.r, mode: value.m, created: value.t }
  }

  /** The ids of the index cookie, oldest first (anything malformed is ignored). */
  #index (request: FastifyRequest): string[] {
    const raw = request.cookies?.[this.#indexName]
    if (raw === undefined || raw.length > (ID_LENGTH + 1) * MAX_PENDING_LOGINS * 2) return []
    return raw.split('.').filter((id) => ID_PATTERN.test(id)).slice(-MAX_PENDING_LOGINS)
  }

  #attributes (path: string, maxAge: number): { path: string, maxAge: number, httpOnly: true, sameSite: 'lax', secure: boolean } {
    return { path, maxAge, httpOnly: true, sameSite: 'lax', secure: this.#secure }
  }
}

/** Associated data of a login cookie: its name and the whole state it was issued for. */
function context (name: string, state: string): string {
  return `login-cookie:${name}:${state}`
}
