import type { FastifyReply } from 'fastify'
import type { MockEndpoint } from './options.js'

/** How error answers are shaped: the envelope on or off, and whether an enveloped error carries a code. */
export interface ErrorShape { envelope: boolean, envelopeErrorCodes: boolean }

/**
 * The JSON error body of an endpoint. App registration always speaks the provider's
 * `{success: false, message}` envelope; token, userinfo and topup speak RFC 6749 / 6750
 * `{error, error_description}`, or in envelope mode `{success: false, message, error}` (`{success: false, message}`,
 * the guide's envelope error with no code, when `envelopeErrorCodes` is off).
 */
export function errorBody (endpoint: MockEndpoint, shape: ErrorShape, error: string, description: string): Record<string, unknown> {
  if (endpoint === 'oauth_apps') return { success: false, message: description }
  if (shape.envelope) return shape.envelopeErrorCodes ? { success: false, message: description, error } : { success: false, message: description }
  return { error, error_description: description }
}

/** A 200 answer of token, userinfo or topup: bare, or wrapped in the envelope. */
export function okBody (envelope: boolean, data: unknown): unknown {
  return envelope ? { success: true, message: '', data } : data
}

/** Answers the secret-bearing JSON endpoints must carry (RFC 6749 5.1). */
export function noStore (reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
}
