import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { acceptRawBodies, jsonObjectBody } from './bodies.js'
import { MockInvalidArgumentError } from './errors.js'
import type { MockProvider } from './provider.js'

type Body = Record<string, unknown>

/**
 * The HTTP twin of the in-process control methods, for tests in another process and for the
 * standalone server. Mounted under a prefix (default `/__mock`) only when `controlApi` is on. It
 * hands out client secrets and every issued token: keep it on loopback.
 */
export async function controlApiRoutes (instance: FastifyInstance, opts: { provider: MockProvider }): Promise<void> {
  const { provider } = opts
  acceptRawBodies(instance)

  const fail = (reply: FastifyReply, status: number, error: string, message: string): FastifyReply =>
    reply.code(status).send({ error, message })

  instance.setErrorHandler((err: FastifyError, _request, reply) => {
    if (err instanceof MockInvalidArgumentError) return fail(reply, 400, 'invalid_argument', err.message)
    const status = err.statusCode ?? 500
    return status >= 500
      ? fail(reply, 500, 'server_error', 'internal error')
      : fail(reply, status, 'invalid_request', 'the request could not be read')
  })

  /** A POST action: optional JSON object body in, 204 (or what `run` answers) out. */
  function action (path: string, run: (body: Body, reply: FastifyReply) => unknown): void {
    instance.post(path, async (request, reply) => {
      let body: Body = {}
      if (request.body !== undefined) {
        const parsed = jsonObjectBody(request.body)
        if (!parsed.ok) return fail(reply, 400, 'invalid_request', parsed.message)
        body = parsed.value
      }
      const answer = run(body, reply)
      return answer === undefined ? reply.code(204).send() : reply.send(answer)
    })
  }

  action('/expire-access-tokens', () => { provider.expireAccessTokens() })
  action('/expire-refresh-tokens', () => { provider.expireRefreshTokens() })
  action('/revoke-grants', () => { provider.revokeGrants() })
  action('/latency', (body) => { provider.setLatency(body.endpoint as never, body.ms as never) })
  action('/fault', (body) => {
    provider.setFault(body.endpoint as never, (body.fault ?? null) as never, body.times === undefined ? undefined : { times: body.times as never })
  })
  action('/envelope', (body) => { provider.setEnvelope(body.on as never, body.errorCodes === undefined ? undefined : { errorCodes: body.errorCodes as never }) })
  action('/rotation', (body) => { provider.setRotation(body as never) })
  action('/user', (body) => {
    provider.setUser(body.patch as never)
    return provider.user
  })
  action('/reset', () => { provider.reset() })
  action('/reset-counts', () => { provider.resetCounts() })
  action('/apps', (body, reply) => {
    reply.code(201)
    return provider.createApp(body as never)
  })

  instance.get('/apps', async () => provider.apps)
  instance.get('/user', async () => provider.user)
  instance.get('/counts', async () => provider.counts())
  instance.get('/issued', async () => provider.issued())
}
