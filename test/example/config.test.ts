import Fastify from 'fastify'
import t from 'tap'
import { configRefusal } from '../cli/capture.js'
import { readConfig, unreadVariables } from 'aihubmix-oauth'

// The example server's configuration: a bad or unsafe value stops the server with one clear line naming the variable.

const SECRET = 's'.repeat(40)
const REAL = { AIHUBMIX_BASE_URL: 'https://aihubmix.example', AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_x' }

t.test('defaults', async (t) => {
  const c = readConfig({})
  t.equal(c.port, 3000)
  t.equal(c.host, '127.0.0.1')
  t.equal(c.publicUrl, 'http://localhost:3000')
  t.equal(c.redirectUri, 'http://localhost:3000/auth/callback')
  t.same(c.scope, ['profile', 'balance'])
  t.equal(c.provider, undefined, 'no AIHUBMIX_BASE_URL: the embedded mock')
  t.equal(c.sessionSecretGenerated, true)
  t.ok(c.sessionSecret.length >= 32)
  t.equal(c.trustProxy, 'loopback')
  t.equal(c.redisUrl, undefined)
  t.equal(c.redisClientCache, false)
  t.equal(c.metricsPort, undefined, 'no METRICS_PORT: no metrics listener')
  t.equal(c.metricsHost, '127.0.0.1')
  t.not(readConfig({}).sessionSecret, c.sessionSecret, 'random per process')
})

t.test('values are read', async (t) => {
  const c = readConfig({ ...REAL, PORT: '8080', PUBLIC_URL: 'https://app.example', SESSION_SECRET: SECRET, REDIS_URL: 'redis://127.0.0.1:6379', AIHUBMIX_SCOPE: 'profile', TRUST_PROXY: 'true', NODE_ENV: 'production' })
  t.equal(c.redirectUri, 'https://app.example/auth/callback')
  t.same(c.provider, { baseUrl: 'https://aihubmix.example', clientId: 'client_x', clientSecret: 'secret_x' })
  t.same(c.scope, ['profile'])
  t.equal(c.trustProxy, true)
  t.same(c.tokenEncryptionKeys, [SECRET])
  t.equal(c.redisClientCache, false, 'off unless asked for')
  t.equal(readConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLIENT_CACHE: 'on' }).redisClientCache, true)
  t.equal(readConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLIENT_CACHE: 'off' }).redisClientCache, false)
  const metrics = readConfig({ METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' })
  t.same([metrics.metricsPort, metrics.metricsHost], [9464, '0.0.0.0'])
  t.equal(readConfig({ METRICS_PORT: '0' }).metricsPort, 0, 'any free port')
  t.equal(readConfig({ METRICS_PORT: '' }).metricsPort, undefined, 'empty is unset')
})

