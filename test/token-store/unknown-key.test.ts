import t from 'tap'
import type { FastifyInstance } from 'fastify'
import fastifyCookie, { Signer } from '@fastify/cookie'
import type { TokenStore } from '@fastify-aihubmix/token-store'
import { StoreUnavailableError, UnauthenticatedError, UnsealFailedError } from '@fastify-aihubmix/token-store'
import { createKeyRing } from '../../src/token-store/crypto.js'
import type { KeyLayout } from '../../src/token-store/keys.js'
import { UNKNOWN_KEY_LOG_MAX_IDS, UnknownKeyLog } from '../../src/token-store/unknown-keys.js'
import { buildApp, countingRefresher, forEachBackend, KEY_A, KEY_B, kvOf, sid as newSid, tokenSet } from '../helpers/token-store.js'
import type { Backend, T } from '../helpers/token-store.js'
import { fp, SESSION_SECRET, sessionApp, sessionCookie, sessionIdOf } from '../helpers/token-store-session-app.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'

// A stored value sealed with a key that is not in this instance's key ring (a key left out of encryptionKeys: a
// rotation step skipped, an instance of a rolling deploy that does not know the new key yet, "new,old" passed as one
// string) is a configuration problem, not a bad value: it reads as absent, is NEVER deleted or overwritten, and is
// logged at error once per key id with the fix. Every other failure is still deleted and logged at warn.

type Logs = Array<Record<string, unknown>>
const HOUR = 60 * 60 * 1000
/** The id (hex) of KEY_A, the key the values of these tests are sealed with: not secret, logged with the fix. */
const KEY_A_ID = createKeyRing(KEY_A).keyIds[0] as string
/** Key material as it could appear in a log line (the option strings, their hex, base64 and base64url forms). */
const KEY_MATERIAL = [KEY_A, KEY_B].flatMap((key) => {
  const bytes = Buffer.from(key.slice('hex:'.length), 'hex')
  return [key.slice('hex:'.length), bytes.toString('base64'), bytes.toString('base64url')]
})

function keysOf (app: FastifyInstance): KeyLayout {
  return (app.tokenStore as unknown as { keys: KeyLayout }).keys
}

/**
 * Makes `to` see the given keys of `from`: with Redis they share the store already (same prefix); two memory stores
 * share nothing, so the values are copied over as they are (what a shared Redis would hold).
 */
async function share (backend: Backend, from: TokenStore, to: TokenStore, keys: string[], hashes: string[] = []): Promise<void> {
  if (backend.name === 'redis') return
  const source = kvOf(from)
  const target = kvOf(to)
  for (const key of keys) {
    const value = await source.get(key)
    if (value !== null) await target.set(key, value, HOUR)
  }
  for (const key of hashes) {
    for (const [field, value] of Object.entries(await source.hashGetAll(key))) await target.hashSet(key, field, value, HOUR)
  }
}

function errorsOf (logs: Logs): Logs {
  return logs.filter((l) => l.level === 50)
}

function warningsOf (logs: Logs): Logs {
  return logs.filter((l) => l.level === 40)
}

/** The one error line of an unknown key: names the key id and the fix, says nothing was deleted. */
function checkUnknownKeyLine (t: T, logs: Logs, what: RegExp): void {
  const errors = errorsOf(logs)
  t.equal(errors.length, 1, 'exactly one error line')
  t.match(errors[0], {
    keyId: KEY_A_ID,
    msg: new RegExp(`was sealed with a key this instance does not have \\(key id ${KEY_A_ID}\\): add that key to encryptionKeys \\(a list: new key first, then the old ones\\) — nothing was deleted`)
  })
  t.match(errors[0]?.msg, what)
  t.equal(logs.filter((l) => /discarded|dropped/.test(String(l.msg))).length, 0, 'nothing reported as discarded')
}

/** None of these strings (tokens, sealed values, session ids) nor any key material appears in any log line. */
function checkNoSecrets (t: T, logs: Logs, secrets: string[]): void {
  const all = JSON.stringify(logs)
  // Labelled by position: a test's output shows no part of a secret either.
  for (const [i, secret] of [...secrets, ...KEY_MATERIAL].entries()) {
    t.notOk(all.includes(secret), `secret #${i} is not in the logs`)
  }
  t.notMatch(all, /AT-SECRET|RT-SECRET|PKCE-VERIFIER-SECRET|v1\.[A-Za-z0-9_-]{20}/, 'no token, no sealed value')
}

/** A sealed value with one byte of its ciphertext flipped (its key id left as it is: a known key). */
function tamper (sealed: string): string {
  const raw = Buffer.from(sealed.slice(3), 'base64url')
  raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 0x01
  return 'v1.' + raw.toString('base64url')
}

