import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

/** A token set as the token store keeps it (provider-agnostic). */
export interface TokenSet {
  accessToken: string
  refreshToken?: string | undefined
  /** 'Bearer' */
  tokenType: string
  /** Epoch ms when the access token expires. */
  expiresAt: number
  /** Scopes actually granted. */
  scope: string[]
  /** Epoch ms when the set was obtained. */
  obtainedAt: number
  /**
   * Epoch ms after which the set is not kept: the end of the session it belongs to (oauth-routes sets it to the
   * sign-in time plus `absoluteTimeoutMs`). The store's TTL never goes past it, and a refresh keeps it. Without it
   * a set is kept for `refreshTokenTtlMs` after its last save, however long ago its session ended.
   */
  notAfter?: number | undefined
}

/**
 * Provider call that trades a refresh token for a new set. Throw `RefreshRejectedError` when the provider refused
 * the grant for good (invalid_grant, invalid_client); any other throw is transient, and may carry
 * `retryAfterMs` (a number: the provider's Retry-After) to set how long the session backs off. A result without
 * `refreshToken` means "keep the old one". It must settle: give it a timeout.
 *
 * Its promise is what the waiting requests get. A refresher whose deadline for them passed while the provider call
 * itself goes on (the provider may have rotated the refresh token already: its answer is the only copy of the new
 * one) rejects with an error that carries `lateRefresh`: a promise that settles as a refresher's would, with the
 * call's own outcome, and must settle too (bound it). token-store then answers the waiting requests with that
 * error, keeps the refresh lock and starts no other refresh of the session until `lateRefresh` settles, and stores
 * its set as any refresh result (aihubmix-proxy's `refreshGraceMs`).
 */
export type Refresher = (refreshToken: string) => Promise<TokenSet>

export interface GetFreshOptions {
  /**
   * Refresh even if not inside the skew window (used after a provider 401); except a set that a forced refresh
   * stored less than `forcedRefreshIntervalMs` ago, whose access token is the refused one: it is returned as it is
   * (that refresh did not mend the 401; another would only rotate the refresh token again).
   */
  force?: boolean | undefined
  /**
   * With force: the access token that got the 401. After taking the lock, if the stored access token differs
   * from this one, another request already refreshed: the stored set is used. Without it, `force` compares with
   * the access token that was stored when the call started.
   */
  staleAccessToken?: string | undefined
  /**
   * With force: the provider had accepted `staleAccessToken` before it refused it (aihubmix-proxy says so when the
   * retry right after the refresh that gave it was accepted: a token merely accepted by another endpoint is not enough). A token that worked and is then refused was dropped by the provider (a restart, a key rotation), even
   * when a forced refresh gave it moments ago: it is refreshed, once the forced refresh is a second old, where
   * `forcedRefreshIntervalMs` would hand it back refused. At most one refresh a second, however the provider behaves.
   */
  staleAccepted?: boolean | undefined
}

/** The run-time check of a token set (extra properties are allowed and kept). */
export const TokenSetSchema = Type.Object({
  accessToken: Type.String({ minLength: 1 }),
  refreshToken: Type.Optional(Type.String()),
  tokenType: Type.String({ minLength: 1 }),
  expiresAt: Type.Number(),
  scope: Type.Array(Type.String()),
  obtainedAt: Type.Number(),
  notAfter: Type.Optional(Type.Number())
})

const checker = TypeCompiler.Compile(TokenSetSchema)

export function isTokenSet (value: unknown): value is TokenSet {
  return checker.Check(value)
}

/** The first problem with a would-be token set, as `path: message` (no values), or undefined when valid. */
export function tokenSetProblem (value: unknown): string | undefined {
  const first = checker.Errors(value).First()
  return first === undefined ? undefined : `${first.path === '' ? '(set)' : first.path}: ${first.message}`
}

/** A copy without an empty refresh token (an empty string is treated as "none"). */
export function normalizeTokenSet (set: TokenSet): TokenSet {
  if (set.refreshToken !== undefined && set.refreshToken !== '') return { ...set }
  const { refreshToken: _omit, ...rest } = set
  return rest
}

/**
 * How long before `expiresAt` a set is refreshed: `skewMs`, or half of the access token's whole life
 * (`expiresAt - obtainedAt`) when that is shorter, so that a short-lived token is refreshed about every half
 * life instead of on every request. A set whose life cannot be told (obtainedAt not before expiresAt) gets `skewMs`.
 */
export function refreshWindowMs (set: Pick<TokenSet, 'expiresAt' | 'obtainedAt'>, skewMs: number): number {
  const life = set.expiresAt - set.obtainedAt
  return life > 0 ? Math.min(skewMs, life / 2) : skewMs
}

/**
 * The `lateRefresh` a refresher's error carries (a promise, or any thenable: see Refresher), else undefined: the
 * refresh goes on after its callers were answered.
 */
export function lateRefreshOf (err: unknown): Promise<unknown> | undefined {
  const value = typeof err === 'object' && err !== null && 'lateRefresh' in err ? err.lateRefresh : undefined
  if (typeof value !== 'object' || value === null || typeof (value as { then?: unknown }).then !== 'function') return undefined
  return Promise.resolve(value as PromiseLike<unknown>)
}

/** The `retryAfterMs` a refresher's transient error carries (a finite number >= 0), else undefined. */
export function retryAfterOf (err: unknown): number | undefined {
  const value = typeof err === 'object' && err !== null && 'retryAfterMs' in err ? err.retryAfterMs : undefined
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}
