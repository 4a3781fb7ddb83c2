import { createHash, randomBytes } from 'node:crypto'
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { describeNetworkError } from './http.js'
import { cutBetweenWords } from './text.js'

/** What answered is not a Redis server: an HTTP server, another service on that port. */
const NOT_REDIS = 'unexpected answer (not Redis?): check REDIS_URL, the host and port of your Redis (6379 by default)'

/** What one Redis check found. `target` never carries the password. */
export interface RedisPing {
  ok: boolean
  /** `redis://host:port` (no credentials). */
  target: string
  detail: string
  /**
   * With `tracking: true`, whether this Redis lets the connection turn on client-side caching (`CLIENT TRACKING`)
   * and say which server it is (`INFO server` with a run_id: the cache serves only while its two connections are on
   * one server): what REDIS_CLIENT_CACHE=on needs, Redis >= 6 and an ACL that allows CLIENT and INFO. Set only after a
   * PONG.
   */
  tracking?: { allowed: boolean, detail: string }
  /**
   * With `persistence: true`, what `CONFIG GET appendonly`, `appendfsync` and `save` answered (set only after a
   * PONG); `refused` when CONFIG could not be read (an ACL without CONFIG, a managed Redis that renamed it).
   */
  persistence?: RedisPersistence
  /**
   * With `memory: true`, what `CONFIG GET maxmemory-policy` and `maxmemory` answered (set only after a PONG);
   * `refused` when CONFIG could not be read.
   */
  memory?: RedisMemory
  /**
   * Set when REDIS_URL has a password this Redis does not have (AUTH refused: no password is set): the app's client
   * (ioredis) goes on without it, so this is a warning, not a failure. What to change, never the password.
   */
  passwordIgnored?: string
  /**
   * With `access: true`, what this Redis user may run of what the app needs (set only after a PONG, when every
   * command asked about was answered): the commands, keys and channels refused, and the commands it does not know.
   */
  access?: RedisAccess
}

/** What the app needs of Redis and this connection's user may not have, as found by running it (see pingRedis). */
export interface RedisAccess {
  /** Commands refused to this user (NOPERM), lower case, in the order asked. */
  commands: string[]
  /** Whether a command was refused its key under the app's prefix (`~aihubmix:*`). */
  keys: boolean
  /** Whether a command was refused its channel under the app's prefix (`&aihubmix:*`). */
  channels: boolean
  /** Commands this Redis does not know (older than 6.2, or renamed). */
  unknown: string[]
  /** Commands refused otherwise (OOM, READONLY, ...), each with Redis's words made safe to print. */
  refused: Array<{ command: string, error: string }>
}

/**
 * The prefix of the app's keys and channels: token-store's default keyPrefix, which the example server keeps. The
 * access probe's throwaway key and channel are under it, so that a key or channel pattern of an ACL is tried as the
 * app meets it.
 */
export const APP_KEY_PREFIX = 'aihubmix:'

/** How long the access probe's throwaway keys live, should its own deletion be refused or the connection drop. */
const PROBE_TTL_MS = '10000'
const PROBE_SCRIPT = 'return 1'

export type RedisPersistence =
  | { readable: true, appendonly: string, appendfsync: string, save: string }
  | { readable: false, refused: string }

export type RedisMemory =
  | { readable: true, policy: string, maxmemory: string }
  | { readable: false, refused: string }

const PERSISTENCE_SETTINGS = ['appendonly', 'appendfsync', 'save'] as const
const MEMORY_SETTINGS = ['maxmemory-policy', 'maxmemory'] as const
type Setting = typeof PERSISTENCE_SETTINGS[number] | typeof MEMORY_SETTINGS[number]

export const DEFAULT_REDIS_PORT = 6379

function command (...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`
}

/** Removes credentials: `redis://:secret@host:6380/1` → `redis://host:6380/1` (the database only when not 0). */
export function redisTarget (url: URL): string {
  const db = databaseOf(url)
  return `${url.protocol}//${url.hostname}:${url.port === '' ? DEFAULT_REDIS_PORT : url.port}${db === undefined ? '' : `/${db}`}`
}

/** The database number the URL's path names, when it names one other than 0 (ioredis reads it the same way). */
function databaseOf (url: URL): number | undefined {
  const match = /^\/(\d{1,5})\/?$/.exec(url.pathname)
  const db = match === null ? 0 : Number(match[1])
  return db === 0 ? undefined : db
}

const MAX_ERROR_LENGTH = 120

/**
 * A Redis error line made safe to print (it never holds the password, but cap it anyway): control characters become
 * spaces, and a longer line is cut at a word boundary, with an ellipsis (never mid-word).
 */
function redisError (text: string): string {
  // eslint-disable-next-line no-control-regex
  return cutBetweenWords(text.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/ {2,}/g, ' ').trim(), MAX_ERROR_LENGTH)
}

