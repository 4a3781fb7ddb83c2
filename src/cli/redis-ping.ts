import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { describeNetworkError } from './http.js'

/** What one Redis check found. `target` never carries the password. */
export interface RedisPing {
  ok: boolean
  /** `redis://host:port` (no credentials). */
  target: string
  detail: string
  /**
   * With `tracking: true`, whether this Redis lets the connection turn on client-side caching (`CLIENT TRACKING`,
   * what REDIS_CLIENT_CACHE=on needs: Redis >= 6 and an ACL that allows CLIENT). Set only after a PONG.
   */
  tracking?: { allowed: boolean, detail: string }
}

export const DEFAULT_REDIS_PORT = 6379

function command (...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`
}

/** Removes credentials: `redis://:secret@host:6380/1` → `redis://host:6380`. */
export function redisTarget (url: URL): string {
  return `${url.protocol}//${url.hostname}:${url.port === '' ? DEFAULT_REDIS_PORT : url.port}`
}

/** A Redis error line made safe to print (it never holds the password, but cap it anyway). */
function redisError (line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.slice(1).replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 120)
}

/**
 * Sends `AUTH` (when the URL has a password) and `PING` over a raw TCP (or TLS
 * for `rediss:`) connection and expects `+PONG`. Resolves, never rejects: a
 * refused connection, a timeout or an error reply is `ok: false` with a reason.
 */
export async function pingRedis (redisUrl: string, opts: { timeoutMs: number, tracking?: boolean }): Promise<RedisPing> {
  let url: URL
  try {
    url = new URL(redisUrl)
  } catch {
    return { ok: false, target: '(invalid URL)', detail: 'REDIS_URL is not a URL' }
  }
  const target = redisTarget(url)
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    return { ok: false, target, detail: 'REDIS_URL must be a redis:// or rediss:// URL' }
  }
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const port = url.port === '' ? DEFAULT_REDIS_PORT : Number(url.port)
  const password = decodeURIComponent(url.password)
  const username = decodeURIComponent(url.username)
  // Each step: what is sent, and the one reply that means it went through.
  const steps: Array<{ name: 'auth' | 'ping' | 'tracking', send: string, expect: string }> = []
  if (password !== '') steps.push({ name: 'auth', send: username !== '' ? command('AUTH', username, password) : command('AUTH', password), expect: '+OK' })
  steps.push({ name: 'ping', send: command('PING'), expect: '+PONG' })
  // Switched on for this short-lived connection only (a prefix no key has), then the connection closes.
  if (opts.tracking === true) steps.push({ name: 'tracking', send: command('CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', 'aihubmix-doctor-probe:'), expect: '+OK' })

  return await new Promise<RedisPing>((resolve) => {
    let settled = false
    let buffered = ''
    const finish = (ok: boolean, detail: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ok, target, detail, ...(tracking !== undefined ? { tracking } : {}) })
    }
    let tracking: RedisPing['tracking']
    const timer = setTimeout(() => { finish(false, `no answer within ${opts.timeoutMs} ms`) }, opts.timeoutMs)
    const onConnect = (): void => { socket.write(steps.map((step) => step.send).join('')) }
    const socket: Socket = url.protocol === 'rediss:'
      ? tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}) }, onConnect)
      : netConnect({ host, port }, onConnect)
    socket.setEncoding('utf8')
    socket.on('error', (err) => { finish(false, describeNetworkError(err)) })
    socket.on('close', () => { finish(false, 'the connection closed before PONG') })
    socket.on('data', (chunk: string) => {
      buffered += chunk
      if (buffered.length > 64 * 1024) {
        finish(false, 'unexpected answer (not Redis?)')
        return
      }
      const replies = buffered.split('\r\n')
      buffered = replies.pop() as string
      for (const reply of replies) {
        const step = steps.shift()
        if (step === undefined) return
        if (step.name === 'tracking') {
          tracking = reply === step.expect
            ? { allowed: true, detail: 'CLIENT TRACKING allowed' }
            : { allowed: false, detail: reply.startsWith('-') ? `CLIENT TRACKING refused: ${redisError(reply)}` : 'unexpected answer to CLIENT TRACKING' }
          finish(true, 'answered PONG')
          return
        }
        if (reply.startsWith('-')) {
          finish(false, `Redis refused: ${redisError(reply)}`)
          return
        }
        if (reply !== step.expect) {
          finish(false, 'unexpected answer (not Redis?)')
          return
        }
        if (step.name === 'ping' && steps.length === 0) {
          finish(true, 'answered PONG')
          return
        }
      }
    })
  })
}
