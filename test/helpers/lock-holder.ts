/**
 * Run as a child process (test/token-store/dead-lock-owner.test.ts): starts a refresh of session `sid` through a
 * token store on Redis, so it takes the session's refresh lock, says `refreshing` on stdout from inside the
 * refresher, and never finishes: the parent kills it with SIGKILL there, leaving the lock behind.
 *
 * argv: <redis url> <key prefix> <sid> <lockLeaseMs>
 */
import { Redis } from 'ioredis'
import { createTokenStore } from '@fastify-aihubmix/token-store'
import { KEY_A } from './token-store.js'

const [url, keyPrefix, sid, leaseMs] = process.argv.slice(2) as [string, string, string, string]
const redis = new Redis(url)
const store = createTokenStore({ encryptionKeys: KEY_A, redis, keyPrefix, lockLeaseMs: Number(leaseMs) })
await store.getFresh(sid, async () => {
  process.stdout.write('refreshing\n')
  return await new Promise(() => {})
})
