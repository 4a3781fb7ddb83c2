import { MOCK_SCOPES, type MockScope, type MockUser } from './options.js'
import { newSecret, s256Challenge, secretEquals } from './secrets.js'

/**
 * One authorization of one app by the user: every token it produced dies with it (reuse of its
 * code, reuse of a rotated refresh token, the user revoking the app).
 */
interface Grant {
  clientId: string
  scopes: MockScope[]
  revoked: boolean
  /** Who authorized it (the user signed in at the provider then). */
  user: MockUser
}

interface CodeRecord {
  clientId: string
  redirectUri: string
  scopes: MockScope[]
  /** S256 code challenge, when the authorization request carried one. */
  challenge: string | null
  expiresAt: number
  /** Set by the first successful exchange; a second one revokes it (RFC 6749 4.1.2). */
  grant: Grant | null
  user: MockUser
}

interface AccessRecord { grant: Grant, scopes: MockScope[], expiresAt: number }
interface RefreshRecord { grant: Grant, expiresAt: number, used: boolean }

/** A successful token answer (RFC 6749 5.1). */
export interface TokenAnswer {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  refresh_token?: string
  scope: string
}

export type TokenErrorCode = 'invalid_request' | 'invalid_grant' | 'invalid_scope'
export type TokenResult =
  | { ok: true, answer: TokenAnswer }
  | { ok: false, error: TokenErrorCode, description: string, reuse?: true }

export interface GrantSettings {
  tokenPrefix: string
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
  codeTtlSeconds: number
}

/** RFC 7636 4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/

function fail (error: TokenErrorCode, description: string): TokenResult {
  return { ok: false, error, description }
}

/** Scopes in the provider's canonical order, space separated. */
export function scopeString (scopes: readonly MockScope[]): string {
  return MOCK_SCOPES.filter((s) => scopes.includes(s)).join(' ')
}

/**
 * Parses a `scope` parameter: a space-separated subset of the known scopes. Returns null when it
 * names an unknown scope; an absent or empty parameter is `fallback`.
 */
export function parseScope (value: string | undefined, fallback: readonly MockScope[]): MockScope[] | null {
  const words = (value ?? '').split(' ').filter((w) => w !== '')
  if (words.length === 0) return [...fallback]
  if (!words.every((w): w is MockScope => (MOCK_SCOPES as readonly string[]).includes(w))) return null
  return MOCK_SCOPES.filter((s) => words.includes(s))
}

/** Codes, grants and tokens of one provider instance. Nothing is ever deleted (see `issued()`). */
export class GrantBook {
  readonly #settings: GrantSettings
  readonly #codes = new Map<string, CodeRecord>()
  readonly #access = new Map<string, AccessRecord>()
  readonly #refresh = new Map<string, RefreshRecord>()
  readonly #grants = new Set<Grant>()

  constructor (settings: GrantSettings) {
    this.#settings = settings
  }