t.test('the key ring says which failures are an unknown key, without the value in the message', async (t) => {
  const sealed = createKeyRing(KEY_A).seal('{"accessToken":"AT-SECRET-x"}', 'tok:s1')
  const other = createKeyRing(KEY_B)
  const err = t.throws(() => other.unseal(sealed, 'tok:s1')) as UnsealFailedError
  t.ok(err instanceof UnsealFailedError)
  t.match(err, { code: 'FST_AIHUBMIX_UNSEAL_FAILED', statusCode: 500, reason: 'unknown-key', keyId: KEY_A_ID })
  t.notOk(err.message.includes(sealed.slice(3, 30)), 'not the value')
  t.equal(other.unknownKeyOf(sealed), KEY_A_ID)
  t.equal(createKeyRing([KEY_B, KEY_A]).unknownKeyOf(sealed), undefined, 'a ring with the key')
  t.equal(other.unknownKeyOf('garbage'), undefined, 'not a sealed value: not an unknown key')

  const ring = createKeyRing(KEY_A)
  for (const [bad, label] of [[tamper(sealed), 'tampered'], [sealed, 'another context'], ['garbage', 'malformed'], [sealed.slice(0, 20), 'truncated']] as const) {
    const failed = t.throws(() => ring.unseal(bad, label === 'another context' ? 'tok:s2' : 'tok:s1')) as UnsealFailedError
    t.match(failed, { code: 'FST_AIHUBMIX_UNSEAL_FAILED', reason: 'invalid', keyId: undefined }, label)
  }
})

t.test('unknown key ids are logged once per key id per minute, and only a few ids per minute', async (t) => {
  const lines: unknown[][] = []
  let now = 1_000_000
  const log = { error: (...args: unknown[]) => { lines.push(args) } } as unknown as ConstructorParameters<typeof UnknownKeyLog>[0]
  const reporter = new UnknownKeyLog(log, createKeyRing(KEY_B), () => now)
  for (let i = 0; i < 100; i++) reporter.report('0a0b0c0d', 'a token set')
  t.equal(lines.length, 1, 'a flood of requests: one line')
  now += 59_999
  reporter.report('0a0b0c0d', 'a token set')
  t.equal(lines.length, 1, 'still within the minute')
  now += 1
  reporter.report('0a0b0c0d', 'a token set')
  t.equal(lines.length, 2, 'again after a minute')
  for (let i = 0; i < 50; i++) reporter.report(i.toString(16).padStart(8, '0'), 'a token set')
  t.equal(lines.length, 1 + UNKNOWN_KEY_LOG_MAX_IDS, 'made-up key ids cannot flood the log')
  t.match(lines[0], [{ keyId: '0a0b0c0d', keyIds: createKeyRing(KEY_B).keyIds }, /key id 0a0b0c0d/])

  // The state is the reporter's (one per token store), not the module's.
  const other: unknown[][] = []
  new UnknownKeyLog({ error: (...args: unknown[]) => { other.push(args) } } as never, createKeyRing(KEY_B), () => now).report('0a0b0c0d', 'a token set')
  t.equal(other.length, 1)
})

forEachBackend(t, 'a token set sealed with a key the ring lacks: absent, kept byte for byte, one error line; the key added back opens it', async (t, backend) => {
  const sealer = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_A] })
  const logs: Logs = []
  const lacking = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_B] }, { logs })
  const sid = newSid()
  const set = tokenSet()
  await sealer.tokenStore.save(sid, set)
  const key = keysOf(sealer).tokens(sid)
  await share(backend, sealer.tokenStore, lacking.tokenStore, [key])
  const stored = await kvOf(lacking.tokenStore).get(key) as string
  t.match(stored, /^v1\./)

  const r = countingRefresher()
  for (let i = 0; i < 5; i++) t.equal(await lacking.tokenStore.get(sid), null, 'absent for this request')
  await t.rejects(lacking.tokenStore.getFresh(sid, r.refresh), UnauthenticatedError)
  await t.rejects(lacking.tokenStore.getFresh(sid, r.refresh, { force: true }), UnauthenticatedError)
  t.same(r.calls, [], 'no refresh attempted')
  t.equal(await kvOf(lacking.tokenStore).get(key), stored, 'still stored, byte-identical')
  checkUnknownKeyLine(t, logs, /a stored value \(a token set\)/)
  checkNoSecrets(t, logs, [set.accessToken, set.refreshToken as string, stored, stored.slice(3, 40), sid])

  const fixed = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_B, KEY_A] })
  await share(backend, lacking.tokenStore, fixed.tokenStore, [key])
  t.same(await fixed.tokenStore.get(sid), set, 'a ring with the key opens it')
})

