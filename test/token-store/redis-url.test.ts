import t from 'tap'
import { Writable } from 'node:stream'
import { createServer, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import tokenStore, { createTokenStore, TokenStoreOptionsError } from '@fastify-aihubmix/token-store'
import { connectRedis, redisUrl, scanKeys, uniquePrefix, cleanupPrefix } from '../helpers/redis.js'
import { redisServerOrSkip, startRedisServer } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'
import { startLogged } from '../helpers/token-store.js'

// `redis: '<url>'`: token-store makes the ioredis client itself, so an app needs neither @fastify/redis nor a client
// of its own, starts while Redis is down or refuses it, and never logs the URL's password.

const key = `base64:${randomBytes(32).toString('base64')}`

const tokens = { accessToken: 'an-access-token', refreshToken: 'a-refresh-token', tokenType: 'Bearer', expiresAt: Date.now() + 3_600_000, scope: ['profile'], obtainedAt: Date.now() }

t.test('a redis:// URL: token-store makes the client, stores in Redis, and closes it with the app', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('redis-url')
  cleanupPrefix(t, redis, prefix)
  // ioredis takes options from the URL's query: a connection name tells this app's connections from the others'.
  const name = `redis-url-test-${randomBytes(4).toString('hex')}`
  const url = new URL(redisUrl())
  url.searchParams.set('connectionName', name)
  const { app, lines } = await startLogged(t, { redis: url.href, keyPrefix: prefix })
  await app.tokenStore.save('a-session-id-of-the-url-test', tokens)
  t.equal((await app.tokenStore.get('a-session-id-of-the-url-test'))?.accessToken, 'an-access-token')
  t.ok((await scanKeys(redis, prefix)).length > 0, 'in Redis, under the prefix')
  t.same(lines.filter((l) => l.msg.startsWith('token-store:')), [], 'nothing said while Redis is up')
  const ours = async (): Promise<number> => (await redis.client('LIST') as string).split('\n').filter((line) => line.includes(` name=${name} `)).length
  t.equal(await ours(), 1, 'one connection, made by token-store')
  await app.close()
  let left = await ours()
  for (let i = 0; i < 40 && left > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    left = await ours()
  }
  t.equal(left, 0, 'closed with the app')
})

t.test('a URL whose credentials Redis refuses: the app starts, answers 503, one error line naming the fix, without the password', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const binary = redisServerOrSkip(t, 'the NOAUTH case')
  if (binary === undefined) return
  // A Redis of its own that wants a password, for the URL without one (NOAUTH); the shared one for a user it does
  // not know (WRONGPASS).
  const guarded = await startRedisServer(binary, await freePort(), ['--requirepass', 'the-right-password'])
  t.teardown(() => guarded.close())
  const cases: Array<[string, string, string, string]> = [
    [redisUrl(), 'no-such-user', 'pw-must-not-be-logged', 'WRONGPASS'],
    [guarded.url, '', '', 'NOAUTH']
  ]
  for (const [base, username, password, reason] of cases) {
    const url = new URL(base)
    url.username = username
    url.password = password
    const { app, lines, raw } = await startLogged(t, { redis: url.href, keyPrefix: uniquePrefix('redis-url-refused') })
    const said = lines.filter((l) => l.msg.startsWith('token-store: Redis at'))
    t.equal(said.length, 1, `${reason}: one line, however many times ioredis tries again`)
    t.equal(said[0]?.level, 50, `${reason}: an error: it does not pass on its own`)
    t.match(said[0]?.msg, new RegExp(`^token-store: Redis at redis://[^@\\s]+ refused the credentials of the redis URL \\(${reason}\\): requests that need the store answer 503 store_unavailable\\. Fix: the user name and password in the URL`))
    const err = await app.tokenStore.get('any-session').then(() => undefined, (e: unknown) => e)
    t.match(err, { statusCode: 503, code: 'FST_AIHUBMIX_STORE_UNAVAILABLE' }, 'the store is unavailable, not a crash')
    if (password !== '') t.notOk(raw.join('').includes(password), 'the password is never logged')
  }
  // Control: the right password, the same Redis: no line at all.
  const right = new URL(guarded.url)
  right.password = 'the-right-password'
  const { app, lines } = await startLogged(t, { redis: right.href, keyPrefix: uniquePrefix('redis-url-right') })
  await app.tokenStore.save('a-session-id-of-the-url-test', tokens)
  t.same(lines.filter((l) => l.msg.startsWith('token-store:')), [], 'the right password: nothing said')
})

