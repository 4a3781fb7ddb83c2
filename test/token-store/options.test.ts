import t from 'tap'
import Fastify from 'fastify'
import {
  tokenStore,
  DEFAULT_BACKEND,
  DEFAULT_KEY_PREFIX,
  DEFAULT_REFRESH_SKEW_MS,
  DEFAULT_REFRESH_TOKEN_TTL_MS,
  DEFAULT_SESSION_TTL_MS,
  DEFAULT_LOCK_LEASE_MS,
  DEFAULT_LOCK_WAIT_MS,
  DEFAULT_REFRESH_BACKOFF_MS,
  DEFAULT_REFRESH_BACKOFF_MAX_MS,
  DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  TokenStoreOptionsError,
  DEFAULT_MAX_SESSIONS_PER_USER
} from '@fastify-aihubmix/token-store'
import { resolveOptions } from '../../src/token-store/options.js'
import { cleanupPrefix, connectRedis, scanKeys, uniquePrefix } from '../helpers/redis.js'
import { KEY_A, KEY_B, sid, startLogged, tokenSet } from '../helpers/token-store.js'

t.test('defaults', async t => {
  const o = resolveOptions({ encryptionKeys: KEY_A })
  t.equal(o.backend, DEFAULT_BACKEND)
  t.equal(o.backend, 'memory')
  t.equal(o.redis, undefined)
  t.equal(o.keyPrefix, DEFAULT_KEY_PREFIX)
  t.equal(o.keyPrefix, 'aihubmix:')
  t.equal(o.refreshSkewMs, DEFAULT_REFRESH_SKEW_MS)
  t.equal(o.refreshSkewMs, 5 * 60_000)
  t.equal(o.refreshTokenTtlMs, DEFAULT_REFRESH_TOKEN_TTL_MS)
  t.equal(o.refreshTokenTtlMs, 30 * 24 * 3600_000)
  t.equal(o.sessionTtlMs, DEFAULT_SESSION_TTL_MS)
  t.equal(o.sessionTtlMs, 24 * 3600_000)
  t.equal(o.lockLeaseMs, DEFAULT_LOCK_LEASE_MS)
  t.equal(o.lockLeaseMs, 10_000, 'a lock left by a dead process frees within seconds')
  t.equal(o.lockWaitMs, DEFAULT_LOCK_WAIT_MS)
  t.equal(o.lockWaitMs, 12_000)
  t.equal(o.refreshBackoffMs, DEFAULT_REFRESH_BACKOFF_MS)
  t.equal(o.refreshBackoffMs, 1000)
  t.equal(o.refreshBackoffMaxMs, DEFAULT_REFRESH_BACKOFF_MAX_MS)
  t.equal(o.refreshBackoffMaxMs, 30_000)
  t.equal(o.redisCommandTimeoutMs, DEFAULT_REDIS_COMMAND_TIMEOUT_MS)
  t.same(o.hooks, {})
  t.equal(o.maxSessionsPerUser, DEFAULT_MAX_SESSIONS_PER_USER)
  t.equal(o.maxSessionsPerUser, 50)
  t.equal(o.endUserSessionsOnRevoked, false)
  t.ok(o.lockWaitMs > o.lockLeaseMs, 'waiters outlast a crashed holder\'s lease')
})

t.test('a redis client selects the redis backend', async t => {
  const fakeClient = { call: async () => null, duplicate: () => ({}) }
  const o = resolveOptions({ encryptionKeys: KEY_A, redis: fakeClient })
  t.equal(o.backend, 'redis')
  t.equal(o.redis, fakeClient)
})

t.test('resolveOptions returns a new object and never mutates the caller\'s', async t => {
  const hooks = Object.freeze({ onRefresh: () => {} })
  const input = Object.freeze({ encryptionKeys: Object.freeze([KEY_A]), refreshSkewMs: 1000, hooks })
  const o = resolveOptions(input)
  t.not(o as unknown, input)
  t.not(o.hooks, hooks)
  t.equal(o.hooks.onRefresh, hooks.onRefresh)
  t.equal(o.refreshSkewMs, 1000)
  t.same(Object.keys(input), ['encryptionKeys', 'refreshSkewMs', 'hooks'])
})

