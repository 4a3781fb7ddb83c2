import dc from 'node:diagnostics_channel'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { AihubmixClient } from '@fastify-aihubmix/aihubmix-proxy'
import type { LoginErrorCode } from './errors.js'
import { StoreUnavailableError } from '@fastify-aihubmix/token-store'

/**
 * What oauth-routes tells `node:diagnostics_channel` (the README lists the channel and its payload): how each
 * sign-in ended. A plain channel, not a TracingChannel: a sign-in spans two requests (`/auth/login`, then the
 * callback, minutes apart in another tab or a popup), so no single span covers it; the callback's call to the
 * token endpoint is a span of its own (`aihubmix:upstream`).
 *
 * Nothing is built while the channel has no subscriber. The message holds the outcome from a fixed set and never
 * a code, a state, a token, a session id or anything of the user: `client` is the provider client the sign-in
 * went through (`fastify.aihubmix`), so that a subscriber can tell the apps of one process apart by identity.
 */

/** Plain channel: a sign-in ended, at the callback or already at `/auth/login`. */
export const LOGIN_CHANNEL = 'aihubmix:login'

/** `ok`, or the code the browser was sent to the error path with (`insecure_cookie`, `invalid_state`, ...). */
/** `'abandoned'`: the browser left before the callback's answer; nothing of the sign-in was kept. */
export type LoginOutcome = 'ok' | 'abandoned' | LoginErrorCode

export interface LoginMessage {
  readonly client: AihubmixClient
  readonly outcome: LoginOutcome
}

const loginChannel = dc.channel(LOGIN_CHANNEL)

/** Publishes how a sign-in ended. */
export function publishLogin (client: AihubmixClient, outcome: LoginOutcome): void {
  if (!loginChannel.hasSubscribers) return
  const message: LoginMessage = { client, outcome }
  loginChannel.publish(message)
}

/**
 * A route-level `onError` hook for the sign-in routes: a sign-in that ended with an error answer (a bad query, a
 * bug) ended too. A 4xx is `invalid_request`, anything else `server_error`. The store down is not one of them: the
 * plugin's error handler answers it as the login error `store_unavailable`, and publishes that.
 */
export function loginErrorHook (client: AihubmixClient) {
  return async function loginEnded (_request: FastifyRequest, _reply: FastifyReply, error: FastifyError): Promise<void> {
    if (error instanceof StoreUnavailableError) return
    const status = error.statusCode
    publishLogin(client, typeof status === 'number' && status >= 400 && status < 500 ? 'invalid_request' : 'server_error')
  }
}
