import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'

/**
 * An HTTP relay on 127.0.0.1 port 0 in front of the mock provider, for answers the mock itself never gives: point
 * aihubmix-proxy's `baseUrl` at `url` and set `target` to the mock's URL (it may be set after the relay started,
 * e.g. once startStack made the mock). Everything is passed on as it came (status, headers, body), except:
 * - `tokenAnswer`: while set, a 200 of the token endpoint is parsed and answered as it returns (the provider's own
 *   answer, rotation and all, has happened: `tokenAnswers` keeps each as it came);
 * - `trickle`: requests to these endpoints are not passed on; they get a 200 whose body comes one space every
 *   `trickleEveryMs` and never ends (until the client gives up or the relay closes).
 */
export interface ProviderRelay {
  readonly url: string
  target: string
  tokenAnswer: ((answer: Record<string, unknown>) => Record<string, unknown>) | null
  readonly tokenAnswers: Array<Record<string, unknown>>
  readonly trickle: Set<'token' | 'userinfo' | 'topup'>
  trickleEveryMs: number
  /** Requests that got a trickled answer so far. */
  trickled: number
  /** Closes every connection open now (the trickled ones included). */
  cut (): void
  close (): Promise<void>
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host', 'upgrade'])

function endpointOf (url: string): 'token' | 'userinfo' | 'topup' | undefined {
  const path = url.split('?')[0] ?? ''
  if (path.endsWith('/api/oauth2/token')) return 'token'
  if (path.endsWith('/api/oauth2/userinfo')) return 'userinfo'
  if (path.endsWith('/api/oauth2/topup')) return 'topup'
  return undefined
}

export async function startProviderRelay (target = ''): Promise<ProviderRelay> {
  const timers = new Set<NodeJS.Timeout>()

  const trickle = (res: ServerResponse): void => {
    relay.trickled++
    res.writeHead(200, { 'content-type': 'application/json' })
    const timer = setInterval(() => { res.write(' ') }, relay.trickleEveryMs)
    timers.add(timer)
    res.on('close', () => {
      clearInterval(timer)
      timers.delete(timer)
    })
  }

  const pass = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && !HOP_BY_HOP.has(name)) headers[name] = value
    }
    const up = await request(relay.target + (req.url ?? '/'), {
      method: req.method as 'GET' | 'POST',
      headers,
      ...(body.length === 0 ? {} : { body })
    })
    let text = await up.body.text()
    if (relay.tokenAnswer !== null && up.statusCode === 200 && endpointOf(req.url ?? '') === 'token') {
      const answer = JSON.parse(text) as Record<string, unknown>
      relay.tokenAnswers.push({ ...answer })
      text = JSON.stringify(relay.tokenAnswer(answer))
    }
    const out: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(up.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
    }
    res.writeHead(up.statusCode, out).end(text)
  }

  const server = createServer((req, res) => {
    const endpoint = endpointOf(req.url ?? '')
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    req.on('end', () => {
      if (endpoint !== undefined && relay.trickle.has(endpoint)) {
        trickle(res)
        return
      }
      pass(req, res, Buffer.concat(chunks)).catch(() => { res.destroy() })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

  const relay: ProviderRelay = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    target,
    tokenAnswer: null,
    tokenAnswers: [],
    trickle: new Set(),
    trickleEveryMs: 100,
    trickled: 0,
    cut () {
      server.closeAllConnections()
    },
    close () {
      for (const timer of timers) clearInterval(timer)
      timers.clear()
      server.closeAllConnections()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  return relay
}
