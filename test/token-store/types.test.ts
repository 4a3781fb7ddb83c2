/**
 * Type tests: checked by `npx tsc -p test/tsconfig.json` (a `@ts-expect-error` that stops erroring fails the
 * type check); the run-time part only makes sure the file runs.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import type { Redis, Cluster } from 'ioredis'
import type { Redis as Redis6, Cluster as Cluster6 } from 'ioredis6'
import { tokenStore, RefreshRejectedError, createTokenStore } from '@fastify-aihubmix/token-store'
import type {
  GetFreshOptions,
  Refresher,
  RequestTokens,
  SessionCheck,
  SessionOwner,
  TokenSet,
  TokenStore,
  TokenStoreOptions,
  UserSession
} from '@fastify-aihubmix/token-store'

function use (...values: unknown[]): void {
  t.ok(values.length >= 0)
}

// Options: what is assignable.
const minimal: TokenStoreOptions = { encryptionKeys: 'hex:' + '00'.repeat(32) }
const full: TokenStoreOptions = {
  encryptionKeys: [Buffer.alloc(32), 'base64:...'],
  backend: 'redis',
  redis: undefined as unknown as Redis,
  keyPrefix: 'app:',
  refreshSkewMs: 1,
  refreshTokenTtlMs: 1,
  sessionTtlMs: 1,
  lockLeaseMs: 1000,
  lockWaitMs: 1000,
  redisCommandTimeoutMs: 0,
  hooks: {
    onRefresh: ({ sid, set }) => use(sid, set.accessToken),
    onRefreshFailed: async ({ error }) => use(error),
    onRevoked: ({ sid }) => use(sid)
  }
}
const cluster: TokenStoreOptions = { encryptionKeys: 'x'.repeat(32), redis: undefined as unknown as Cluster }
// ioredis 6's clients too (the type is token-store's own, by shape: it compiles without ioredis installed).
const redis6: TokenStoreOptions = { encryptionKeys: 'x'.repeat(32), redis: undefined as unknown as Redis6 }
const cluster6: TokenStoreOptions = { encryptionKeys: 'x'.repeat(32), redis: undefined as unknown as Cluster6 }
// @ts-expect-error redis is an ioredis client, not its options
const redisOptions: TokenStoreOptions = { encryptionKeys: 'x'.repeat(32), redis: { host: '127.0.0.1', port: 6379 } }
// @ts-expect-error encryptionKeys is required
const noKeys: TokenStoreOptions = {}
// @ts-expect-error backend is 'memory' | 'redis'
const badBackend: TokenStoreOptions = { encryptionKeys: 'x'.repeat(32), backend: 'postgres' }
const withCookie: TokenStoreOptions = { ...minimal, sessionCookie: { name: 'sid', secret: ['s'.repeat(32), 'o'.repeat(32)] } }
// @ts-expect-error sessionCookie needs the cookie's name
const cookieWithoutName: TokenStoreOptions = { ...minimal, sessionCookie: { secret: 's'.repeat(32) } }
const check: SessionCheck = (session, now) => typeof session.at === 'number' && now - session.at > 1000 ? 'end' : undefined
const touch: SessionCheck = (session) => ({ touch: { ...session, seen: 1 } })
// @ts-expect-error a check answers undefined, 'end' or { touch }
const badCheck: SessionCheck = () => 'destroy'
const cached: TokenStoreOptions = { ...minimal, backend: 'redis', redisClientCache: true }
const cachedSized: TokenStoreOptions = { ...minimal, backend: 'redis', redisClientCache: { maxEntries: 1000, maxAgeMs: 5000 } }
// @ts-expect-error redisClientCache is a boolean or { maxEntries?, maxAgeMs? }
const cacheTypo: TokenStoreOptions = { ...minimal, redisClientCache: { size: 10 } }
use(minimal, full, cluster, redis6, cluster6, redisOptions, noKeys, badBackend, withCookie, cookieWithoutName, check, touch, badCheck, cached, cachedSized, cacheTypo)

// Refreshers: one-argument async functions returning a TokenSet; RefreshRejectedError is throwable.
const refresher: Refresher = async refreshToken => {
  if (refreshToken === '') throw new RefreshRejectedError({ cause: new Error('invalid_grant') })
  return { accessToken: 'a', tokenType: 'Bearer', expiresAt: 0, scope: [], obtainedAt: 0 }
}
// @ts-expect-error a refresher returns a TokenSet
const badRefresher: Refresher = async () => ({ access_token: 'a' })
use(badRefresher)
const opts: GetFreshOptions = { force: true, staleAccessToken: 'a' }

// Decorators.
const app = Fastify()
app.register(fastifyCookie)
app.register(tokenStore, minimal)
app.after(() => {
  const store: TokenStore = app.tokenStore
  app.register(fastifySession, { secret: 'x'.repeat(32), store: store.sessionStore })
  app.get('/', async request => {
    const tokens: RequestTokens = request.tokens
    const set: TokenSet | null = await tokens.get()
    const fresh: TokenSet = await tokens.getFresh(refresher, opts)
    await tokens.save(fresh)
    await tokens.clear()
    await tokens.endSession()
    // @ts-expect-error getFresh needs a refresher
    await tokens.getFresh()
    return { ok: set === null }
  })
  const record: Promise<unknown> = store.takeRecord('k')
  store.addSessionCheck(check)
  const ended: Promise<void> = store.endSession('sid')
  use(record, ended)
  // @ts-expect-error refreshSkewMs is read-only
  store.refreshSkewMs = 1
})

/** A user's sessions (never called: the types are what is checked). */
export function userSessionTypes (store: TokenStore): void {
  const sessions: Promise<UserSession[]> = store.listUserSessions('12345')
  const one: Promise<boolean> = store.endUserSession('12345', 'handle')
  const all: Promise<number> = store.endUserSessions('12345')
  const owner: Promise<SessionOwner | null> = store.sessionOwner('sid')
  const handle: Promise<string> = store.addUserSession('12345', 'sid', { userAgent: 'UA', ttlMs: 1000 })
  // @ts-expect-error how long the session may live is required
  store.addUserSession('12345', 'sid', { userAgent: 'UA' })
  store.setLastSeenReader((session) => typeof session.seen === 'number' ? session.seen : undefined)
  use(sessions, one, all, owner, handle)
}

t.test('types compile; the standalone store runs', async t => {
  const standalone = createTokenStore(minimal)
  t.equal(await standalone.get('sid'), null)
  await standalone.close()
  await app.close()
})
