import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import type { MockApp, NewAppField } from './apps.js'
import { acceptRawBodies, bearerToken, jsonObjectBody } from './bodies.js'
import type { ProviderContext } from './context.js'
import { endpointHooks } from './faults.js'
import { secretEquals } from './secrets.js'

export const OAUTH_APPS_PATH = '/api/oauth_apps'

/** The field names of app registration on the wire. */
const WIRE_NAMES: Record<NewAppField, string> = {
  name: 'name',
  description: 'description',
  redirectUri: 'redirect_uri',
  clientId: 'client_id',
  clientSecret: 'client_secret'
}

/** The app as the registration answer shows it (the guide's `data`). */
function appData (app: MockApp): Record<string, unknown> {
  return {
    id: app.id,
    name: app.name,
    client_id: app.clientId,
    client_secret: app.clientSecret,
    redirect_uri: app.redirectUri,
    created_time: app.createdTime
  }
}

/** `POST /api/oauth_apps`: a developer registers an app; every answer is the `{success, message, data}` envelope. */
export async function oauthAppsRoutes (instance: FastifyInstance, { ctx }: { ctx: ProviderContext }): Promise<void> {
  acceptRawBodies(instance)

  const fail = (reply: FastifyReply, status: number, message: string): FastifyReply =>
    reply.code(status).send({ success: false, message })

  instance.setErrorHandler((err: FastifyError, _request, reply) => {
    const status = err.statusCode ?? 500
    return status >= 500 ? fail(reply, 500, 'internal error') : fail(reply, 400, 'the request could not be read')
  })

  instance.post(OAUTH_APPS_PATH, endpointHooks(ctx, 'oauth_apps'), async (request, reply) => {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined || !ctx.options.developerTokens.some((known) => secretEquals(known, token))) {
      return fail(reply, 401, 'a valid developer token is required')
    }
    const body = jsonObjectBody(request.body)
    if (!body.ok) return fail(reply, 400, body.message)
    const { name, description, redirect_uri: redirectUri } = body.value
    const input = { name, redirectUri, ...(description === undefined ? {} : { description }) }
    const problem = ctx.apps.problem(input)
    if (problem !== null) return fail(reply, 400, `${WIRE_NAMES[problem.field]} ${problem.message}`)
    const app = ctx.apps.create(input as { name: string, redirectUri: string, description?: string })
    return reply.code(200).send({ success: true, message: '', data: appData(app) })
  })
}