/**
 * A refusal of the credentials, said as what to change in REDIS_URL (one line; the URL it suggests has placeholders,
 * never the password): WRONGPASS (Redis >= 6) or `invalid password` (older) for a wrong password,
 * NOAUTH when REDIS_URL has none, and an AUTH sent to a Redis that has no password. Undefined for any other error.
 */
function authRefusal (text: string, url: URL, sentPassword: boolean): string | undefined {
  const code = /^\S+/.exec(text)?.[0] ?? ''
  const shape = (userinfo: string): string => `${url.protocol}//${userinfo}${url.host}${url.pathname === '/' ? '' : url.pathname}`
  const withPassword = url.username === '' ? shape(':<password>@') : shape('<user>:<password>@')
  if (code === 'WRONGPASS' || /^ERR invalid (username-)?password/i.test(text)) {
    const which = url.username === '' ? 'password' : 'user name and password'
    return `Redis refused the ${which} in REDIS_URL (${code === 'WRONGPASS' ? code : 'invalid password'}): set REDIS_URL to ${withPassword} with this Redis's ${url.username === '' ? 'password' : 'user and password'}`
  }
  if (code === 'NOAUTH' && !sentPassword) {
    return `this Redis requires a password and REDIS_URL has none (NOAUTH): set REDIS_URL to ${withPassword}`
  }
  if (noPasswordSet(text)) return passwordIgnored(url)
  return undefined
}

/** Redis' refusal of an AUTH when it has no password (Redis >= 6, and older). ioredis goes on without the password. */
function noPasswordSet (text: string): boolean {
  return /AUTH <password> called without any password configured|Client sent AUTH, but no password is set/i.test(text)
}