forEachBackend(t, 'a tampered token set, one-time record or user session entry is still deleted, at warn', async (t, backend) => {
  const logs: Logs = []
  const app = await buildApp(t, backend.options, { logs })
  const kv = kvOf(app.tokenStore)
  const keys = keysOf(app)

  const sid = newSid()
  await app.tokenStore.save(sid, tokenSet())
  await kv.set(keys.tokens(sid), tamper(await kv.get(keys.tokens(sid)) as string), HOUR)
  t.equal(await app.tokenStore.get(sid), null)
  t.equal(await kv.get(keys.tokens(sid)), null, 'token set deleted')

  await app.tokenStore.putRecord('login:tampered', { v: 'PKCE-VERIFIER-SECRET' }, HOUR)
  await kv.set(keys.record('login:tampered'), tamper(await kv.get(keys.record('login:tampered')) as string), HOUR)
  t.equal(await app.tokenStore.takeRecord('login:tampered'), null)
  t.equal(await kv.get(keys.record('login:tampered')), null, 'record deleted')

  const handle = await app.tokenStore.addUserSession('u-tampered', newSid(), { ttlMs: HOUR })
  const entry = (await kv.hashGetAll(keys.userSessions('u-tampered')))[handle] as string
  await kv.hashSet(keys.userSessions('u-tampered'), handle, tamper(entry), HOUR)
  t.same(await app.tokenStore.listUserSessions('u-tampered'), [])
  t.same(await kv.hashGetAll(keys.userSessions('u-tampered')), {}, 'entry dropped')

  t.equal(errorsOf(logs).length, 0, 'no error line')
  t.equal(warningsOf(logs).length, 3, 'one warning each')
  for (const w of warningsOf(logs)) t.match(w, { msg: /could not be opened/, err: { code: 'FST_AIHUBMIX_UNSEAL_FAILED', reason: 'invalid' } })
})

forEachBackend(t, 'a session (@fastify/session) whose token set was sealed with a key the ring lacks: signed out here, nothing deleted', async (t, backend) => {
  const sealer = await sessionApp(t, { ...backend.options, encryptionKeys: [KEY_A] })
  const logs: Logs = []
  const lacking = await sessionApp(t, { ...backend.options, encryptionKeys: [KEY_B] }, { logs })
  const set = tokenSet()
  const cookie = sessionCookie(await sealer.inject({ method: 'POST', url: '/login', payload: { user: 'alice', set } }))
  const sid = sessionIdOf(cookie)
  const keys = keysOf(sealer)
  await share(backend, sealer.tokenStore, lacking.tokenStore, [keys.session(sid), keys.tokens(sid)])
  const kv = kvOf(lacking.tokenStore)
  const [record, sealed] = await kv.getMany([keys.session(sid), keys.tokens(sid)])

  t.same((await lacking.inject({ url: '/me', headers: { cookie } })).json(), { user: 'alice', token: null }, 'no tokens here')
  const fresh = await lacking.inject({ url: '/fresh', headers: { cookie } })
  t.equal(fresh.statusCode, 401, 'answered as signed out')
  t.same(lacking.refreshCalls, [])
  t.same(await kv.getMany([keys.session(sid), keys.tokens(sid)]), [record, sealed], 'session record and token set kept, byte-identical')
  checkUnknownKeyLine(t, logs, /a token set/)
  checkNoSecrets(t, logs, [set.accessToken, set.refreshToken as string, sealed as string, sid, cookie])

  const fixed = await sessionApp(t, { ...backend.options, encryptionKeys: [KEY_B, KEY_A] })
  await share(backend, lacking.tokenStore, fixed.tokenStore, [keys.session(sid), keys.tokens(sid)])
  t.same((await fixed.inject({ url: '/me', headers: { cookie } })).json(), { user: 'alice', token: fp(set.accessToken) }, 'signed in again once the key is there')
})