  issueCode (request: { clientId: string, redirectUri: string, scopes: MockScope[], challenge: string | null, user: MockUser }): string {
    const code = newSecret('code', this.#settings.tokenPrefix)
    this.#codes.set(code, {
      ...request,
      scopes: [...request.scopes],
      expiresAt: Date.now() + this.#settings.codeTtlSeconds * 1000,
      grant: null
    })
    return code
  }

  /** `grant_type=authorization_code`, for an already authenticated client. */
  exchangeCode (clientId: string, params: { code: string, redirectUri: string, verifier: string | undefined }): TokenResult {
    const record = this.#codes.get(params.code)
    if (record === undefined || record.clientId !== clientId) {
      return fail('invalid_grant', 'the authorization code is invalid')
    }
    if (record.grant !== null) {
      // RFC 6749 4.1.2: a code used twice revokes every token it gave
      record.grant.revoked = true
      return fail('invalid_grant', 'the authorization code was already used')
    }
    if (record.expiresAt <= Date.now()) return fail('invalid_grant', 'the authorization code has expired')
    if (record.redirectUri !== params.redirectUri) {
      return fail('invalid_grant', 'redirect_uri differs from the authorization request')
    }
    if (record.challenge !== null) {
      // RFC 7636 4.6
      if (params.verifier === undefined) return fail('invalid_grant', 'code_verifier is required')
      if (!VERIFIER.test(params.verifier) || !secretEquals(s256Challenge(params.verifier), record.challenge)) {
        return fail('invalid_grant', 'code_verifier does not match the code challenge')
      }
    } else if (params.verifier !== undefined) {
      // RFC 9700 2.1.1: a verifier for a code issued without a challenge is refused. Ignoring it would let an attacker
      // strip the challenge from an authorization request and inject the code it yields into a session of their own.
      return fail('invalid_grant', 'code_verifier sent for a code issued without code_challenge')
    }
    const grant: Grant = { clientId, scopes: record.scopes, revoked: false, user: record.user }
    this.#grants.add(grant)
    record.grant = grant
    return { ok: true, answer: this.#tokens(grant, grant.scopes, true) }
  }

  /** `grant_type=refresh_token`, for an already authenticated client. */
  refresh (clientId: string, params: { refreshToken: string, scope: string | undefined, rotate: boolean, reuseRevokes: boolean }): TokenResult {
    const record = this.#refresh.get(params.refreshToken)
    if (record === undefined || record.grant.clientId !== clientId) {
      return fail('invalid_grant', 'the refresh token is invalid')
    }
    const { grant } = record
    if (record.used) {
      // Counted (see `reuse`) even when the grant is already revoked: every reuse is a client bug or a theft.
      if (params.reuseRevokes) grant.revoked = true
      return { ok: false, error: 'invalid_grant', description: 'the refresh token was already used', reuse: true }
    }
    if (grant.revoked) return fail('invalid_grant', 'the grant was revoked')
    if (record.expiresAt <= Date.now()) return fail('invalid_grant', 'the refresh token has expired')
    // RFC 6749 6: a narrower scope may be asked for; omitted means all that was granted
    const scopes = parseScope(params.scope, grant.scopes)
    if (scopes === null || !scopes.every((s) => grant.scopes.includes(s))) {
      return fail('invalid_scope', 'the requested scope exceeds the granted scope')
    }
    if (params.rotate) record.used = true
    return { ok: true, answer: this.#tokens(grant, scopes, params.rotate) }
  }

  #tokens (grant: Grant, scopes: MockScope[], withRefresh: boolean): TokenAnswer {
    const { tokenPrefix, accessTokenTtlSeconds, refreshTokenTtlSeconds } = this.#settings
    const now = Date.now()
    const accessToken = newSecret('at', tokenPrefix)
    this.#access.set(accessToken, { grant, scopes, expiresAt: now + accessTokenTtlSeconds * 1000 })
    let refreshToken: string | undefined
    if (withRefresh) {
      refreshToken = newSecret('rt', tokenPrefix)
      this.#refresh.set(refreshToken, { grant, expiresAt: now + refreshTokenTtlSeconds * 1000, used: false })
    }
    return {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: accessTokenTtlSeconds,
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      scope: scopeString(scopes)
    }
  }

  /** The scopes of a live access token, or null when it is unknown, expired or revoked. */
  accessScopes (accessToken: string): MockScope[] | null {
    const record = this.#access.get(accessToken)
    if (record === undefined || record.grant.revoked || record.expiresAt <= Date.now()) return null
    return record.scopes
  }

  /** The user a live access token speaks for, or null (as accessScopes). */
  accessUser (accessToken: string): MockUser | null {
    return this.accessScopes(accessToken) === null ? null : this.#access.get(accessToken)?.grant.user ?? null
  }

  expireAccessTokens (): void {
    for (const record of this.#access.values()) record.expiresAt = 0
  }

  expireRefreshTokens (): void {
    for (const record of this.#refresh.values()) record.expiresAt = 0
  }

  /**
   * RFC 7009 2.1, for an authenticated client: a live refresh token of its own revokes its whole grant (every token it
   * gave), a live access token of its own only itself. What it names: unknown, another client's, or already dead
   * tokens (revoked, expired, a refresh token used by a rotation) are `'unknown'` and change nothing (answered 200
   * all the same, RFC 7009 2.2: the token is already invalid).
   */
  revoke (clientId: string, token: string): 'refresh_token' | 'access_token' | 'unknown' {
    const now = Date.now()
    const refresh = this.#refresh.get(token)
    if (refresh !== undefined && refresh.grant.clientId === clientId && !refresh.grant.revoked && !refresh.used && refresh.expiresAt > now) {
      refresh.grant.revoked = true
      return 'refresh_token'
    }
    const access = this.#access.get(token)
    if (access !== undefined && access.grant.clientId === clientId && !access.grant.revoked && access.expiresAt > now) {
      access.expiresAt = 0
      return 'access_token'
    }
    return 'unknown'
  }

  /** The user revokes every app in the provider's user center. */
  revokeAll (): void {
    for (const grant of this.#grants) grant.revoked = true
  }

  issued (): { accessTokens: string[], refreshTokens: string[], codes: string[] } {
    return {
      accessTokens: [...this.#access.keys()],
      refreshTokens: [...this.#refresh.keys()],
      codes: [...this.#codes.keys()]
    }
  }
}