/** What to do about a password this Redis does not have (a warning: the app connects, ignoring it). */
function passwordIgnored (url: URL): string {
  const bare = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`
  return 'REDIS_URL has a password this Redis does not have (AUTH refused: it has none), which the app ignores as it ' +
    `connects; remove it from REDIS_URL (${bare}), or give this Redis one (requirepass)`
}

const NOT_THERE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/**
 * For a `rediss:` URL whose connection failed as a plain (non-TLS) Redis fails it (it waits for a command that a TLS
 * handshake never is: a timeout; or closes, or answers what is no TLS): what to check, as token-store says it.
 * Nothing when nothing is there (refused, unknown host, unreachable) or for a certificate problem (it speaks TLS).
 */
function tlsHint (url: URL, code: string | undefined): string {
  if (url.protocol !== 'rediss:') return ''
  if (code !== undefined && (NOT_THERE.has(code) || code.includes('CERT') || code.includes('SELF_SIGNED') || code.startsWith('UNABLE_TO_'))) return ''
  return ' (rediss:// needs a Redis that speaks TLS; for a plain Redis use redis://)'
}

/**
 * A plain `redis:` URL whose connection was taken, then reset or closed before PONG: what a server of another protocol
 * at that port does with a Redis command (PostgreSQL, an MQTT broker), as well as a Redis going down.
 */
function closedHint (url: URL, code: string | undefined): string {
  if (url.protocol === 'rediss:' || (code !== 'CLOSED' && code !== 'ECONNRESET' && code !== 'EPIPE')) return ''
  return ' (something that is not Redis may listen there: check the host and port, 6379 by default)'
}

type Reply =
  | { kind: 'simple' | 'error', text: string }
  | { kind: 'integer', value: number }
  | { kind: 'bulk', text: string | null }
  | { kind: 'array', items: Reply[] | null }

/**
 * One RESP2 reply from the start of `buffer`: the reply and where the next one starts, undefined when the buffer
 * does not hold a whole one yet, or 'bad' when it is not RESP.
 */
function readReply (buffer: string, from = 0): { reply: Reply, next: number } | undefined | 'bad' {
  const eol = buffer.indexOf('\r\n', from)
  if (eol === -1) return undefined
  const type = buffer[from]
  const line = buffer.slice(from + 1, eol)
  const next = eol + 2
  switch (type) {
    case '+': return { reply: { kind: 'simple', text: line }, next }
    case '-': return { reply: { kind: 'error', text: line }, next }
    case ':': return /^-?\d+$/.test(line) ? { reply: { kind: 'integer', value: Number(line) }, next } : 'bad'
    case '$': {
      if (!/^-?\d+$/.test(line)) return 'bad'
      const length = Number(line)
      if (length < 0) return { reply: { kind: 'bulk', text: null }, next }
      if (buffer.length < next + length + 2) return undefined
      return { reply: { kind: 'bulk', text: buffer.slice(next, next + length) }, next: next + length + 2 }
    }
    case '*': {
      if (!/^-?\d+$/.test(line)) return 'bad'
      const count = Number(line)
      if (count < 0) return { reply: { kind: 'array', items: null }, next }
      const items: Reply[] = []
      let at = next
      for (let i = 0; i < count; i++) {
        const item = readReply(buffer, at)
        if (item === undefined || item === 'bad') return item
        items.push(item.reply)
        at = item.next
      }
      return { reply: { kind: 'array', items }, next: at }
    }
    default: return 'bad'
  }
}

/** The value of a `CONFIG GET <name>` answer (`*2 name value`), or undefined. */
function configValue (reply: Reply, name: string): string | undefined {
  if (reply.kind !== 'array' || reply.items === null) return undefined
  for (let i = 0; i + 1 < reply.items.length; i += 2) {
    const key = reply.items[i]
    const value = reply.items[i + 1]
    if (key?.kind === 'bulk' && key.text === name && value?.kind === 'bulk' && value.text !== null) return value.text
  }
  return undefined
}

/**
 * Sends `AUTH` (when the URL has a password) and `PING` over a raw TCP (or TLS
 * for `rediss:`) connection and expects `+PONG`; then, as asked, the tracking, configuration and access questions
 * (`access`: what the app runs, on a throwaway key, hash and channel under APP_KEY_PREFIX). Resolves, never rejects: a
 * refused connection, a timeout or an error reply is `ok: false` with a reason.
 */
export async function pingRedis (redisUrl: string, opts: { timeoutMs: number, tracking?: boolean, persistence?: boolean, memory?: boolean, access?: boolean }): Promise<RedisPing> {
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
  let password: string
  let username: string
  try {
    password = decodeURIComponent(url.password)
    username = decodeURIComponent(url.username)
  } catch {
    // Said in readConfig's words by doctor before it gets here (redisUrlProblem); never the password itself.
    return { ok: false, target, detail: 'REDIS_URL: its user name or password is not valid percent-encoding: write each % in it as %25' }
  }
  // Each step: what is sent. All go out at once; the answers come back in the same order.
  type Step = 'auth' | 'select' | 'ping' | 'tracking' | 'info' | 'access' | Setting
  /**
   * `command`: what an access step asks about (`client|id` style); `then`: the steps to send once this one's answer
   * is in (given whether it was refused).
   */
  interface Sent { name: Step, send: string, command?: string, then?: (refused: boolean) => Sent[] }
  const steps: Sent[] = []
  if (password !== '') steps.push({ name: 'auth', send: username !== '' ? command('AUTH', username, password) : command('AUTH', password) })
  // The URL's database, as the app's client selects it: one this Redis lacks was skipped by ioredis, which went on in
  // database 0 (a warning, then every key in the wrong database).
  const db = databaseOf(url)
  if (db !== undefined) steps.push({ name: 'select', send: command('SELECT', String(db)) })
  steps.push({ name: 'ping', send: command('PING') })
  // Switched on for this short-lived connection only (a prefix no key has), then the connection closes.
  if (opts.tracking === true) {
    steps.push({ name: 'tracking', send: command('CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', 'aihubmix-doctor-probe:') })
    steps.push({ name: 'info', send: command('INFO', 'server') })
  }
  if (opts.persistence === true) {
    for (const name of PERSISTENCE_SETTINGS) steps.push({ name, send: command('CONFIG', 'GET', name) })
  }
  if (opts.memory === true) {
    for (const name of MEMORY_SETTINGS) steps.push({ name, send: command('CONFIG', 'GET', name) })
  }
  // What the app runs, tried on a throwaway key, hash and channel under its prefix, so that an ACL's command, key and
  // channel rules answer as they would the app. Nothing the app uses is touched: the key lives 10 s (SET ... PX), and
  // the hash is made only once PEXPIRE has been allowed, and is given the same TTL at once; both are deleted after.
  const access: RedisAccess = { commands: [], keys: false, channels: false, unknown: [], refused: [] }
  if (opts.access === true) {
    const id = randomBytes(8).toString('hex')
    const key = `${APP_KEY_PREFIX}doctor:${id}`
    const hash = `${key}:hash`
    const channel = `${APP_KEY_PREFIX}doctor:${id}`
    const ask = (name: string, ...args: string[]): Sent => ({ name: 'access', command: name, send: command(...args) })
    const later = (pexpireRefused: boolean): Sent[] => [
      ask('getdel', 'GETDEL', key),
      ask('del', 'DEL', key),
      ...(pexpireRefused
        ? []
        : [
            ask('hset', 'HSET', hash, 'f', '1'),
            ask('pexpire', 'PEXPIRE', hash, PROBE_TTL_MS),
            ask('hlen', 'HLEN', hash),
            ask('hgetall', 'HGETALL', hash),
            ask('hdel', 'HDEL', hash, 'f'),
            ask('del', 'DEL', hash)
          ]),
      ask('eval', 'EVAL', PROBE_SCRIPT, '0'),
      // Refused or not by the ACL before the script cache is looked at: NOSCRIPT means allowed.
      ask('evalsha', 'EVALSHA', createHash('sha1').update(PROBE_SCRIPT).digest('hex'), '0'),
      ask('publish', 'PUBLISH', channel, ''),
      ask('time', 'TIME'),
      ask('info', 'INFO', 'server'),
      // ioredis 6 starts every connection with HELLO (a Redis older than 6 does not know it, and ioredis goes on).
      ask('hello', 'HELLO', '2'),
      // Last: a subscribed connection takes nothing but (UN)SUBSCRIBE and PING until it unsubscribes.
      ask('subscribe', 'SUBSCRIBE', channel),
      ask('unsubscribe', 'UNSUBSCRIBE', channel)
    ]
    const first = [
      ask('set', 'SET', key, '1', 'PX', PROBE_TTL_MS),
      ask('get', 'GET', key),
      ask('mget', 'MGET', key),
      ask('pttl', 'PTTL', key),
      { ...ask('pexpire', 'PEXPIRE', key, PROBE_TTL_MS), then: later }
    ]
    steps.push(...first)
  }

  return await new Promise<RedisPing>((resolve) => {
    let settled = false
    let buffered = ''
    let pong = false
    let ignored: string | undefined
    let tracking: RedisPing['tracking']
    /** Whether the last access step (UNSUBSCRIBE) was answered, and so every one before it. */
    let accessDone = false
    const config: Partial<Record<Setting, string>> = {}
    /** Why a setting has no value: the first refusal (or odd answer) among those asked for one check. */
    const refusals: Partial<Record<Setting, string>> = {}
    const refusal = (names: readonly Setting[]): string | undefined => names.map((name) => refusals[name]).find((r) => r !== undefined)
    const persistence = (): RedisPersistence | undefined => {
      if (opts.persistence !== true || !pong) return undefined
      const { appendonly, appendfsync, save } = config
      const refused = refusal(PERSISTENCE_SETTINGS)
      if (refused === undefined && appendonly !== undefined && appendfsync !== undefined && save !== undefined) {
        return { readable: true, appendonly, appendfsync, save }
      }
      return { readable: false, refused: refused ?? 'no answer' }
    }
    const memory = (): RedisMemory | undefined => {
      if (opts.memory !== true || !pong) return undefined
      const policy = config['maxmemory-policy']
      const maxmemory = config.maxmemory
      const refused = refusal(MEMORY_SETTINGS)
      if (refused === undefined && policy !== undefined && maxmemory !== undefined) return { readable: true, policy, maxmemory }
      return { readable: false, refused: refused ?? 'no answer' }
    }
    const finish = (ok: boolean, detail: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const found = ok ? persistence() : undefined
      const memoryFound = ok ? memory() : undefined
      // Said only when every command was answered (a command left unanswered is neither allowed nor refused).
      const accessFound = ok && accessDone ? access : undefined
      resolve({
        ok,
        target,
        detail,
        ...(tracking !== undefined ? { tracking } : {}),
        ...(found !== undefined ? { persistence: found } : {}),
        ...(memoryFound !== undefined ? { memory: memoryFound } : {}),
        ...(accessFound !== undefined ? { access: accessFound } : {}),
        ...(ok && ignored !== undefined ? { passwordIgnored: ignored } : {})
      })
    }
    // After the PONG, a silence or a close only leaves the extra questions unanswered. Before it, over TLS, a silence
    // or a close is what a plain Redis does to a TLS handshake (it waits for a command): say so.
    const stop = (detail: string, code?: string): void => {
      if (pong) finish(true, 'answered PONG')
      else finish(false, `${detail}${tlsHint(url, code)}${closedHint(url, code)}`)
    }
    const timer = setTimeout(() => { stop(`no answer within ${opts.timeoutMs} ms`) }, opts.timeoutMs)
    const onConnect = (): void => { socket.write(steps.map((step) => step.send).join('')) }
    /** Notes what an access step's answer says of this user's rights; whether it was refused. */
    const judge = (name: string, reply: Reply): boolean => {
      if (reply.kind !== 'error') return false
      const text = reply.text
      if (text.startsWith('NOPERM')) {
        // The refused command is named in the reply (Redis 6 and 7 alike); else it was its key or its channel.
        if (/no permissions to run the '[^']+' command/i.test(text)) {
          if (!access.commands.includes(name)) access.commands.push(name)
        } else if (/channel/i.test(text)) access.channels = true
        else if (/\bkeys?\b/i.test(text)) access.keys = true
        else if (!access.commands.includes(name)) access.commands.push(name)
        return true
      }
      if (/^ERR unknown command/i.test(text)) {
        if (name !== 'hello' && !access.unknown.includes(name)) access.unknown.push(name)
        return true
      }
      if (name === 'evalsha' && text.startsWith('NOSCRIPT')) return false
      if (!access.refused.some((r) => r.command === name)) access.refused.push({ command: name, error: redisError(text) })
      return true
    }
    const socket: Socket = url.protocol === 'rediss:'
      ? tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}) }, onConnect)
      : netConnect({ host, port }, onConnect)
    socket.setEncoding('utf8')
    socket.on('error', (err) => { stop(describeNetworkError(err), (err as { code?: unknown }).code as string | undefined) })
    socket.on('close', () => { stop('the connection closed before PONG', 'CLOSED') })
    socket.on('data', (chunk: string) => {
      buffered += chunk
      if (buffered.length > 64 * 1024) {
        stop(NOT_REDIS)
        return
      }
      for (;;) {
        const read = readReply(buffered)
        if (read === undefined) return
        if (read === 'bad') {
          stop(NOT_REDIS)
          return
        }
        buffered = buffered.slice(read.next)
        const { reply } = read
        const step = steps.shift()
        if (step === undefined) return
        switch (step.name) {
          case 'select':
            if (reply.kind === 'error') {
              // Without a password in REDIS_URL, a Redis that wants one answers the SELECT with NOAUTH, as it would the PING.
              finish(false, /DB index is out of range|invalid DB index/i.test(reply.text)
                ? `REDIS_URL names database ${db ?? 0}, which this Redis does not have (${redisError(reply.text)}): use a number below its "databases" setting (16 by default), such as ${url.protocol}//${url.host}/0`
                : authRefusal(reply.text, url, password !== '') ?? `Redis refused: ${redisError(reply.text)}`)
              return
            }
            break
          case 'auth':
          case 'ping':
            if (step.name === 'auth' && reply.kind === 'error' && noPasswordSet(reply.text)) {
              // ioredis goes on (it warns on its console): so do the next steps, as the app's connection would.
              ignored = passwordIgnored(url)
              break
            }
            if (reply.kind === 'error') {
              finish(false, authRefusal(reply.text, url, password !== '') ?? `Redis refused: ${redisError(reply.text)}`)
              return
            }
            if (reply.kind !== 'simple' || reply.text !== (step.name === 'auth' ? 'OK' : 'PONG')) {
              finish(false, NOT_REDIS)
              return
            }
            if (step.name === 'ping') pong = true
            break
          case 'tracking':
            tracking = reply.kind === 'simple' && reply.text === 'OK'
              ? { allowed: true, detail: 'CLIENT TRACKING allowed' }
              : { allowed: false, detail: reply.kind === 'error' ? `CLIENT TRACKING refused: ${redisError(reply.text)}` : 'unexpected answer to CLIENT TRACKING' }
            break
          case 'info':
            if (tracking?.allowed === true) {
              tracking = reply.kind === 'bulk' && reply.text !== null && /^run_id:/m.test(reply.text)
                ? { allowed: true, detail: 'CLIENT TRACKING and INFO allowed' }
                : { allowed: false, detail: reply.kind === 'error' ? `INFO refused: ${redisError(reply.text)}` : 'no run_id in the answer to INFO server' }
            }
            break
          case 'access': {
            const name = step.command ?? ''
            const refused = judge(name, reply)
            if (name === 'unsubscribe') accessDone = true
            const next = step.then?.(refused) ?? []
            if (next.length > 0) {
              steps.push(...next)
              socket.write(next.map((n) => n.send).join(''))
            }
            break
          }
          default: {
            const value = configValue(reply, step.name)
            if (value !== undefined) config[step.name] = value
            else refusals[step.name] = reply.kind === 'error' ? `CONFIG GET refused: ${redisError(reply.text)}` : `no value for ${step.name}`
          }
        }
        if (steps.length === 0) {
          finish(true, 'answered PONG')
          return
        }
      }
    })
  })
}