forEachBackend(t, 'a session read from the cookie (sessionCookie, getFreshSync hot path): signed out here, nothing deleted', async (t, backend) => {
  const logs: Logs = []
  const refresher = countingRefresher()
  const app = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_B], sessionCookie: { name: 'sessionId', secret: SESSION_SECRET } }, {
    logs,
    setup: async (instance) => {
      await instance.register(fastifyCookie)
      instance.get('/api/fresh-sync', async (request) => {
        const set = await request.tokens.getFreshSync(refresher.refresh)
        return { token: fp(set.accessToken) }
      })
    }
  })
  const kv = kvOf(app.tokenStore)
  const keys = keysOf(app)
  const sid = newSid()
  const set = tokenSet()
  const sealed = createKeyRing(KEY_A).seal(JSON.stringify(set), 'tok:' + sid)
  await kv.set(keys.session(sid), JSON.stringify({ cookie: { expires: new Date(Date.now() + HOUR).toISOString() } }), HOUR)
  await kv.set(keys.tokens(sid), sealed, HOUR)
  const cookie = `sessionId=${encodeURIComponent(new Signer(SESSION_SECRET).sign(sid))}`
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ url: '/api/fresh-sync', headers: { cookie } })
    t.equal(res.statusCode, 401)
  }
  t.same(refresher.calls, [])
  t.equal(await kv.get(keys.tokens(sid)), sealed, 'token set kept, byte-identical')
  t.not(await kv.get(keys.session(sid)), null, 'session record kept')
  checkUnknownKeyLine(t, logs, /a token set/)
  checkNoSecrets(t, logs, [set.accessToken, set.refreshToken as string, sealed, sid])
})

forEachBackend(t, 'a one-time record sealed with a key the ring lacks: not taken, kept byte for byte; the key added back takes it', async (t, backend) => {
  const sealer = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_A] })
  const logs: Logs = []
  const lacking = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_B] }, { logs })
  await sealer.tokenStore.putRecord('login:state-1', { v: 'PKCE-VERIFIER-SECRET' }, HOUR)
  const key = keysOf(sealer).record('login:state-1')
  await share(backend, sealer.tokenStore, lacking.tokenStore, [key])
  const stored = await kvOf(lacking.tokenStore).get(key) as string

  t.equal(await lacking.tokenStore.takeRecord('login:state-1'), null)
  t.equal(await lacking.tokenStore.takeRecord('login:state-1'), null)
  t.equal(await kvOf(lacking.tokenStore).get(key), stored, 'still stored, byte-identical')
  checkUnknownKeyLine(t, logs, /a one-time record/)
  checkNoSecrets(t, logs, [stored])

  const fixed = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_B, KEY_A] })
  await share(backend, lacking.tokenStore, fixed.tokenStore, [key])
  t.same(await fixed.tokenStore.takeRecord('login:state-1'), { v: 'PKCE-VERIFIER-SECRET' })
  t.equal(await kvOf(fixed.tokenStore).get(key), null, 'taken once')
})

forEachBackend(t, 'user session entries sealed with a key the ring lacks: not listed, not ended, not dropped; ending them all says so', async (t, backend) => {
  const sealer = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_A] })
  const logs: Logs = []
  const lacking = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_B] }, { logs })
  const sid = newSid()
  const handle = await sealer.tokenStore.addUserSession('u-1', sid, { userAgent: 'Browser One', ttlMs: HOUR })
  await sealer.tokenStore.save(sid, tokenSet())
  await new Promise<void>((resolve, reject) => {
    sealer.tokenStore.sessionStore.set(sid, { cookie: { expires: new Date(Date.now() + HOUR).toISOString() }, aihubmixAuth: { at: Date.now(), seen: Date.now() } }, (err) => { if (err) reject(err); else resolve() })
  })
  const keys = keysOf(sealer)
  const sessionKeys = [keys.session(sid), keys.tokens(sid), keys.userLink(sid)]
  await share(backend, sealer.tokenStore, lacking.tokenStore, sessionKeys, [keys.userSessions('u-1')])
  const kv = kvOf(lacking.tokenStore)
  const before = { index: await kv.hashGetAll(keys.userSessions('u-1')), values: await kv.getMany(sessionKeys) }

  t.same(await lacking.tokenStore.listUserSessions('u-1'), [], 'not listed here')
  t.equal(await lacking.tokenStore.endUserSession('u-1', handle), false, 'cannot be ended from here')
  // "Every session ended" would not be true: a failure (503), naming how many and the fix.
  const all = await lacking.tokenStore.endUserSessions('u-1').then(() => undefined, (err: unknown) => err)
  t.ok(all instanceof StoreUnavailableError, 'ending them all fails here')
  t.match(String((all as { cause?: Error } | undefined)?.cause?.message), /^1 of this user's session is indexed with an encryption key this instance does not have, so not ended here \(an instance with the key ends them\)\. Fix: add that key to encryptionKeys/)
  t.same({ index: await kv.hashGetAll(keys.userSessions('u-1')), values: await kv.getMany(sessionKeys) }, before, 'entry and session untouched')
  checkUnknownKeyLine(t, logs, /a user session entry/)
  checkNoSecrets(t, logs, [sid, ...Object.values(before.index)])

  const fixed = await buildApp(t, { ...backend.options, encryptionKeys: [KEY_B, KEY_A] })
  await share(backend, lacking.tokenStore, fixed.tokenStore, sessionKeys, [keys.userSessions('u-1')])
  t.same((await fixed.tokenStore.listUserSessions('u-1')).map((s) => s.id), [handle], 'listed once the key is there')
  t.equal(await fixed.tokenStore.endUserSession('u-1', handle), true)
})