const REFUSALS: Array<[string, Record<string, string>, string]> = [
  ['short session secret', { SESSION_SECRET: 'short' }, 'SESSION_SECRET'],
  // Another secret than the one meant (token-store refuses it too, naming only its own option).
  ['session secret with a blank before it', { SESSION_SECRET: ` ${SECRET}` }, 'SESSION_SECRET'],
  ['session secret in quotes kept from an env file', { SESSION_SECRET: `"${SECRET}"` }, 'SESSION_SECRET'],
  ['encryption key in quotes kept from an env file', { TOKEN_ENCRYPTION_KEY: `'base64:${Buffer.alloc(32, 7).toString('base64')}'` }, 'TOKEN_ENCRYPTION_KEY'],
  ['malformed public URL', { PUBLIC_URL: 'not a url' }, 'PUBLIC_URL'],
  ['public URL with a path', { PUBLIC_URL: 'http://localhost:3000/app' }, 'PUBLIC_URL'],
  ['ftp public URL', { PUBLIC_URL: 'ftp://x' }, 'PUBLIC_URL'],
  ['bad port', { PORT: 'eighty' }, 'PORT'],
  ['port out of range', { PORT: '70000' }, 'PORT'],
  ['malformed provider URL', { AIHUBMIX_BASE_URL: 'nope' }, 'AIHUBMIX_BASE_URL'],
  ['provider without client id', { AIHUBMIX_BASE_URL: 'https://p.example', AIHUBMIX_CLIENT_SECRET: 'x' }, 'AIHUBMIX_CLIENT_ID'],
  ['provider without client secret', { AIHUBMIX_BASE_URL: 'https://p.example', AIHUBMIX_CLIENT_ID: 'x' }, 'AIHUBMIX_CLIENT_SECRET'],
  ['client secret in quotes (a Docker env_file keeps them)', { ...REAL, AIHUBMIX_CLIENT_SECRET: '"secret_S3cretPassw0rd"' }, 'AIHUBMIX_CLIENT_SECRET'],
  ['client secret with a space after it', { ...REAL, AIHUBMIX_CLIENT_SECRET: 'secret_S3cretPassw0rd ' }, 'AIHUBMIX_CLIENT_SECRET'],
  ['client id in quotes', { ...REAL, AIHUBMIX_CLIENT_ID: "'client_x'" }, 'AIHUBMIX_CLIENT_ID'],
  ['client id and secret swapped (the secret would go to the browser)', { ...REAL, AIHUBMIX_CLIENT_ID: 'secret_S3cretPassw0rd', AIHUBMIX_CLIENT_SECRET: 'client_x' }, 'AIHUBMIX_CLIENT_ID'],
  ['the client secret in both', { ...REAL, AIHUBMIX_CLIENT_ID: 'S3cretPassw0rd-x', AIHUBMIX_CLIENT_SECRET: 'S3cretPassw0rd-x' }, 'AIHUBMIX_CLIENT_ID'],
  ['malformed redirect URI', { AIHUBMIX_REDIRECT_URI: '::' }, 'AIHUBMIX_REDIRECT_URI'],
  ['empty scope', { AIHUBMIX_SCOPE: '  ' }, 'AIHUBMIX_SCOPE'],
  ['scopes separated by commas (one scope the provider refuses)', { AIHUBMIX_SCOPE: 'profile,balance' }, 'AIHUBMIX_SCOPE'],
  ['scopes separated by a comma and a space', { AIHUBMIX_SCOPE: 'profile, balance' }, 'AIHUBMIX_SCOPE'],
  ['short encryption key', { TOKEN_ENCRYPTION_KEY: 'abc' }, 'TOKEN_ENCRYPTION_KEY'],
  ['base64: encryption key of 16 bytes', { TOKEN_ENCRYPTION_KEY: 'base64:AAECAwQFBgcICQoLDA0ODw==' }, 'TOKEN_ENCRYPTION_KEY'],
  ['hex: encryption key too short', { TOKEN_ENCRYPTION_KEY: 'hex:00ff' }, 'TOKEN_ENCRYPTION_KEY'],
  ['non-redis REDIS_URL', { REDIS_URL: 'http://127.0.0.1:6379' }, 'REDIS_URL'],
  ['REDIS_URL whose path is not a database number', { REDIS_URL: 'redis://127.0.0.1:6379/abc' }, 'REDIS_URL'],
  ['REDIS_URL with a space before it (token-store would refuse it at start)', { REDIS_URL: ' redis://:S3cretPassw0rd@127.0.0.1:6379' }, 'REDIS_URL'],
  ['REDIS_URL in quotes (a Docker env_file keeps them)', { REDIS_URL: '"redis://127.0.0.1:6379"' }, 'REDIS_URL'],
  ['REDIS_URL with a line break after it', { REDIS_URL: 'redis://127.0.0.1:6379\r' }, 'REDIS_URL'],
  ['client cache neither on nor off', { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLIENT_CACHE: 'yes' }, 'REDIS_CLIENT_CACHE'],
  ['client cache without Redis', { REDIS_CLIENT_CACHE: 'on' }, 'REDIS_CLIENT_CACHE'],
  ['bad log level', { LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
  ['metrics port not a number', { METRICS_PORT: 'prometheus' }, 'METRICS_PORT'],
  ['metrics port out of range', { METRICS_PORT: '99999' }, 'METRICS_PORT'],
  ['metrics on the public port', { PORT: '8080', METRICS_PORT: '8080' }, 'METRICS_PORT'],
  ['metrics on the default public port', { METRICS_PORT: '3000' }, 'METRICS_PORT'],
  ['bad metrics host', { METRICS_PORT: '9464', METRICS_HOST: 'a host' }, 'METRICS_HOST'],
  ['bracketed IPv6 metrics host', { METRICS_PORT: '9464', METRICS_HOST: '[::1]' }, 'METRICS_HOST'],
  ['metrics host as a URL', { METRICS_PORT: '9464', METRICS_HOST: 'http://127.0.0.1' }, 'METRICS_HOST'],
  ['bracketed IPv6 host', { HOST: '[::1]' }, 'HOST'],
  ['host with a port', { HOST: 'localhost:3000' }, 'HOST'],
  ['host as a URL', { HOST: 'http://0.0.0.0' }, 'HOST'],
  ['production without a session secret', { ...REAL, NODE_ENV: 'production', PUBLIC_URL: 'https://app.example' }, 'SESSION_SECRET'],
  ['production with an http public URL', { ...REAL, NODE_ENV: 'production', SESSION_SECRET: SECRET, PUBLIC_URL: 'http://app.example' }, 'PUBLIC_URL'],
  ['production with an http provider', { ...REAL, AIHUBMIX_BASE_URL: 'http://aihubmix.example', NODE_ENV: 'production', SESSION_SECRET: SECRET, PUBLIC_URL: 'https://app.example' }, 'AIHUBMIX_BASE_URL'],
  ['production with the embedded mock', { NODE_ENV: 'production', SESSION_SECRET: SECRET, PUBLIC_URL: 'https://app.example' }, 'AIHUBMIX_BASE_URL'],
  ['production with an http redirect URI', { ...REAL, NODE_ENV: 'production', SESSION_SECRET: SECRET, PUBLIC_URL: 'https://app.example', AIHUBMIX_REDIRECT_URI: 'http://app.example/auth/callback' }, 'AIHUBMIX_REDIRECT_URI'],
  // What the plugins refused at start naming their option (or Fastify, naming nothing), while doctor said "accepted".
  ['provider URL with a query', { ...REAL, AIHUBMIX_BASE_URL: 'https://aihubmix.example/?x=1' }, 'AIHUBMIX_BASE_URL'],
  ['provider URL with a fragment', { ...REAL, AIHUBMIX_BASE_URL: 'https://aihubmix.example#top' }, 'AIHUBMIX_BASE_URL'],
  ['provider URL ending in /v1 (the AI API\'s)', { ...REAL, AIHUBMIX_BASE_URL: 'https://aihubmix.example/v1' }, 'AIHUBMIX_BASE_URL'],
  ['provider URL ending in /api/oauth2', { ...REAL, AIHUBMIX_BASE_URL: 'https://aihubmix.example/api/oauth2/' }, 'AIHUBMIX_BASE_URL'],
  ['redirect URI with a fragment', { AIHUBMIX_REDIRECT_URI: 'http://localhost:3000/auth/callback#x' }, 'AIHUBMIX_REDIRECT_URI'],
  ['REDIS_URL with a query parameter token-store does not read', { REDIS_URL: 'redis://:S3cretPassw0rd@127.0.0.1:6379/?foo=bar' }, 'REDIS_URL'],
  ['REDIS_URL with family=5', { REDIS_URL: 'redis://127.0.0.1:6379/?family=5' }, 'REDIS_URL'],
  ['REDIS_URL with enableOfflineQueue=yes', { REDIS_URL: 'redis://127.0.0.1:6379/?enableOfflineQueue=yes' }, 'REDIS_URL'],
  ...['maybe', 'True', 'yes', 'loopback,,', 'fe80::1/129', '10.0.0.0/33', '1', '10.0.0.1/8/8'].map((value): [string, Record<string, string>, string] =>
    [`TRUST_PROXY=${value}`, { TRUST_PROXY: value }, 'TRUST_PROXY'])
]

t.test('AIHUBMIX_SCOPE with commas: refused, naming the spelling that works', async (t) => {
  t.equal(configRefusal({ AIHUBMIX_SCOPE: 'profile,balance' }).message, 'AIHUBMIX_SCOPE: scopes are separated by spaces, not commas: write "profile balance"')
  t.equal(configRefusal({ AIHUBMIX_SCOPE: 'profile, balance' }).message, 'AIHUBMIX_SCOPE: scopes are separated by spaces, not commas: write "profile balance"')
  t.same(readConfig({ AIHUBMIX_SCOPE: ' profile  balance ' }).scope, ['profile', 'balance'], 'spaces, however many, still separate')
})

t.test('refusals name the variable in one line', async (t) => {
  for (const [name, env, variable] of REFUSALS) {
    const err = configRefusal(env)
    t.ok(err.message.startsWith(`${variable}: `), `${name}: ${err.message}`)
    t.notMatch(err.message, /\n/, `${name}: one line`)
    t.notOk(err.message.includes('S3cretPassw0rd'), `${name}: a password in a URL is not echoed`)
    for (const name of ['SESSION_SECRET', 'AIHUBMIX_CLIENT_SECRET', 'TOKEN_ENCRYPTION_KEY']) {
      const value = env[name]
      if (value !== undefined) t.notOk(err.message.includes(value), `${name} is not echoed`)
    }
  }
})

// Each TRUST_PROXY readConfig accepts, Fastify accepts (and each one it refuses, Fastify would have refused at start
// with `invalid IP address`, naming no variable; but for a number, which Fastify takes for the address 0.0.0.1).
t.test('TRUST_PROXY: what readConfig accepts is what Fastify accepts', async (t) => {
  for (const value of ['loopback', 'loopback, 10.0.0.0/8', 'linklocal,uniquelocal', '::1/128', '10.0.0.0/255.0.0.0', '192.168.1.7', 'true', 'false', '']) {
    const { trustProxy } = readConfig({ TRUST_PROXY: value })
    t.doesNotThrow(() => Fastify({ trustProxy }), `${value}: Fastify takes it`)
  }
  for (const value of ['maybe', 'True', 'loopback,,', 'fe80::1/129', '10.0.0.0/33', '10.0.0.1/8/8']) {
    t.throws(() => Fastify({ trustProxy: value }), `${value}: Fastify refuses it too`)
    t.ok(configRefusal({ TRUST_PROXY: value }).message.startsWith('TRUST_PROXY: '), `${value}: refused here, naming the variable`)
  }
  t.equal(configRefusal({ TRUST_PROXY: 'maybe' }).message, 'TRUST_PROXY: maybe is not an address, a subnet, loopback, linklocal or uniquelocal: it must be true, false, or addresses and subnets separated by commas (e.g. loopback, 10.0.0.0/8)')
  t.same(readConfig({ REDIS_URL: 'redis://127.0.0.1:6379/0?family=6&connectionName=app&enableOfflineQueue=false' }).redisUrl, 'redis://127.0.0.1:6379/0?family=6&connectionName=app&enableOfflineQueue=false',
    'the query parameters token-store reads')
})

t.test('HOST and METRICS_HOST take host names and bare addresses', async (t) => {
  for (const host of ['127.0.0.1', '0.0.0.0', '::1', '::', 'fe80::1%eth0', 'localhost', 'app.internal', 'redis_side-car', 'host.docker.internal.']) {
    t.equal(readConfig({ HOST: host }).host, host, `HOST ${host}`)
    t.equal(readConfig({ METRICS_PORT: '9464', METRICS_HOST: host }).metricsHost, host, `METRICS_HOST ${host}`)
  }
})

t.test('production with loopback http URLs is allowed (local TLS-less testing)', async (t) => {
  const c = readConfig({ NODE_ENV: 'production', SESSION_SECRET: SECRET, PUBLIC_URL: 'http://127.0.0.1:3000', AIHUBMIX_BASE_URL: 'http://127.0.0.1:4000', AIHUBMIX_CLIENT_ID: 'a', AIHUBMIX_CLIENT_SECRET: 'b' })
  t.equal(c.production, true)
})

t.test('plain http outside loopback is flagged for the start-up warning (and refused in production)', async (t) => {
  t.equal(readConfig({ PUBLIC_URL: 'http://app.example.test' }).plainHttpPublicUrl, true)
  t.equal(readConfig({}).plainHttpPublicUrl, false, 'http://localhost is development')
  t.equal(readConfig({ PUBLIC_URL: 'http://127.0.0.1:3000' }).plainHttpPublicUrl, false)
  t.equal(readConfig({ PUBLIC_URL: 'http://[::1]:3000' }).plainHttpPublicUrl, false)
  t.equal(readConfig({ PUBLIC_URL: 'https://app.example.test' }).plainHttpPublicUrl, false)
  t.match(configRefusal({ ...REAL, SESSION_SECRET: SECRET, NODE_ENV: 'production', PUBLIC_URL: 'http://app.example.test' }).message, /PUBLIC_URL.*https/)
})

// A production env file with REDIS_URI and TOKEN_ENCRYPTION_KEYS started the example in memory, with a key made from
// SESSION_SECRET, and said nothing: each instance kept its own sessions.
t.test('variables set but not read, that look meant for one that is: one line each, naming both', async (t) => {
  const env = {
    REDIS_URI: 'redis://127.0.0.1:6379',
    TOKEN_ENCRYPTION_KEYS: 'base64:secret-value',
    AIHUBMIX_CLIENTID: 'client_x',
    REDIS_HOST: 'cache.internal',
    SESSION_MANAGER: 'local/unix', // a desktop's own, in no way ours
    HOSTNAME: 'web-1',
    REDIS_URL: '',
    PORT: '3000'
  }
  t.same(unreadVariables(env), [
    'AIHUBMIX_CLIENTID is set but not read (did you mean AIHUBMIX_CLIENT_ID?)',
    'REDIS_HOST is set but not read (did you mean REDIS_URL?)',
    'REDIS_URI is set but not read (did you mean REDIS_URL?)',
    'TOKEN_ENCRYPTION_KEYS is set but not read (did you mean TOKEN_ENCRYPTION_KEY?)'
  ])
  t.notMatch(unreadVariables(env).join('\n'), /secret-value|cache\.internal/, 'names only, never a value')
  t.same(unreadVariables({ redis_url: 'redis://x', REDIS_TLS_URL: 'rediss://x', AIHUBMIX_URL: 'https://x', AIHUBMIX_SECRET: 's', ENCRYPTION_KEY: 'k', TRUST_PROXIES: 'true' }), [
    'AIHUBMIX_SECRET is set but not read (did you mean AIHUBMIX_CLIENT_SECRET?)',
    'AIHUBMIX_URL is set but not read (did you mean AIHUBMIX_BASE_URL?)',
    'ENCRYPTION_KEY is set but not read (did you mean TOKEN_ENCRYPTION_KEY?)',
    'REDIS_TLS_URL is set but not read (did you mean REDIS_URL?)',
    'TRUST_PROXIES is set but not read (did you mean TRUST_PROXY?)',
    'redis_url is set but not read (did you mean REDIS_URL?)'
  ], 'other tools\' names and another case')
  t.same(unreadVariables({ METRIC_PORT: '9091', METRICS_ADDR: '0.0.0.0' }), [
    'METRICS_ADDR is set but not read (did you mean METRICS_HOST?)',
    'METRIC_PORT is set but not read (did you mean METRICS_PORT?)'
  ], 'the metrics listener\'s variables, misspelt')
  t.same(unreadVariables({ REDIS_URL: 'redis://x', SESSION_SECRET: 's'.repeat(40), REDIS_CLIENT_CACHE: 'on' }), [], 'nothing for what it reads')
  // Kubernetes gives every pod of a namespace with a Service named redis REDIS_PORT=tcp://...: with REDIS_URL set,
  // it is some other tool's, not a slip.
  t.same(unreadVariables({ REDIS_URL: 'redis://redis:6379', REDIS_PORT: 'tcp://10.0.0.7:6379', REDIS_SERVICE_HOST: '10.0.0.7', REDIS_PORT_6379_TCP: 'tcp://10.0.0.7:6379' }), [],
    'nothing when the variable meant is set too')
})
