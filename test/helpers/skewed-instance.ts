/**
 * Run as a child process (test/token-store/instance-clock-skew.test.ts), with test/helpers/shifted-clock.mjs preloaded:
 * another instance, on a machine whose clock is off, sharing the parent's Redis and key prefix. It calls getFresh
 * once for a session with a refresher that presents nothing to anybody: it reports the refresh token it was given
 * on stdout and answers as a rotating provider answers a token presented before, with RefreshRejectedError. Then
 * it prints one JSON line: what getFresh answered and the warnings the store logged.
 *
 * argv: <redis url> <JSON: { keyPrefix, sid, options, force?, staleAccessToken?, jumpMs? }>
 */
import { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { RefreshRejectedError, createTokenStore } from '@fastify-aihubmix/token-store'
import { KEY_A } from './token-store.js'

const [url, json] = process.argv.slice(2) as [string, string]
const job = JSON.parse(json) as { keyPrefix: string, sid: string, options: Record<string, number>, force?: boolean, staleAccessToken?: string, jumpMs?: number }
const warnings: string[] = []
const noop = (): void => {}
const logger = {
  level: 'warn',
  fatal: noop,
  error: noop,
  warn: (...args: unknown[]) => { warnings.push(String(args.find((a) => typeof a === 'string'))) },
  info: noop,
  debug: noop,
  trace: noop,
  silent: noop,
  child: () => logger
} as unknown as FastifyBaseLogger

const redis = new Redis(url)
await new Promise((resolve) => redis.once('ready', resolve))
const store = createTokenStore({ encryptionKeys: KEY_A, redis, keyPrefix: job.keyPrefix, ...job.options }, { logger })
// One round trip on the connection, after the store's reading of Redis's clock (sent first, answered first).
await store.get(job.sid)
// Then, with `jumpMs`, the wall clock steps (an NTP step, an operator): Redis's clock was read before it.
if (job.jumpMs !== undefined && job.jumpMs !== 0) {
  const before = Date.now
  Date.now = () => before() + (job.jumpMs ?? 0)
}
const presented: string[] = []
let outcome: Record<string, unknown>
try {
  const set = await store.getFresh(job.sid, async (refreshToken) => {
    presented.push(refreshToken)
    throw new RefreshRejectedError({ cause: new Error('invalid_grant: refresh token already used') })
  }, { force: job.force === true, ...(job.staleAccessToken === undefined ? {} : { staleAccessToken: job.staleAccessToken }) })
  outcome = { accessToken: set.accessToken }
} catch (err) {
  outcome = { code: (err as { code?: string }).code ?? String(err) }
}
process.stdout.write(JSON.stringify({ ...outcome, presented, warnings }) + '\n')
await store.close()
redis.disconnect()