t.test('a URL naming a database Redis does not have: the start fails naming the fix; nothing lands in database 0', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('redis-url-db')
  cleanupPrefix(t, redis, prefix)
  const url = new URL(redisUrl())
  url.pathname = '/99'
  const raw: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { raw.push(chunk.toString()); cb() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  const err = await (async () => {
    await app.register(tokenStore, { encryptionKeys: key, redis: url.href, keyPrefix: prefix })
    await app.ready()
  })().then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof TokenStoreOptionsError, 'the start fails')
  const shown = `${url.protocol}//${url.host}` // redisUrl() has no password
  t.equal((err as Error).message, `Invalid token-store option "redis": Redis at ${shown}/99 has no database 99 (ERR DB index is out of range): use a database number below its "databases" setting (16 by default), such as ${shown}/0`)
  t.same(await scanKeys(redis, prefix), [], 'nothing written to database 0')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(raw.filter((line) => line.includes('token-store:')), [], 'the error is the one line: nothing logged besides')
})

t.test('a missing database: what ioredis\' commands in flight fail with after it is no "unavailable" warning (Redis is up)', async (t) => {
  // A Redis that has no database 16 and answers everything else: ioredis' CLIENT SETINFO, sent with the SELECT, is
  // answered after the refusal stopped the client, so its ready check then failed "Stream isn't writeable", logged as
  // "Redis ... is unavailable ... reconnecting in the background" after the start had already failed.
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('data', (data) => {
      for (const [, name] of data.toString().matchAll(/\*\d+\r\n\$\d+\r\n(\w+)\r\n/g)) {
        socket.write(/^select$/i.test(name ?? '') ? '-ERR DB index is out of range\r\n' : /^info$/i.test(name ?? '') ? '$22\r\n# Server\r\nloading:0\r\n\r\n' : '+OK\r\n')
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close() })
  const url = `redis://127.0.0.1:${(server.address() as { port: number }).port}/16`
  for (let i = 0; i < 3; i++) {
    const raw: string[] = []
    const stream = new Writable({ write (chunk: Buffer, _enc, cb) { raw.push(chunk.toString()); cb() } })
    const app = Fastify({ logger: { level: 'info', stream } })
    t.teardown(() => app.close())
    const err = await (async () => {
      await app.register(tokenStore, { encryptionKeys: key, redis: url })
      await app.ready()
    })().then(() => undefined, (e: unknown) => e)
    t.match((err as Error).message, /^Invalid token-store option "redis": Redis at redis:\/\/127\.0\.0\.1:\d+\/16 has no database 16 \(ERR DB index is out of range\)/)
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.same(raw, [], `attempt ${i + 1}: nothing logged besides the error the start fails with`)
  }
})

t.test('what the option refuses, in one line that never echoes the URL', async (t) => {
  const refusal = (redis: string): string => {
    try {
      createTokenStore({ encryptionKeys: key, redis })
      return 'accepted'
    } catch (err) {
      t.ok(err instanceof TokenStoreOptionsError)
      return (err as Error).message
    }
  }
  t.equal(refusal('http://user:secret-in-url@127.0.0.1:6379'), 'Invalid token-store option "redis": a URL must start with redis:// or rediss:// (TLS), not http://')
  t.equal(refusal('127.0.0.1:6379'), 'Invalid token-store option "redis": a string must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379')
  t.equal(refusal('not a url'), 'Invalid token-store option "redis": a string must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379')
  t.equal(refusal('redis://127.0.0.1:6379/abc'), 'Invalid token-store option "redis": the URL\'s path must be a database number (redis://host:6379/0), or nothing')
  // The URL parser drops spaces around a URL, ioredis' does not: it threw a TypeError quoting the URL, password and all.
  const around = 'Invalid token-store option "redis": the URL has spaces, line breaks or quotes around it (a copy-paste, or quotes kept from an env file?): remove them, so that the value is the URL alone'
  for (const url of [' redis://:S3cretPassw0rd@127.0.0.1:6379', 'redis://:S3cretPassw0rd@127.0.0.1:6379\n', '\tredis://127.0.0.1:6379', '"redis://:S3cretPassw0rd@127.0.0.1:6379"', "'rediss://127.0.0.1:6379'"]) {
    t.equal(refusal(url), around, JSON.stringify(url.replace('S3cretPassw0rd', '***')))
  }
  t.equal(refusal('redis://:S3cret Passw0rd@127.0.0.1:6379'), 'Invalid token-store option "redis": the URL has spaces or control characters in it: remove them (a password with a space is written %20)')
  t.equal(refusal('redis://127.0.0.1:6379/0\u0000'), 'Invalid token-store option "redis": the URL has spaces or control characters in it: remove them (a password with a space is written %20)')
  // ioredis copied these into the client's options as text; `?connectTimeout=300` ended the process at the first connection.
  t.equal(refusal('redis://127.0.0.1:6379/0?connectTimeout=300'), 'Invalid token-store option "redis": the URL\'s query parameter connectTimeout is not one token-store can pass on (ioredis would take it as text): remove it; only connectionName, family and enableOfflineQueue are read from the URL (for other client options, pass your own ioredis client)')
  t.equal(refusal('redis://127.0.0.1:6379/0?tok_SECRET123%21=1'), 'Invalid token-store option "redis": the URL\'s query parameter is not one token-store can pass on (ioredis would take it as text): remove it; only connectionName, family and enableOfflineQueue are read from the URL (for other client options, pass your own ioredis client)', 'a name that may be a value is not echoed')
  t.equal(refusal('redis://127.0.0.1:6379?family=ipv6'), 'Invalid token-store option "redis": the URL\'s family must be 4 or 6')
  t.equal(refusal('redis://127.0.0.1:6379?enableOfflineQueue=yes'), 'Invalid token-store option "redis": the URL\'s enableOfflineQueue must be true or false')
  for (const db of ['redis://127.0.0.1:6379/', 'redis://127.0.0.1:6379/12', 'rediss://:pw@127.0.0.1:6380/0?connectionName=x', 'redis://127.0.0.1:6379?family=4', 'redis://127.0.0.1:6379/0?enableOfflineQueue=false']) {
    t.equal(refusal(db), 'Invalid token-store option "redis": a URL is for the plugin, which makes its client; createTokenStore needs an ioredis client', `${db}: a good URL`)
  }
  t.equal(refusal('redis://127.0.0.1:6379'), 'Invalid token-store option "redis": a URL is for the plugin, which makes its client; createTokenStore needs an ioredis client')
  t.throws(() => createTokenStore({ encryptionKeys: key, backend: 'memory', redis: 'redis://127.0.0.1:6379' }), /"backend": "memory" contradicts the given redis option/)
})

t.test('a URL with a space before it: the start fails in one option error, the password nowhere', async (t) => {
  const password = 'S3cretPassw0rd-not-to-be-printed'
  const raw: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { raw.push(chunk.toString()); cb() } })
  const app = Fastify({ logger: { level: 'trace', stream } })
  t.teardown(() => app.close())
  const err = await (async () => {
    await app.register(tokenStore, { encryptionKeys: key, redis: ` redis://:${password}@127.0.0.1:6379` })
    await app.ready()
  })().then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof TokenStoreOptionsError, 'an option error, not ioredis\' TypeError')
  t.match((err as Error).message, /^Invalid token-store option "redis": the URL has spaces, line breaks or quotes around it/)
  t.notOk(String((err as Error).stack).includes(password), 'not in the error')
  t.notOk(raw.join('').includes(password), 'not in the log')
})

