import type { FastifyRequest } from 'fastify'
import { ReauthRequiredError, errorInfo, type TokenSet } from '@fastify-aihubmix/token-store'
import { TokenEndpointError, UpstreamUnauthorizedError } from './errors.js'
import type { AihubmixClient, UpstreamSignal } from './client.js'

export type CallAsUser = <T>(
  request: FastifyRequest,
  call: (accessToken: string, signal?: UpstreamSignal) => Promise<T>,
  signal?: UpstreamSignal
) => Promise<T>

/**
 * Runs `call` with the signed-in user's access token: refreshed first when it is
 * inside the skew window; on a provider 401, refreshed once more (single flight,
 * shared with every concurrent request of the session) and retried once. Never a
 * loop: a second 401 is an error. Nor one refresh per request: when the refused
 * token is one a forced refresh gave moments ago (token-store's forcedRefreshIntervalMs),
 * token-store hands the same set back, and the 401 is the answer without a retry; unless
 * the provider had accepted the retry with that token here (it dropped its tokens once more).
 * When the refresh token is refused for good, the session is destroyed too (the
 * token set is already gone).
 */
export function createCallAsUser (client: AihubmixClient): CallAsUser {
  const refresh = client.refresh
  // The token sets a refresh after a 401 gave that the provider then accepted the retry with, in this process
  // (token-store hands out one object per stored set while it is in its opened-set cache). A 401 for one of them later
  // is the provider dropping tokens that worked, not refusing one just issued. Only the process that made the retry
  // knows it worked: a set that another instance refreshed, or that fell out of the cache, is not in here, and a 401
  // on it waits token-store's whole forcedRefreshIntervalMs (a set that merely worked on some call here is not
  // enough: an endpoint refusing a token another one accepts would cost one refresh a second per instance).
  const workedAfterRefresh = new WeakSet<TokenSet>()
  return async function callAsUser (request, call, signal) {
    let set: TokenSet
    try {
      // In the steady state the set comes without a promise (token-store's getFreshSync): one await less per request.
      const fresh = request.tokens.getFreshSync(refresh)
      set = fresh instanceof Promise ? await fresh : fresh
      let refused: unknown
      try {
        return await call(set.accessToken, signal)
      } catch (err) {
        if (!(err instanceof UpstreamUnauthorizedError)) throw err
        refused = err
      }
      const stale = set.accessToken
      set = await request.tokens.getFresh(refresh, { force: true, staleAccessToken: stale, staleAccepted: workedAfterRefresh.has(set) })
      // Not refreshed: the provider refused a token a forced refresh has just given. Calling again with it would be refused too.
      if (set.accessToken === stale) throw refused
      const answer = await call(set.accessToken, signal)
      workedAfterRefresh.add(set)
      return answer
    } catch (err) {
      if (err instanceof ReauthRequiredError) {
        logClientRefused(request, err)
        await destroySession(request)
      }
      throw err
    }
  }
}

/** The refusals already logged: the requests that shared one refresh flight all get its error. */
const loggedRefusals = new WeakSet<object>()

/**
 * The provider refused the app's own credentials at a refresh (invalid_client, unauthorized_client): the session
 * ends like on invalid_grant, and since every due session of every user ends alike until the credentials are put
 * right, one error line per refusal names what to fix. A 401 is otherwise not logged.
 */
function logClientRefused (request: FastifyRequest, err: Error): void {
  let cause: unknown = err
  for (let depth = 0; depth < 3 && cause instanceof Error; depth++) {
    if (cause instanceof TokenEndpointError) {
      if (cause.clientRefused && !loggedRefusals.has(cause)) {
        loggedRefusals.add(cause)
        request.log.error({ error: { code: cause.code, message: cause.message } }, cause.fromStatus === undefined
          ? 'the provider refused the app\'s credentials at a refresh: the session was ended'
          : 'the provider answered a refresh with a bare 401 (no error code), which means the app\'s credentials were refused (or, from some providers, the refresh token): the session was ended')
      }
      return
    }
    cause = cause.cause
  }
}

async function destroySession (request: FastifyRequest): Promise<void> {
  try {
    await request.tokens.endSession()
  } catch (err) {
    request.log.warn({ error: { message: errorInfo(err).message } }, 'could not destroy the session after a revoked grant')
  }
}