t.test('bad options: an error that names the option path', async t => {
  const cases: Array<[Record<string, unknown> | unknown, string]> = [
    [undefined, '(options)'],
    [{}, 'encryptionKeys'],
    [{ encryptionKeys: 'short' }, 'encryptionKeys'],
    [{ encryptionKeys: [KEY_A, Buffer.alloc(31)] }, 'encryptionKeys[1]'],
    [{ encryptionKeys: KEY_A, refreshSkewMs: -1 }, 'refreshSkewMs'],
    [{ encryptionKeys: KEY_A, refreshSkewMs: 1.5 }, 'refreshSkewMs'],
    [{ encryptionKeys: KEY_A, refreshTokenTtlMs: 0 }, 'refreshTokenTtlMs'],
    [{ encryptionKeys: KEY_A, sessionTtlMs: '1d' }, 'sessionTtlMs'],
    [{ encryptionKeys: KEY_A, lockLeaseMs: 10 }, 'lockLeaseMs'],
    [{ encryptionKeys: KEY_A, lockWaitMs: -5 }, 'lockWaitMs'],
    [{ encryptionKeys: KEY_A, redisCommandTimeoutMs: -1 }, 'redisCommandTimeoutMs'],
    [{ encryptionKeys: KEY_A, refreshBackoffMs: -1 }, 'refreshBackoffMs'],
    [{ encryptionKeys: KEY_A, refreshBackoffMaxMs: 1.5 }, 'refreshBackoffMaxMs'],
    [{ encryptionKeys: KEY_A, refreshBackoffMs: 5000, refreshBackoffMaxMs: 4000 }, 'refreshBackoffMaxMs'],
    [{ encryptionKeys: KEY_A, keyPrefix: '' }, 'keyPrefix'],
    [{ encryptionKeys: KEY_A, keyPrefix: 'app{1}:' }, 'keyPrefix'],
    [{ encryptionKeys: KEY_A, backend: 'postgres' }, 'backend'],
    [{ encryptionKeys: KEY_A, maxSessionsPerUser: 0 }, 'maxSessionsPerUser'],
    [{ encryptionKeys: KEY_A, endUserSessionsOnRevoked: 'yes' }, 'endUserSessionsOnRevoked'],
    [{ encryptionKeys: KEY_A, hooks: { onRefresh: 'log it' } }, 'hooks.onRefresh'],
    [{ encryptionKeys: KEY_A, hooks: { onLogin: () => {} } }, 'hooks.onLogin'],
    [{ encryptionKeys: KEY_A, refreshSkew: 1000 }, 'refreshSkew'],
    [{ encryptionKeys: KEY_A, redis: 'http://localhost' }, 'redis'],
    [{ encryptionKeys: KEY_A, redis: 42 }, 'redis'],
    [{ encryptionKeys: KEY_A, redis: { get: () => {} } }, 'redis'],
    [{ encryptionKeys: KEY_A, backend: 'memory', redis: { call: () => {}, duplicate: () => {} } }, 'backend']
  ]
  for (const [input, path] of cases) {
    let thrown: unknown
    try {
      resolveOptions(input)
    } catch (err) {
      thrown = err
    }
    t.ok(thrown instanceof TokenStoreOptionsError, `${JSON.stringify(input) ?? 'undefined'} rejected`)
    t.match(thrown, {
      code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS',
      message: `Invalid token-store option "${path}": `
    }, `names ${path}`)
  }
})

