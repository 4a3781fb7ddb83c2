import { randomInt } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type {} from '@fastify/cookie'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { randomToken, TOKEN_PATTERN } from './pkce.js'

/** Pending logins one browser keeps at most; a login started beyond it drops the oldest. */
export const MAX_PENDING_LOGINS = 5
/** A validated `returnTo` longer than this is not carried through the login (the default is used instead). */
export const MAX_PENDING_RETURN_TO_LENGTH = 512
/**
 * Names a login cookie can have (`aihubmix-login-0` to `-9`): the most a browser can hold, whatever happens, about
 * 9 KB with the longest returnTo. Twice MAX_PENDING_LOGINS, so that logins started at the same moment (each picks a
 * free slot at random) seldom pick the same one: two at once, one time in ten at most.
 */
const SLOTS = 2 * MAX_PENDING_LOGINS
/** The state's alphabet (base64url): its first character names the login's slot (`slotOf`). */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** First characters that stand for each slot equally often (60 of the 64: 6 per slot). */
const SLOT_CHARACTERS = Math.floor(ALPHABET.length / SLOTS) * SLOTS
/**
 * Characters of the state in the name of a login cookie set before slots (8): still read at the callback, so that a
 * login started on an instance of an earlier version finishes on this one.
 */
const LEGACY_ID_LENGTH = 8
const LEGACY_ID = /^[A-Za-z0-9_-]{8}$/
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
 * One cookie per login, `aihubmix-login-<slot>`, `Max-Age=<state life>`, `HttpOnly`,
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
 * - several tabs each have their own cookie (in slots of their own, but for the odd collision of logins started at
 *   the very same moment), so logins started together finish on their own.
 * Single use is the callback's part: it clears the cookie in its answer, and claims the state in the store
 * before the code is exchanged (a replayed pair, from a lost answer or a captured cookie, is refused there).
 *
 * Bounds: a sealed value is at most about 830 characters (returnTo is capped), and a browser holds at most SLOTS
 * (10) of them, however many logins start at once: there are that many names (`aihubmix-login-0` to `-9`), and a
 * login's slot is the first character of its state (`slotOf`), chosen when the state is made (`newState`): one that
 * no pending login holds, at random. A small index cookie scoped to the login route (`[__Host-]aihubmix-logins`,
 * `Path=/` under https: the slots, oldest first; on http the login route cannot see cookies scoped to the callback)
 * says which slots are held, and a login that would make more than MAX_PENDING_LOGINS (5) expires the oldest. The
 * index is a hint, not a check: a lost or edited one, or logins started at the same moment (each reads the same
 * index), can only leave up to SLOTS cookies, or make a login replace another in its slot (that one then answers
 * invalid_state), never let a login through. (Before slots, each login had a cookie of its own name and logins
 * started together each added one, past any bound: the Cookie header grew until the server answered 431.)
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

  /** The name of the cookie that holds the pending login of `state`: its slot's. */
  nameOf (state: string): string {
    return this.#prefix + LOGIN_NAME + String(slotOf(state))
  }

  /**
   * A new login's state (256 random bits but for the first character, which names its slot: a slot no pending login
   * of this browser holds, at random, else the oldest's).
   */
  newState (request: FastifyRequest): string {
    const held = this.#index(request)
    const free = [...Array(SLOTS).keys()].filter((slot) => !held.includes(String(slot)))
    const slot = free.length > 0 ? free[randomInt(free.length)] as number : randomInt(SLOTS)
    return ALPHABET[slot + SLOTS * randomInt(SLOT_CHARACTERS / SLOTS)] + randomToken().slice(1)
  }

  /**
   * Sets the cookie of a new login (made by `newState`) in its slot, and expires the oldest pending logins when the
   * browser would hold more than MAX_PENDING_LOGINS.
   */
  issue (request: FastifyRequest, reply: FastifyReply, state: string, login: PendingLogin): void {
    const name = this.nameOf(state)
    const plaintext = JSON.stringify({ v: login.verifier, r: login.returnTo, m: login.mode, t: login.created })
    reply.setCookie(name, this.#sealer.seal(plaintext, context(name, state)), this.#attributes(this.#callbackPath, this.#maxAgeSeconds))
    const slot = String(slotOf(state))
    const held = this.#index(request).filter((known) => known !== slot)
    while (held.length >= MAX_PENDING_LOGINS) {
      const oldest = held.shift() as string
      reply.setCookie(this.#prefix + LOGIN_NAME + oldest, '', { ...this.#attributes(this.#callbackPath, 0), expires: new Date(0) })
    }
    held.push(slot)
    reply.setCookie(this.#indexName, held.join('.'), this.#attributes(this.#loginPath, this.#maxAgeSeconds))
  }

  /**
   * The pending login of `state` in this browser, or null (no cookie, tampered, swapped, expired). Its cookie is
   * cleared in the reply when it is this login's (it opens under this state, expired or not: it is never good twice),
   * or when it bears this state's own name (set before slots). A slot's cookie that does not open under this state
   * is another login's, which replaced this one in the slot: it is left for that login's callback.
   */
  take (request: FastifyRequest, reply: FastifyReply, state: string): PendingLogin | null {
    const found = this.#open(request, state)
    if (found === undefined) return null
    if (found.ours) reply.setCookie(found.name, '', { ...this.#attributes(this.#callbackPath, 0), expires: new Date(0) })
    return found.login
  }

  /** The pending login of `state` in this browser, or null, leaving its cookie as it is (see take). */
  peek (request: FastifyRequest, state: string): PendingLogin | null {
    return this.#open(request, state)?.login ?? null
  }

  /** The cookie this browser sent for `state` (undefined: none), whether it is this login's, and its login if valid. */
  #open (request: FastifyRequest, state: string): { name: string, ours: boolean, login: PendingLogin | null } | undefined {
    // Its slot's cookie, else (set by an earlier version, during a deploy) the one named by the state: also when the
    // slot's cookie is another login's.
    const cookies = request.cookies ?? {}
    let found: { name: string, ours: boolean, login: PendingLogin | null } | undefined
    for (const name of [this.nameOf(state), this.#prefix + LOGIN_NAME + state.slice(0, LEGACY_ID_LENGTH)]) {
      const sealed = cookies[name]
      if (sealed === undefined) continue
      found = this.#read(name, sealed, state, name !== this.nameOf(state))
      if (found.ours) return found
    }
    return found
  }

  /**
   * A login cookie opened for `state`: `ours` when it is this login's (it opens under this state), or is named by it
   * (`named`: set before slots); a slot's cookie that does not open is another login's.
   */
  #read (name: string, sealed: string, state: string, named: boolean): { name: string, ours: boolean, login: PendingLogin | null } {
    const plaintext = sealed.length > MAX_SEALED_LENGTH ? null : this.#sealer.unseal(sealed, context(name, state))
    if (plaintext === null) return { name, ours: named, login: null }
    let value: unknown
    try {
      value = JSON.parse(plaintext)
    } catch {
      return { name, ours: true, login: null }
    }
    if (!checkSealedLogin.Check(value) || Date.now() - value.t > this.#ttlMs) return { name, ours: true, login: null }
    return { name, ours: true, login: { verifier: value.v, returnTo: value.r, mode: value.m, created: value.t } }
  }

  /**
   * The pending logins of the index cookie, oldest first, each once: slots (`'0'` to `'9'`), and the 8-character ids
   * an earlier version writes (during a deploy both write the index: each login cookie it names is expired in turn,
   * whichever version set it). Anything else is ignored.
   */
  #index (request: FastifyRequest): string[] {
    const raw = request.cookies?.[this.#indexName]
    if (raw === undefined || raw.length > (LEGACY_ID_LENGTH + 1) * SLOTS * 2) return []
    const held: string[] = []
    for (const part of raw.split('.')) {
      const known = (/^\d$/.test(part) && Number(part) < SLOTS) || LEGACY_ID.test(part)
      if (known && !held.includes(part)) held.push(part)
    }
    return held.slice(-SLOTS)
  }

  #attributes (path: string, maxAge: number): { path: string, maxAge: number, httpOnly: true, sameSite: 'lax', secure: boolean } {
    return { path, maxAge, httpOnly: true, sameSite: 'lax', secure: this.#secure }
  }
}

/** A state's slot: its first character's place in the alphabet, modulo SLOTS. */
function slotOf (state: string): number {
  return Math.max(0, ALPHABET.indexOf(state.charAt(0))) % SLOTS
}

/** Associated data of a login cookie: its name and the whole state it was issued for. */
function context (name: string, state: string): string {
  return `login-cookie:${name}:${state}`
}