t.test('a rediss:// URL at a Redis without TLS: the unavailable warning says rediss:// needs TLS; nothing of it for redis://', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const hint = ' (rediss:// needs a Redis that speaks TLS; for a plain Redis use redis://)'
  const warning = (lines: Array<{ level: number, msg: string }>): string | undefined => lines.find((l) => l.msg.includes(' is unavailable ('))?.msg
  // The shared (plain) Redis: it waits for a command that a TLS handshake never is, so the first attempt times out.
  const plain = new URL(redisUrl())
  plain.protocol = 'rediss:'
  const silent = await startLogged(t, { redis: plain.href, keyPrefix: uniquePrefix('rediss-plain') })
  t.equal(warning(silent.lines), `token-store: Redis at rediss://${plain.host} is unavailable (ETIMEDOUT): requests that need the store answer 503 store_unavailable until it is back; reconnecting in the background${hint}`)
  // A plain server that closes the connection on the handshake.
  const sockets = new Set<Socket>()
  const closing = createServer((socket) => { sockets.add(socket); socket.once('data', () => socket.destroy()) })
  await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); closing.close() })
  const port = (closing.address() as { port: number }).port
  const closed = await startLogged(t, { redis: `rediss://127.0.0.1:${port}`, keyPrefix: uniquePrefix('rediss-closed') })
  t.ok(warning(closed.lines)?.endsWith(hint), String(warning(closed.lines)))
  // Control: nothing listening is not a TLS matter, nor is a plain URL.
  const nothing = await startLogged(t, { redis: `rediss://127.0.0.1:${await freePort()}`, keyPrefix: uniquePrefix('rediss-none') })
  t.match(warning(nothing.lines), /is unavailable \(ECONNREFUSED\).*in the background$/)
  const plainUrl = await startLogged(t, { redis: `redis://127.0.0.1:${port}`, keyPrefix: uniquePrefix('redis-closed') })
  t.notMatch(warning(plainUrl.lines) ?? '', 'rediss:// needs')
})

