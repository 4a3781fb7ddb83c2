import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler, onSendAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import { errorBody, okBody, type ErrorShape } from './answers.js'
import { formBody } from './bodies.js'
import type { ProviderContext } from './context.js'
import { DEFAULT_USER, type MockEndpoint, type MockFault } from './options.js'

/** The `oversize` fault pads answers to a little over this. */
export const OVERSIZE_BYTES = 2 * 1024 * 1024
/** Where the `redirect` fault sends clients: another host, which never resolves (RFC 6761). */
export const REDIRECT_TARGET = 'http://redirect-target.invalid'

/** What a well-formed 200 of each endpoint looks like, with placeholder values (no real secret). */
function sampleAnswer (endpoint: MockEndpoint): unknown {
  switch (endpoint) {
    case 'token':
      return { access_token: 'at_placeholder', token_type: 'Bearer', expires_in: 7200, refresh_token: 'rt_placeholder', scope: 'profile balance' }
    case 'userinfo':
      return { ...DEFAULT_USER, balance_formatted: '750.00' }
    case 'topup':
      return { topup_url: `${REDIRECT_TARGET}/topup` }
    case 'oauth_apps':
      return { success: true, message: '', data: { id: 1, name: 'app', client_id: 'client_placeholder', client_secret: 'secret_placeholder', redirect_uri: 'http://localhost/cb', created_time: 0 } }
    case 'authorize':
      return { error: 'placeholder' }
  }
}

/** A 200 body with every field of the wrong JSON type. */
function wrongTypes (endpoint: MockEndpoint): unknown {
  switch (endpoint) {
    case 'token':
      return { access_token: 123, token_type: ['Bearer'], expires_in: '7200', refresh_token: false, scope: null }
    case 'userinfo':
      return { id: 'x', username: 42, email: false, quota: '1000000', used_quota: null, balance_formatted: 750, created_time: '2022-01-01', status: 'active' }
    case 'topup':
      return { topup_url: 42 }
    case 'oauth_apps':
      return { success: 'true', message: 0, data: { id: 'x', name: 1, client_id: 2, client_secret: 3, redirect_uri: [], created_time: 'now' } }
    case 'authorize':
      return { code: 123, state: false }
  }
}

/** The faults that answer instead of the endpoint; the others wrap its answer or withhold it. */
type ReplacingFault = Exclude<MockFault, 'oversize' | 'set_cookie' | 'hang'>

function sendFault (reply: FastifyReply, endpoint: MockEndpoint, fault: ReplacingFault, shape: ErrorShape): FastifyReply {
  const wraps = endpoint !== 'oauth_apps' && endpoint !== 'authorize' && shape.envelope
  const error = (status: number, code: string, description: string): FastifyReply =>
    reply.code(status).send(errorBody(endpoint, shape, code, description))
  switch (fault) {
    case 'http500':
      return error(500, 'server_error', 'mock fault: internal server error')
    case 'http503':
      reply.header('retry-after', '1')
      return error(503, 'temporarily_unavailable', 'mock fault: service unavailable')
    case 'http429':
      reply.header('retry-after', '1')
      return error(429, 'rate_limited', 'mock fault: too many requests')
    case 'http401':
      // refuses even a live token: a client must refresh once and retry once, never loop
      reply.header('www-authenticate', 'Bearer realm="aihubmix", error="invalid_token"')
      return error(401, 'invalid_token', 'mock fault: the access token is refused')
    case 'invalid_client':
      // the app's own credentials refused, as for a wrong client_secret (rotated in the console before the deploy)
      return error(401, 'invalid_client', 'mock fault: client authentication failed')
    case 'non_json':
      return reply.code(200).type('text/html; charset=utf-8')
        .send('<!doctype html><html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>\n')
    case 'truncated': {
      const text = JSON.stringify(sampleAnswer(endpoint))
      return reply.code(200).type('application/json; charset=utf-8').send(text.slice(0, Math.floor(text.length / 2)))
    }
    case 'wrong_types':
      return reply.code(200).send(okBody(wraps, wrongTypes(endpoint)))
    case 'null_body':
      return reply.code(200).type('application/json; charset=utf-8').send('null')
    case 'error_in_200':
      return error(200, 'server_error', 'mock fault: an error in a 200 answer')
    case 'redirect':
      return reply.code(302).header('location', `${REDIRECT_TARGET}${new URL(reply.request.url, REDIRECT_TARGET).pathname}`).send()
  }
}

/** Pads an answer to OVERSIZE_BYTES while keeping it what it was (valid JSON stays valid). */
function pad (payload: unknown): unknown {
  const padding = 'x'.repeat(OVERSIZE_BYTES)
  if (typeof payload !== 'string') return padding
  if (payload.startsWith('{')) {
    return `{"padding":"${padding}"${payload === '{}' ? '' : ','}${payload.slice(1)}`
  }
  return `${payload}\n<!-- ${padding} -->\n`
}

/** Drops a request without an answer: the client sees the connection close. */
function abandon (request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.hijack()
  request.raw.socket.destroy()
  return reply
}

/** Resolves when the provider closes or the client goes away, whichever is first. */
async function untilReleased (request: FastifyRequest, closing: AbortSignal): Promise<void> {
  if (closing.aborted || request.raw.socket.destroyed) return
  const gone = new AbortController()
  await Promise.race([
    once(closing, 'abort', { signal: gone.signal }),
    once(request.raw.socket, 'close', { signal: gone.signal })
  ]).catch(() => {})
  gone.abort()
}

export interface EndpointHooks {
  onRequest: onRequestAsyncHookHandler
  preHandler: preHandlerAsyncHookHandler
  onSend: onSendAsyncHookHandler
}

/**
 * The route hooks that make an endpoint countable, slow and faulty on demand: count and delay on
 * arrival; after the body is read, count the grant type and apply an armed fault.
 */
export function endpointHooks (ctx: ProviderContext, endpoint: MockEndpoint): EndpointHooks {
  const oversized = new WeakSet<FastifyRequest>()
  return {
    async onRequest (request, reply) {
      ctx.switches.count(endpoint)
      const ms = ctx.switches.latency(endpoint)
      if (ms === 0) return
      try {
        await sleep(ms, undefined, { signal: ctx.closing })
      } catch {
        return abandon(request, reply)
      }
    },
    async preHandler (request, reply) {
      if (endpoint === 'token') {
        const grantType = formBody(request.body)?.grant_type
        if (typeof grantType === 'string') ctx.switches.countGrant(grantType)
      }
      const fault = ctx.switches.takeFault(endpoint)
      switch (fault) {
        case null:
          return
        case 'set_cookie':
          reply.header('set-cookie', 'aihubmix_mock_session=fault; Path=/; HttpOnly; SameSite=Lax')
          return
        case 'oversize':
          oversized.add(request)
          return
        case 'hang':
          await untilReleased(request, ctx.closing)
          return abandon(request, reply)
        default:
          return sendFault(reply, endpoint, fault, ctx.switches)
      }
    },
    async onSend (request, _reply, payload) {
      return oversized.has(request) ? pad(payload) : payload
    }
  }
}
