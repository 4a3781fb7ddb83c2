import type { FastifyInstance, FastifyReply } from 'fastify'
import type { MockApp } from './apps.js'
import { acceptRawBodies, formBody, singleParams, type ParamRecord } from './bodies.js'
import type { ProviderContext } from './context.js'
import { endpointHooks } from './faults.js'
import { parseScope, scopeString } from './grants.js'
import { consentPageBody, sendErrorPage, sendPage } from './html.js'
import { MOCK_SCOPES, type MockScope } from './options.js'

export const AUTHORIZE_PATH = '/api/oauth2/authorize'
export const DECISION_PATH = '/api/oauth2/authorize/decision'

/** RFC 7636 4.2: BASE64URL(SHA256(verifier)) is always 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/

interface AuthorizeRequest {
  app: MockApp
  redirectUri: string
  scopes: MockScope[]
  state: string
  challenge: string | null
  params: Record<string, string>
}

type AuthorizeCheck =
  /** Not safe to send back to the client: the provider shows its own error page. */
  | { kind: 'page', error: string, message: string }
  /** An error the client hears about at its (verified) redirect URI. */
  | { kind: 'redirect', location: string }
  | { kind: 'ok', request: AuthorizeRequest }

/** Appends parameters to a registered redirect URI, keeping its own query byte for byte. */
function withParams (redirectUri: string, params: Record<string, string>): string {
  const separator = !redirectUri.includes('?') ? '?' : /[?&]$/.test(redirectUri) ? '' : '&'
  return `${redirectUri}${separator}${new URLSearchParams(params).toString()}`
}

/**
 * Checks an authorization request (the GET's query, or the consent form posted back). The client
 * and its redirect URI are checked first: until both are known good, nothing is redirected.
 */
function checkAuthorizeRequest (ctx: ProviderContext, query: ParamRecord): AuthorizeCheck {
  const { client_id: clientId, redirect_uri: redirectUri, response_type: responseType } = query
  if (typeof clientId !== 'string' || clientId === '') {
    return { kind: 'page', error: 'invalid_request', message: 'client_id is missing or repeated.' }
  }
  const app = ctx.apps.find(clientId)
  if (app === undefined) return { kind: 'page', error: 'invalid_client', message: 'This client_id is not registered.' }
  if (typeof redirectUri !== 'string' || redirectUri === '') {
    return { kind: 'page', error: 'invalid_request', message: 'redirect_uri is missing or repeated.' }
  }
  if (redirectUri !== app.redirectUri) {
    return { kind: 'page', error: 'invalid_request', message: 'redirect_uri is not the one registered for this client.' }
  }
  if (responseType !== 'code') {
    return { kind: 'page', error: 'unsupported_response_type', message: 'response_type must be code.' }
  }
  const back = (error: string, description: string, state?: string): AuthorizeCheck => ({
    kind: 'redirect',
    location: withParams(redirectUri, { error, error_description: description, ...(state === undefined ? {} : { state }) })
  })
  const single = singleParams(query)
  if (!single.ok) {
    const state = typeof query.state === 'string' && query.state !== '' ? query.state : undefined
    return back('invalid_request', `${single.repeated} is repeated`, state)
  }
  const { params } = single
  const { state, scope, code_challenge: challenge, code_challenge_method: method } = params
  if (state === undefined) return back('invalid_request', 'state is required')
  const scopes = parseScope(scope, MOCK_SCOPES)
  if (scopes === null) return back('invalid_scope', `scope must be a space-separated subset of: ${MOCK_SCOPES.join(' ')}`, state)
  if (challenge !== undefined || method !== undefined) {
    if (method !== 'S256') return back('invalid_request', 'code_challenge_method must be S256', state)
    if (challenge === undefined || !S256_CHALLENGE.test(challenge)) {
      return back('invalid_request', 'code_challenge must be a base64url SHA-256 digest', state)
    }
  }
  return { kind: 'ok', request: { app, redirectUri, scopes, state, challenge: challenge ?? null, params } }
}

function redirect (reply: FastifyReply, location: string): FastifyReply {
  return reply.code(302).header('location', location).header('cache-control', 'no-store').send()
}

function approve (ctx: ProviderContext, reply: FastifyReply, request: AuthorizeRequest): FastifyReply {
  const code = ctx.grants.issueCode({
    clientId: request.app.clientId,
    redirectUri: request.redirectUri,
    scopes: request.scopes,
    challenge: request.challenge,
    user: ctx.user
  })
  return redirect(reply, withParams(request.redirectUri, { code, state: request.state }))
}

/** `GET /api/oauth2/authorize` and the consent form's `POST /api/oauth2/authorize/decision`. */
export async function authorizeRoutes (instance: FastifyInstance, { ctx }: { ctx: ProviderContext }): Promise<void> {
  acceptRawBodies(instance)

  instance.get(AUTHORIZE_PATH, endpointHooks(ctx, 'authorize'), async (request, reply) => {
    const check = checkAuthorizeRequest(ctx, request.query as ParamRecord)
    if (check.kind === 'page') return sendErrorPage(reply, check.error, check.message)
    if (check.kind === 'redirect') return redirect(reply, check.location)
    const { request: authorization } = check
    // one-click login: the user is signed in at the provider, so no consent screen
    if (authorization.params.auto_authorize === 'true') return approve(ctx, reply, authorization)
    return sendPage(reply, 200, `Authorize ${authorization.app.name}`, consentPageBody({
      appName: authorization.app.name,
      username: ctx.user.username,
      scopes: authorization.scopes,
      action: DECISION_PATH,
      fields: {
        client_id: authorization.app.clientId,
        redirect_uri: authorization.redirectUri,
        response_type: 'code',
        scope: scopeString(authorization.scopes),
        state: authorization.state,
        ...(authorization.challenge === null ? {} : { code_challenge: authorization.challenge, code_challenge_method: 'S256' })
      }
    }))
  })

  instance.post(DECISION_PATH, async (request, reply) => {
    const form = formBody(request.body)
    if (form === null) return sendErrorPage(reply, 'invalid_request', 'The decision must be a form post.')
    const check = checkAuthorizeRequest(ctx, form)
    if (check.kind === 'page') return sendErrorPage(reply, check.error, check.message)
    if (check.kind === 'redirect') return redirect(reply, check.location)
    const { request: authorization } = check
    switch (authorization.params.decision) {
      case 'approve':
        return approve(ctx, reply, authorization)
      case 'deny':
        return redirect(reply, withParams(authorization.redirectUri, {
          error: 'access_denied',
          error_description: 'the user denied the request',
          state: authorization.state
        }))
      default:
        return sendErrorPage(reply, 'invalid_request', 'decision must be approve or deny.')
    }
  })
}
