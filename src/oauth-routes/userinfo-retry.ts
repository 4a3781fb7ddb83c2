import { UpstreamBusyError, UpstreamStatusError, UpstreamUnreachableError } from '@fastify-aihubmix/aihubmix-proxy'

/** The pause before the sign-in's second userinfo call, when the provider gave no Retry-After. */
export const USERINFO_RETRY_DELAY_MS = 250
/** The longest Retry-After the sign-in waits for before its second userinfo call; a longer one fails the sign-in. */
export const USERINFO_MAX_RETRY_AFTER_MS = 2000

/**
 * How long to wait before calling userinfo once more at sign-in, or undefined for a failure that another call
 * would not mend. The code is already exchanged, so a passing fault must not throw the grant away: the provider
 * busy (429/503, with a Retry-After of 2 s at most), a 5xx, or no connection. Not a timeout (the sign-in would
 * wait twice as long), a refused token or an answer that is not a user.
 */
export function userinfoRetryDelay (err: unknown): number | undefined {
  if (err instanceof UpstreamBusyError) {
    const after = err.retryAfterMs
    if (after === undefined) return USERINFO_RETRY_DELAY_MS
    return after <= USERINFO_MAX_RETRY_AFTER_MS ? after : undefined
  }
  if (err instanceof UpstreamStatusError) return err.upstreamStatus >= 500 ? USERINFO_RETRY_DELAY_MS : undefined
  if (err instanceof UpstreamUnreachableError) return USERINFO_RETRY_DELAY_MS
  return undefined
}
