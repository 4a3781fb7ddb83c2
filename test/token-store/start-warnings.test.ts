import t from 'tap'
import { Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import tokenStore, { type TokenStoreOptions } from '@fastify-aihubmix/token-store'

// Two silent misconfigurations a newcomer makes, said at start in one line each.

async function start (t: { teardown: (fn: () => unknown) => void }, options: TokenStoreOptions, after?: (app: FastifyInstance) => void): Promise<Array<{ level: number, msg: string }>> {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.register(tokenStore, options)
  after?.(app)
  await app.ready()
  return lines.filter((line) => line.msg.startsWith('token-store:') && !line.msg.startsWith(IN_MEMORY))
}

/** The line said at start with neither redis nor backend (tested on its own below; left out of the others). */
const IN_MEMORY = 'token-store: sessions and token sets live in this process\'s memory (no redis option)'

t.test('neither redis nor backend: one info line says the stores are in memory, for one instance', async (t) => {
  const key = `base64:${randomBytes(32).toString('base64')}`
  const all = async (options: TokenStoreOptions): Promise<Array<{ level: number, msg: string }>> => {
    const lines: Array<{ level: number, msg: string }> = []
    const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
    const app = Fastify({ logger: { level: 'info', stream } })
    t.teardown(() => app.close())
    await app.register(tokenStore, options)
    await app.ready()
    return lines.filter((line) => line.msg.startsWith(IN_MEMORY))
  }
  const said = await all({ encryptionKeys: key })
  t.same(said.map((l) => [l.level, l.msg]), [[30, `${IN_MEMORY}: for one instance, and they end when it restarts. For several instances, give token-store redis: a Redis URL or client`]])
  t.same(await all({ encryptionKeys: key, backend: 'memory' }), [], 'memory on purpose: nothing said')
})

t.test('a key that looks like a raw key without its prefix: one info line naming the option, never the key', async (t) => {
  const base64 = randomBytes(32).toString('base64') // what `openssl rand -base64 32` prints
  const hex = randomBytes(32).toString('hex')
  const lines = await start(t, { encryptionKeys: [base64, `base64:${randomBytes(32).toString('base64')}`, hex, 'a passphrase of more than thirty-two characters'] })
  t.same(lines.map((l) => [l.level, l.msg.split(':')[1]]), [[30, ' encryptionKeys[0] looks like a base64 key without "base64'], [30, ' encryptionKeys[2] looks like a hex key without "hex']])
  t.match(lines[0]?.msg, /it is used as a passphrase \(safe, but "base64:<it>" would be another key\)\. Keep it as it is once values are sealed with it, or write "base64:<key>" before the first start$/)
  t.notOk(lines.some((l) => l.msg.includes(base64) || l.msg.includes(hex)), 'the key itself is never logged')
  t.same(await start(t, { encryptionKeys: hex }).then((l) => l.map((x) => x.msg.slice(0, 48))), ['token-store: encryptionKeys looks like a hex key'], 'one key, not a list')
  t.same(await start(t, { encryptionKeys: `hex:${hex}` }), [], 'with its prefix: nothing said')
})

// `base64url:` (or `b64:`, `HEX:`) is no key format: the whole value was taken as a passphrase without a word.
t.test('a key whose prefix reads like a key format but is none: one warning naming the option and the prefix, never the key', async (t) => {
  const raw = randomBytes(32).toString('base64url')
  const lines = await start(t, { encryptionKeys: [`base64url:${raw}`, `HEX:${randomBytes(32).toString('hex')}`, `base64:${raw}`, 'b64 is not a prefix here, just a passphrase'] })
  t.same(lines.map((l) => [l.level, l.msg.split(' which')[0]]), [
    [40, 'token-store: encryptionKeys[0] starts with "base64url:",'],
    [40, 'token-store: encryptionKeys[1] starts with "HEX:",']
  ])
  t.match(lines[0]?.msg, /the whole value is used as a passphrase\. Fix: write "base64:<key>" or "hex:<key>" before the first start/)
  t.notOk(lines.some((l) => l.msg.includes(raw)), 'the key itself is never logged')
  t.same(await start(t, { encryptionKeys: `base64:${raw}` }), [], 'a known prefix: nothing said')
})

// `encryptionKeys: env.TOKEN_ENCRYPTION_KEY` holding `new,old`: a string is one key, so the whole line was one
// passphrase, and the rotation deploy left every sealed value unreadable without a word.
t.test('a string that reads like a comma-separated list of keys: a warning for passphrases, a refusal for base64:/hex:', async (t) => {
  const passphrases = 'new-passphrase-aaaaaaaaaaaaaaaaaaaaaaaa,old-passphrase-bbbbbbbbbbbbbbbbbbbbbbbb'
  const lines = await start(t, { encryptionKeys: passphrases })
  t.same(lines.map((l) => l.level), [40], 'one warning')
  t.equal(lines[0]?.msg, 'token-store: encryptionKeys reads like 2 keys separated by commas, but a string is one key: the whole value is ' +
    'used as one passphrase. Fix: give a list as an array (e.g. process.env.TOKEN_ENCRYPTION_KEY.split(\',\').map((k) => k.trim())), or keep it as it is ' +
    'if it is one passphrase with commas in it')
  t.notOk(lines[0]?.msg.includes('aaaa'), 'the keys are never logged')
  t.same(await start(t, { encryptionKeys: passphrases.split(',') }), [], 'the same keys as an array: nothing said')
  t.same(await start(t, { encryptionKeys: 'one passphrase, with a comma, and long enough to be a key' }), [], 'a passphrase with commas in it, its parts short')

  const raw = `base64:${randomBytes(32).toString('base64')},base64:${randomBytes(32).toString('base64')}`
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(tokenStore, { encryptionKeys: raw }) }, {
    code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS',
    message: 'Invalid token-store option "encryptionKeys": holds 2 keys separated by commas, and a string is one key: give a list as an array (e.g. process.env.TOKEN_ENCRYPTION_KEY.split(\',\').map((k) => k.trim()))'
  })
})

t.test('@fastify/redis registered but the memory backend by default: one warning that names backend: \'redis\'', async (t) => {
  const key = `base64:${randomBytes(32).toString('base64')}`
  const fakeRedis = (app: FastifyInstance): void => { (app as unknown as { decorate: (name: string, value: unknown) => void }).decorate('redis', {}) } // as @fastify/redis decorates, before or after
  const lines = await start(t, { encryptionKeys: key }, fakeRedis)
  t.same(lines.map((l) => l.level), [40])
  t.equal(lines[0]?.msg, 'token-store: @fastify/redis is registered, but sessions and token sets live in this process\'s memory, ' +
    'so other instances see none of them. Fix: pass backend: \'redis\' to token-store (or backend: \'memory\' if that is meant)')
  t.same(await start(t, { encryptionKeys: key, backend: 'memory' }, fakeRedis), [], 'memory on purpose: nothing said')
  t.same(await start(t, { encryptionKeys: key }), [], 'no @fastify/redis: nothing said')
})
