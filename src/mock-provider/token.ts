import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { errorBody, noStore, okBody } from './answers.js'
import { acceptRawBodies, formBody, singleParams } from './bodies.js'
import type { ProviderContext } from './context.js'
import { endpointHooks } from './faults.js'
import type { TokenResult } from './grants.js'

export const TOKEN_PATH = '/api/oauth2/token'
/** RFC 7009's endpoint, served only with `revocationEndpoint` (the provider's guide documents none). */
export const REVOKE_PATH = '/api/oauth2/revoke'

/** RFC 6749 5.2 error codes, and the status each answers with. */
const STATUS = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400
} as const
type TokenError = keyof typeof STATUS

/**
 * `POST /api/oauth2/token`: form-encoded only; the client authenticates with `client_id` and
 * `client_secret` in the body (the only way the provider's guide shows; HTTP Basic is not read).
 */
export async function tokenRoutes (instance: FastifyInstance, { ctx }: { ctx: ProviderContext }): Promise<void> {
  acceptRawBodies(instance)

  const fail = (reply: FastifyReply, error: TokenError, description: string): FastifyReply =>
    noStore(reply).code(STATUS[error]).send(errorBody('token', ctx.switches, error, description))

  // a body over the limit, or anything else that fails before the handler, still answers RFC 6749
  instance.setErrorHandler((err: FastifyError, _request, reply) => {
    const status = err.statusCode ?? 500
    if (status >= 500) {
      return noStore(reply).code(500).send(errorBody('token', ctx.switches, 'server_error', 'internal error'))
    }
    return fail(reply, 'invalid_request', 'the request could not be read')
  })

  instance.post(TOKEN_PATH, endpointHooks(ctx, 'token'), async (request, reply) => {
    const form = formBody(request.body)
    if (form === null) return fail(reply, 'invalid_request', 'the body must be application/x-www-form-urlencoded')
    const single = singleParams(form)
    if (!single.ok) return fail(reply, 'invalid_request', `${single.repeated} is repeated`)
    const { params } = single

    const { client_id: clientId, client_secret: clientSecret } = params
    const app = clientId === undefined || clientSecret === undefined
      ? undefined
      : ctx.apps.authenticate(clientId, clientSecret)
    if (app === undefined) return fail(reply, 'invalid_client', 'client authentication failed')

    let result: TokenResult
    switch (params.grant_type) {
      case undefined:
        return fail(reply, 'invalid_request', 'grant_type is required')
      case 'authorization_code': {
        const { code, redirect_uri: redirectUri, code_verifier: verifier } = params
        if (code === undefined) return fail(reply, 'invalid_request', 'code is required')
        if (redirectUri === undefined) return fail(reply, 'invalid_request', 'redirect_uri is required')
        result = ctx.grants.exchangeCode(app.clientId, { code, redirectUri, verifier })
        break
      }
      case 'refresh_token': {
        const { refresh_token: refreshToken, scope } = params
        if (refreshToken === undefined) return fail(reply, 'invalid_request', 'refresh_token is required')
        const { rotate, reuseRevokes } = ctx.switches
        result = ctx.grants.refresh(app.clientId, { refreshToken, scope, rotate, reuseRevokes })
        if (!result.ok && result.reuse === true) ctx.switches.countReuse()
        break
      }
      default:
        return fail(reply, 'unsupported_grant_type', 'grant_type must be authorization_code or refresh_token')
    }
    if (!result.ok) return fail(reply, result.error, result.description)
    return noStore(reply).code(200).send(okBody(ctx.switches.envelope, result.answer))
  })

  if (!ctx.options.revocationEndpoint) return
  // RFC 7009: form-encoded `token` (and an optional `token_type_hint`, which changes nothing here: both kinds are
  // looked up), the client authenticated as at the token endpoint. 200 with an empty body whether or not the token
  // was known or live (2.2); not counted among the endpoints' calls, in `revocations` instead.
  instance.post(REVOKE_PATH, async (request, reply) => {
    const form = formBody(request.body)
    if (form === null) return fail(reply, 'invalid_request', 'the body must be application/x-www-form-urlencoded')
    const single = singleParams(form)
    if (!single.ok) return fail(reply, 'invalid_request', `${single.repeated} is repeated`)
    const { client_id: clientId, client_secret: clientSecret, token } = single.params
    const app = clientId === undefined || clientSecret === undefined ? undefined : ctx.apps.authenticate(clientId, clientSecret)
    if (app === undefined) return fail(reply, 'invalid_client', 'client authentication failed')
    if (token === undefined) return fail(reply, 'invalid_request', 'token is required')
    ctx.switches.countRevocation(ctx.grants.revoke(app.clientId, token))
    return noStore(reply).code(200).send()
  })
}