// "new, old" split on ",": the blank made the second key ` old`, a passphrase, another key than the one meant, and
// nothing said so. Not refused (a deployment running with a key that ends in a newline, as a Kubernetes secret made
// from a file does, must go on starting): said at start, one line per value, naming the option and the fix.
t.test('a key or session secret with a blank or a quote at either end: taken as written, one warning each', async t => {
  const o = resolveOptions({
    encryptionKeys: [KEY_A, ` ${KEY_B}`, `"${'p'.repeat(40)}"`, `${'q'.repeat(20)} ${'r'.repeat(20)}`],
    sessionCookie: { name: 'sid', secret: `${'s'.repeat(40)}\n` }
  })
  t.equal(o.keyRing.keyIds.length, 4, 'every key taken')
  t.same(o.warnings.map((w) => w.slice(0, w.indexOf(' has '))), [
    'token-store: encryptionKeys[1]',
    'token-store: encryptionKeys[2]',
    'token-store: sessionCookie.secret'
  ], 'one line for each untrimmed value, none for a blank inside one')
  t.match(o.warnings[0], /has a blank at its start or end, and is used as written: .* trim each, e\.g\. value\.split\(','\)\.map\(\(s\) => s\.trim\(\)\)/)
  t.match(o.warnings[1], /has a quote at its start or end, and is used as written: .* remove the quotes where the value is set/, 'quotes: what removes them (trimming does not)')
  t.notMatch(o.warnings.join('\n'), /p{40}|s{40}|b2b2/, 'no key or secret in the lines')
  t.same(resolveOptions({ encryptionKeys: [KEY_A, KEY_B] }).warnings, [], 'none for trimmed values')
  const { app, lines } = await startLogged(t, { encryptionKeys: [KEY_A, ` ${KEY_B}`] })
  t.match(lines.filter((l) => l.level === 40).map((l) => l.msg), [/^token-store: encryptionKeys\[1\] has a blank at its start or end/], 'logged at start')
  await app.close()
})

t.test('the plugin fails registration with the same error', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(tokenStore, { encryptionKeys: KEY_A, refreshSkewMs: -1 })
  await t.rejects(async () => { await app.ready() }, {
    code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS',
    message: /"refreshSkewMs"/
  })
})

t.test('register options of Fastify itself are not mistaken for ours', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: KEY_A, logLevel: 'warn', prefix: '/x' } as Parameters<typeof tokenStore>[1])
  await app.ready()
  t.ok(app.hasDecorator('tokenStore'))
})

t.test('backend "redis" without a client and without @fastify/redis fails at registration', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(tokenStore, { encryptionKeys: KEY_A, backend: 'redis' })
  await t.rejects(async () => { await app.ready() }, {
    code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS',
    message: /"redis".*@fastify\/redis registered before this plugin/
  })
})

t.test('backend "redis" uses fastify.redis (as @fastify/redis decorates it)', async t => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('opt')
  cleanupPrefix(t, redis, prefix)
  const app = Fastify()
  t.teardown(() => app.close())
  app.decorate('redis', redis as never) // as @fastify/redis does
  await app.register(tokenStore, { encryptionKeys: KEY_A, backend: 'redis', keyPrefix: prefix })
  await app.ready()
  const id = sid()
  await app.tokenStore.save(id, tokenSet())
  t.same(await scanKeys(redis, prefix), [`${prefix}{${id}}:tok`], 'written to the decorated client, with the key layout')
  await app.close()
  t.equal(await redis.ping(), 'PONG', 'closing the app leaves the client it did not create open')
})

// `redis: env.REDIS_URL` with REDIS_URL unset ran in memory without a word: several instances, each with its own
// sessions, signed users out at random.
t.test('a redis option given as undefined: memory, and one warning that says so', async t => {
  const unset: Record<string, unknown> = { encryptionKeys: KEY_A, redis: process.env.AIHUBMIX_TEST_UNSET_VARIABLE }
  const o = resolveOptions(unset)
  t.equal(o.backend, 'memory')
  t.same(o.warnings, ['token-store: the redis option is given as undefined (an unset REDIS_URL?): sessions and token sets live ' +
    'in this process\'s memory, for one instance only. Fix: set it, or leave the option out (or backend: \'memory\') for memory on purpose'])
  t.same(resolveOptions({ encryptionKeys: KEY_A }).warnings, [], 'no line without the option')
  t.same(resolveOptions({ encryptionKeys: KEY_A, backend: 'memory', redis: undefined }).warnings, [], 'nor with memory asked for')
})
