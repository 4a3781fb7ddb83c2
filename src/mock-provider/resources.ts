import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorBody, noStore, okBody } from './answers.js'
import { bearerToken } from './bodies.js'
import type { ProviderContext } from './context.js'
import { endpointHooks } from './faults.js'
import { sendPage, topupPageBody } from './html.js'
import type { MockEndpoint, MockScope, MockUser } from './options.js'

export const USERINFO_PATH = '/api/oauth2/userinfo'
export const TOPUP_PATH = '/api/oauth2/topup'
export const TOPUP_PAGE_PATH = '/topup'

/** What userinfo answers: id, created_time and status always; the rest as the scopes allow. */
export interface MockUserInfo {
  id: number
  username?: string
  email?: string
  quota?: number
  used_quota?: number
  balance_formatted?: string
  created_time: number
  status: number
}

/** The balance as the guide shows it: (quota - used_quota) / 1000, two decimals ("750.00"). */
export function balanceFormatted (user: MockUser): string {
  return ((user.quota - user.used_quota) / 1000).toFixed(2)
}

function userInfo (user: MockUser, scopes: readonly MockScope[]): MockUserInfo {
  const profile = scopes.includes('profile')
  const balance = scopes.includes('balance')
  return {
    id: user.id,
    ...(profile ? { username: user.username, email: user.email } : {}),
    ...(balance ? { quota: user.quota, used_quota: user.used_quota, balance_formatted: balanceFormatted(user) } : {}),
    created_time: user.created_time,
    status: user.status
  }
}

/** `GET /api/oauth2/userinfo`, `GET /api/oauth2/topup` and the top-up page they point to. */
export async function resourceRoutes (instance: FastifyInstance, { ctx }: { ctx: ProviderContext }): Promise<void> {
  /** RFC 6750 3: a bearer error, with its `WWW-Authenticate` challenge. */
  function bearerError (reply: FastifyReply, endpoint: MockEndpoint, status: 401 | 403, error: string, description: string): FastifyReply {
    const scope = error === 'insufficient_scope' ? ', scope="balance"' : ''
    return noStore(reply)
      .code(status)
      .header('www-authenticate', `Bearer realm="aihubmix", error="${error}"${scope}`)
      .send(errorBody(endpoint, ctx.switches, error, description))
  }

  /** The scopes of the request's live access token, or null after answering 401. */
  function authenticate (request: FastifyRequest, reply: FastifyReply, endpoint: MockEndpoint): MockScope[] | null {
    const token = bearerToken(request.headers.authorization)
    const scopes = token === undefined ? null : ctx.grants.accessScopes(token)
    if (scopes === null) bearerError(reply, endpoint, 401, 'invalid_token', 'the access token is missing, invalid, expired or revoked')
    return scopes
  }

  instance.get(USERINFO_PATH, endpointHooks(ctx, 'userinfo'), async (request, reply) => {
    const scopes = authenticate(request, reply, 'userinfo')
    if (scopes === null) return reply
    const user = ctx.grants.accessUser(bearerToken(request.headers.authorization) ?? '') ?? ctx.user
    return noStore(reply).send(okBody(ctx.switches.envelope, userInfo(user, scopes)))
  })

  instance.get(TOPUP_PATH, endpointHooks(ctx, 'topup'), async (request, reply) => {
    const scopes = authenticate(request, reply, 'topup')
    if (scopes === null) return reply
    if (!scopes.includes('balance')) return bearerError(reply, 'topup', 403, 'insufficient_scope', 'the balance scope is required')
    return noStore(reply).send(okBody(ctx.switches.envelope, { topup_url: `${ctx.baseUrl}${TOPUP_PAGE_PATH}` }))
  })

  instance.get(TOPUP_PAGE_PATH, async (_request, reply) => {
    return sendPage(reply, 200, 'Top up your AIHubMix balance', topupPageBody(ctx.user.username))
  })
}