t.test('the URL\'s query reaches ioredis typed, never as text over token-store\'s own options', async (t) => {
  const { urlQueryOptions } = await import('../../src/token-store/redis-url.js')
  t.same(urlQueryOptions('redis://:pw@127.0.0.1:6379/2?connectionName=app&family=6&enableOfflineQueue=false'), {
    address: 'redis://:pw@127.0.0.1:6379/2',
    options: { connectionName: 'app', family: 6, enableOfflineQueue: false }
  }, '"false" is false (as text, ioredis read it as on)')
  t.same(urlQueryOptions('rediss://127.0.0.1:6380?enableOfflineQueue=true'), { address: 'rediss://127.0.0.1:6380', options: { enableOfflineQueue: true } })
  t.same(urlQueryOptions('redis://127.0.0.1:6379/0'), { address: 'redis://127.0.0.1:6379/0', options: {} })
})

// ioredis 5.0 to 5.2 export their client class only as the default export to an ES module, and up to 5.0.4 their
// auto-pipelining (which the client made from a URL turns on) ended the process at its first command.
t.test('the ioredis client class: the named export (5.2.5 and newer); an older ioredis is refused in one line', async (t) => {
  const { ioredisClient } = await import('../../src/token-store/redis-url.js')
  class Named {}
  class Default {}
  t.equal(ioredisClient({ Redis: Named, default: Default }), Named, 'ioredis 5.2.5 and newer: Redis')
  t.throws(() => ioredisClient({ default: Default }), { code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', message: /the installed ioredis is older than 5\.2\.5: install ioredis 5\.2\.5 or newer, or 6 \(npm i ioredis@latest\)/ }, 'ioredis 5.0 to 5.2 imported from an ES module: default only')
  t.throws(() => ioredisClient({ default: {} }), { code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', message: /exports no client class: install ioredis 5\.2\.5 or newer/ })
  // The installed ioredis gives a class the store can make a client with.
  t.equal(ioredisClient(await import('ioredis')), (await import('ioredis')).Redis)
})
