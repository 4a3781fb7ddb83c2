/**
 * Redis for tests.
 *
 * - `redisUrl()`: `REDIS_URL`, default `redis://127.0.0.1:6379`.
 * - `connectRedis(t)`: a NEW connected ioredis client, quit at the test's teardown. When Redis is unreachable it
 *   returns undefined after marking the test: SKIPPED with a loud notice on stderr, or FAILED under `CI=true`.
 *   Call it first in a test (a skip is a `plan(0)`): `const redis = await connectRedis(t); if (!redis) return`.
 *   `connectRedis(t, options, 6)`: the same with ioredis 6 (installed as `ioredis6`; RESP3 by default), typed as
 *   the ioredis 5 client the tests are written against (what they use is the same in both).
 * - `IOREDIS_MAJORS`: the ioredis majors token-store supports, for tests that run once with each.
 * - `uniquePrefix(label)`: a key prefix no other test (or parallel test file) uses.
 * - `cleanupPrefix(t, redis, prefix)`: deletes the prefix's keys at teardown.
 * - `scanKeys(redis, prefix)`: every key under a prefix.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { RedisOptions } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'

interface TestLike {
  teardown (fn: () => unknown): void
  plan (n: number, comment?: string): void
  fail (message: string): unknown
  comment (...args: unknown[]): void
}

export function redisUrl (): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
}

/** The URL without credentials, for messages. */
export function redisUrlForDisplay (): string {
  try {
    const url = new URL(redisUrl())
    url.username = ''
    url.password = ''
    return url.toString()
  } catch {
    return '(unparsable REDIS_URL)'
  }
}

export const IOREDIS_MAJORS = [5, 6] as const
export type IoredisMajor = typeof IOREDIS_MAJORS[number]

export async function connectRedis (t: TestLike, options: RedisOptions = {}, major: IoredisMajor = 5): Promise<Redis | undefined> {
  const settings: RedisOptions = {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    // A test client gives up quickly instead of reconnecting forever when Redis is down.
    retryStrategy: (times: number) => (times > 3 ? null : 100),
    ...options
  }
  const client = major === 6 ? new Redis6(redisUrl(), settings as object) as unknown as Redis : new Redis(redisUrl(), settings)
  client.on('error', () => {}) // connection errors surface through the commands
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    client.disconnect()
    const message = `Redis unreachable at ${redisUrlForDisplay()}: ${(err as Error).message.replace(/\.$/, '')}`
    if (process.env.CI === 'true') {
      t.fail(`${message} (Redis is required under CI=true)`)
    } else {
      process.stderr.write(`\n!!!!! SKIPPING Redis test: ${message}. Start Redis or set REDIS_URL to run it. !!!!!\n\n`)
      t.plan(0, `SKIP: ${message}`)
    }
    return undefined
  }
  t.teardown(async () => {
    await client.quit().catch(() => client.disconnect())
  })
  return client
}

export function uniquePrefix (label = 'test'): string {
  return `test:${label}:${process.pid}-${randomBytes(6).toString('hex')}:`
}

export async function scanKeys (redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', globEscape(prefix) + '*', 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return [...new Set(keys)].sort()
}

/** A key as one MULTI read it: its remaining life, its type, and its value (a string, or a hash as JSON). */
export interface StoredKey { key: string, ttl: number, type: string, value: string }

/**
 * Every key under `prefix` with its TTL, type and value, each key read at one instant (one MULTI), so a key that
 * ends between the SCAN and its read (a lock released, a marker used) is never seen half read. Keys that ended in
 * between are returned apart, by name.
 */
export async function readStoredKeys (redis: Redis, prefix: string): Promise<{ stored: StoredKey[], ended: string[] }> {
  const stored: StoredKey[] = []
  const ended: string[] = []
  for (const key of await scanKeys(redis, prefix)) {
    const answers = await redis.multi().pttl(key).type(key).get(key).hgetall(key).exec()
    if (answers === null) throw new Error(`MULTI for ${key} was discarded`)
    const [ttl, type, text, hash] = answers.map(([, value]) => value)
    if (type === 'none') ended.push(key)
    else stored.push({ key, ttl: Number(ttl), type: String(type), value: type === 'string' ? String(text) : JSON.stringify(hash) })
  }
  return { stored, ended }
}

/** Deletes every key under `prefix` when the test ends (registered now, so it runs before the client quits). */
export function cleanupPrefix (t: TestLike, redis: Redis, prefix: string): void {
  t.teardown(async () => {
    const keys = await scanKeys(redis, prefix)
    if (keys.length > 0) await redis.del(...keys)
  })
}

function globEscape (text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

/**
 * Records every command `client` sends, as `format(NAME, args)` makes it, into the returned array (clear it with
 * `length = 0`). ioredis routes every command, `call()` and auto-pipelined ones included, through sendCommand.
 */
export function recordCommands<T> (client: Redis, format: (name: string, args: string[]) => T): T[] {
  const commands: T[] = []
  const send = client.sendCommand.bind(client)
  client.sendCommand = ((command: { name: string, args: unknown[] }, ...rest: unknown[]) => {
    commands.push(format(command.name.toUpperCase(), command.args.map(String)))
    return (send as (...args: unknown[]) => unknown)(command, ...rest)
  }) as typeof client.sendCommand
  return commands
}

/**
 * Resolves when `client` next sends a command named `name` (upper case) whose arguments `match` accepts, as ioredis
 * writes it to the connection (sendCommand writes at once on a ready connection), with the promise of its answer.
 */
export function nextCommand (client: Redis, name: string, match: (args: string[]) => boolean = () => true): Promise<{ answer: Promise<unknown> }> {
  return new Promise((resolve) => {
    const send = client.sendCommand
    client.sendCommand = ((command: { name: string, args: unknown[], promise: Promise<unknown> }, ...rest: unknown[]) => {
      const result = (send as (...args: unknown[]) => unknown).call(client, command, ...rest)
      if (command.name.toUpperCase() === name && match(command.args.map(String))) {
        client.sendCommand = send
        resolve({ answer: command.promise })
      }
      return result
    }) as typeof client.sendCommand
  })
}