t.test('a login cookie sealed with a key the ring lacks is refused, with one warning (anyone can make one up)', async (t) => {
  const logs: Logs = []
  const app = await buildApp(t, { encryptionKeys: [KEY_B] }, { logs })
  const sealed = (await buildApp(t, { encryptionKeys: [KEY_A] })).tokenStore.seal('{"v":"PKCE-VERIFIER-SECRET"}', 'login:s')
  t.equal(app.tokenStore.unseal(sealed, 'login:s'), null)
  t.equal(app.tokenStore.unseal(sealed, 'login:s'), null)
  t.same(errorsOf(logs), [], 'not an error: the value may be forged')
  t.equal(warningsOf(logs).length, 1)
  t.match(warningsOf(logs)[0], { keyId: KEY_A_ID, msg: /a value from the browser .* \(key id [0-9a-f]{8}\); it was refused here\. If another instance of this app has that key .* add it to encryptionKeys here .* if none has, the value was made up/ })
  checkNoSecrets(t, logs, [sealed])
})

t.test('values from the browser have a budget of their own: forged cookies cannot hide a stored value\'s unknown key', async (t) => {
  const lines: Array<{ level: string, args: unknown[] }> = []
  const log = {
    error: (...args: unknown[]) => { lines.push({ level: 'error', args }) },
    warn: (...args: unknown[]) => { lines.push({ level: 'warn', args }) }
  } as unknown as ConstructorParameters<typeof UnknownKeyLog>[0]
  const reporter = new UnknownKeyLog(log, createKeyRing(KEY_B), () => 1_000_000)
  // An anonymous visitor sends login cookies with made-up key ids, more than the budget.
  for (let i = 0; i < 3 * UNKNOWN_KEY_LOG_MAX_IDS; i++) reporter.report(i.toString(16).padStart(8, '0'), 'e.g. a login cookie', true)
  t.equal(lines.length, UNKNOWN_KEY_LOG_MAX_IDS, 'made-up key ids cannot flood the log')
  t.ok(lines.every((l) => l.level === 'warn'), 'each at warn')
  // Then a stored token set sealed with a key this instance lacks (a half-done rotation): still said, at error.
  reporter.report('0a0b0c0d', 'a token set')
  const last = lines.at(-1)
  t.equal(last?.level, 'error', 'the stored value\'s line is said')
  t.match(last?.args, [{ keyId: '0a0b0c0d' }, /a stored value \(a token set\).*add that key to encryptionKeys/])
})

t.test('rolling rotation across instances sharing Redis: an instance without the new key reads nothing and deletes nothing', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('ts-rotation')
  cleanupPrefix(t, redis, prefix)
  const OLD = KEY_A
  const NEW = KEY_B
  // Instance A already deployed with the new key first; instance B still runs with the old key only.
  const a = await buildApp(t, { redis, keyPrefix: prefix, encryptionKeys: [NEW, OLD] })
  const logs: Logs = []
  const b = await buildApp(t, { redis, keyPrefix: prefix, encryptionKeys: [OLD] }, { logs })
  const sid = newSid()
  const set = tokenSet()
  await a.tokenStore.save(sid, set)
  const key = `${prefix}{${sid}}:tok`
  const stored = await redis.get(key) as string

  const r = countingRefresher()
  t.equal(await b.tokenStore.get(sid), null, 'B cannot read it')
  await t.rejects(b.tokenStore.getFresh(sid, r.refresh), UnauthenticatedError)
  t.same(r.calls, [])
  t.equal(await redis.get(key), stored, 'B deleted and overwrote nothing')
  t.same(await a.tokenStore.get(sid), set, 'A still reads it')
  const errors = errorsOf(logs)
  t.equal(errors.length, 1)
  t.match(errors[0], { keyId: createKeyRing(NEW).keyIds[0], msg: /add that key to encryptionKeys/ })
  checkNoSecrets(t, logs, [stored, sid, set.accessToken, set.refreshToken as string])

  // B reconfigured (redeployed) with [new, old]: the set was there all along.
  const b2 = await buildApp(t, { redis, keyPrefix: prefix, encryptionKeys: [NEW, OLD] })
  t.same(await b2.tokenStore.get(sid), set)
})
