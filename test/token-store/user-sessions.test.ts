import t from 'tap'
import type { TokenStore } from '@fastify-aihubmix/token-store'
import { MAX_USER_AGENT_LENGTH, StoreUnavailableError, TokenStoreArgumentError } from '@fastify-aihubmix/token-store'
import { KEY_A, KEY_B, buildApp, forEachBackend, kvOf, sid as newSid, tokenSet } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, scanKeys, uniquePrefix } from '../helpers/redis.js'

// A user's sessions (token-store's index, user-sessions.ts): listed across instances by the provider's user id,
// ended by an opaque handle as a logout ends them, bounded, and cleaned up however a session ends.

const HOUR = 60 * 60 * 1000

/**
 * Writes a session record as @fastify/session would (through the token store's session store), signed in (a session
 * holding nothing but its cookie is not written).
 */
function putRecord (store: TokenStore, sid: string, data: Record<string, unknown> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const signedIn = { aihubmixAuth: { at: Date.now(), seen: Date.now() } }
    store.sessionStore.set(sid, { cookie: { expires: new Date(Date.now() + HOUR).toISOString() }, ...signedIn, ...data }, (err) => {
      if (err) reject(err)
      else resolve()
    })
  })
}

interface Signed { sid: string, handle: string }

/** A sign-in as oauth-routes makes it: indexed, then the token set, then the session record. */
async function signIn (store: TokenStore, userId: string, opts: { userAgent?: string, ttlMs?: number, record?: Record<string, unknown> } = {}): Promise<Signed> {
  const sid = newSid()
  const handle = await store.addUserSession(userId, sid, { userAgent: opts.userAgent ?? 'UA', ttlMs: opts.ttlMs ?? HOUR })
  await store.save(sid, tokenSet())
  await putRecord(store, sid, opts.record)
  return { sid, handle }
}

/** Whether the session's record and token set are both still there. */
async function alive (store: TokenStore, sid: string): Promise<boolean> {
  const core = store as unknown as { keys: { session: (s: string) => string, tokens: (s: string) => string } }
  const [record, tokens] = await kvOf(store).getMany([core.keys.session(sid), core.keys.tokens(sid)])
  return record !== null && tokens !== null
}

/** The handles of the user's index as stored (dropped entries included until a listing drops them). */
async function storedHandles (store: TokenStore, userId: string): Promise<string[]> {
  const core = store as unknown as { keys: { userSessions: (u: string) => string } }
  return Object.keys(await kvOf(store).hashGetAll(core.keys.userSessions(userId))).sort()
}

forEachBackend(t, 'a user\'s sessions are listed newest first, each under a handle that is not its session id', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const first = await signIn(store, '12345', { userAgent: 'Browser One' })
  const second = await signIn(store, '12345', { userAgent: 'Browser Two' })
  await signIn(store, '777', { userAgent: 'Someone else' })

  const listed = await store.listUserSessions('12345')
  t.same(listed.map((s) => s.id), [second.handle, first.handle], 'newest first, only this user\'s')
  t.same(listed.map((s) => s.userAgent), ['Browser Two', 'Browser One'])
  for (const s of listed) {
    t.match(s.id, /^[A-Za-z0-9_-]{22}$/, 'a 128-bit handle')
    t.not(s.id, first.sid)
    t.not(s.id, second.sid)
    t.equal(s.lastSeenAt, s.createdAt, 'without a reader, last seen is the start')
  }
  t.notMatch(JSON.stringify(listed), first.sid, 'no session id anywhere in a listing')
  t.notMatch(JSON.stringify(listed), second.sid)
  t.same(await store.sessionOwner(first.sid), { userId: '12345', id: first.handle })
  t.equal(await store.sessionOwner(newSid()), null, 'a session that was never indexed has no owner')
  t.same(await store.listUserSessions('nobody'), [])
})

forEachBackend(t, 'ending a session by its handle ends it as a logout does; another user\'s handle ends nothing', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const mine = await signIn(store, '12345')
  const other = await signIn(store, '12345')
  const theirs = await signIn(store, '777')

  t.equal(await store.endUserSession('12345', theirs.handle), false, 'another user\'s handle is not mine')
  t.equal(await store.endUserSession('12345', 'not-a-handle'), false)
  t.equal(await store.endUserSession('12345', mine.sid), false, 'a session id is not a handle')
  t.ok(await alive(store, theirs.sid), 'nothing ended')
  t.ok(await alive(store, mine.sid))

  t.equal(await store.endUserSession('12345', other.handle), true)
  t.notOk(await alive(store, other.sid), 'record and token set gone')
  t.equal(await store.sessionOwner(other.sid), null, 'its link is gone')
  t.same(await storedHandles(store, '12345'), [mine.handle], 'its entry is gone')
  t.equal(await store.endUserSession('12345', other.handle), false, 'once')
  t.ok(await alive(store, mine.sid), 'the others live on')
})

forEachBackend(t, 'endSession removes the session from its user\'s index, whatever ended it', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const a = await signIn(store, '12345')
  const b = await signIn(store, '12345')
  // What a logout, a timeout and a revoked grant all come down to.
  await store.endSession(a.sid)
  t.same(await storedHandles(store, '12345'), [b.handle], 'removed at once, before any listing')
  t.equal(await store.sessionOwner(a.sid), null)
  // The session store's destroy (@fastify/session's logout and regenerate) goes the same way.
  await new Promise<void>((resolve, reject) => store.sessionStore.destroy(b.sid, (err) => { if (err) reject(err); else resolve() }))
  t.same(await storedHandles(store, '12345'), [])
})

forEachBackend(t, 'a session gone without endSession leaves the listing and is ended there', async (t, backend) => {
  let timedOut = ''
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  store.addSessionCheck((session) => session.user === timedOut ? 'end' : undefined)
  const live = await signIn(store, '12345', { record: { user: 'live' } })
  const expired = await signIn(store, '12345', { record: { user: 'expired' } })
  const checkedOut = await signIn(store, '12345', { record: { user: 'checked-out' } })
  const noTokens = await signIn(store, '12345', { record: { user: 'no-tokens' } })
  const core = store as unknown as { keys: { session: (s: string) => string } }
  // The record's own TTL ran out (Redis expired it), a session check says it is over (an idle timeout), and a
  // token set that is gone (signed out without the record going).
  await kvOf(store).delete(core.keys.session(expired.sid))
  timedOut = 'checked-out'
  await store.delete(noTokens.sid)

  const before = Date.now
  Date.now = () => before() + 61_000 // the record of `expired` is not a sign-in in progress any more
  t.teardown(() => { Date.now = before })
  t.same((await store.listUserSessions('12345')).map((s) => s.id), [live.handle])
  Date.now = before
  t.same(await storedHandles(store, '12345'), [live.handle], 'their entries are dropped')
  t.notOk(await alive(store, checkedOut.sid), 'a session a check ends is ended, as the cookie path would')
  t.equal(await store.sessionOwner(noTokens.sid), null, 'links are gone too')
  t.equal(await store.sessionOwner(expired.sid), null)
  t.ok(await alive(store, live.sid))
})

forEachBackend(t, 'a sign-in in progress is not listed and not dropped, until it is a minute old', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const done = await signIn(store, '12345')
  const sid = newSid()
  const pending = await store.addUserSession('12345', sid, { ttlMs: HOUR })
  t.same((await store.listUserSessions('12345')).map((s) => s.id), [done.handle], 'no record yet: not listed')
  t.same(await storedHandles(store, '12345'), [done.handle, pending].sort(), 'and kept')
  await putRecord(store, sid)
  await store.save(sid, tokenSet())
  t.same((await store.listUserSessions('12345')).map((s) => s.id), [pending, done.handle], 'listed once its record is saved')

  const abandoned = await store.addUserSession('12345', newSid(), { ttlMs: HOUR })
  const before = Date.now
  Date.now = () => before() + 61_000
  t.teardown(() => { Date.now = before })
  await store.listUserSessions('12345')
  Date.now = before
  t.notOk((await storedHandles(store, '12345')).includes(abandoned), 'a sign-in that never finished is dropped after a minute')
})

forEachBackend(t, 'an entry expires with its session\'s longest life: a listing then ends the session', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const s = await signIn(store, '12345', { ttlMs: 1000 })
  const longer = await signIn(store, '12345')
  const before = Date.now
  Date.now = () => before() + 1001
  t.teardown(() => { Date.now = before })
  t.same((await store.listUserSessions('12345')).map((l) => l.id), [longer.handle])
  Date.now = before
  t.notOk(await alive(store, s.sid), 'past its longest life, a session still there is ended')
  t.same(await storedHandles(store, '12345'), [longer.handle])
})

forEachBackend(t, 'beyond maxSessionsPerUser a sign-in ends the oldest sessions', async (t, backend) => {
  const app = await buildApp(t, { ...backend.options, maxSessionsPerUser: 3 })
  const store = app.tokenStore
  const signed: Signed[] = []
  for (let i = 0; i < 3; i++) signed.push(await signIn(store, '12345'))
  const other = await signIn(store, '777')
  signed.push(await signIn(store, '12345'))
  signed.push(await signIn(store, '12345'))
  const [oldest, second, ...kept] = signed as [Signed, Signed, ...Signed[]]
  t.same((await store.listUserSessions('12345')).map((s) => s.id), kept.map((s) => s.handle).reverse())
  t.same(await storedHandles(store, '12345'), kept.map((s) => s.handle).sort(), 'the index holds 3')
  t.notOk(await alive(store, oldest.sid), 'the oldest is ended, not only forgotten')
  t.notOk(await alive(store, second.sid))
  t.ok(await alive(store, other.sid), 'another user\'s sessions do not count')
})

forEachBackend(t, 'endUserSessions ends every session of the user and no other user\'s', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const mine = [await signIn(store, '12345'), await signIn(store, '12345')]
  const theirs = await signIn(store, '777')
  t.equal(await store.endUserSessions('12345'), 2)
  for (const s of mine) t.notOk(await alive(store, s.sid))
  t.same(await store.listUserSessions('12345'), [])
  t.same(await storedHandles(store, '12345'), [])
  t.ok(await alive(store, theirs.sid))
  t.equal(await store.endUserSessions('12345'), 0)
})

forEachBackend(t, 'the User-Agent is kept short and without control characters; last seen comes from the record', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  store.setLastSeenReader((session) => typeof session.seen === 'number' ? session.seen : undefined)
  const seen = Date.now() + 5000
  await signIn(store, '12345', { userAgent: `Evil\r\nSet-Cookie: x=1\u0000${'A'.repeat(5000)}`, record: { seen } })
  const [listed] = await store.listUserSessions('12345')
  t.equal(listed?.userAgent.length, MAX_USER_AGENT_LENGTH)
  t.match(listed?.userAgent, /^Evil {2}Set-Cookie: x=1 A+$/)
  t.equal(listed?.lastSeenAt, seen)
})

forEachBackend(t, 'bad arguments are refused with the argument named', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  await t.rejects(store.addUserSession('{12345}', newSid(), { ttlMs: HOUR }), new TokenStoreArgumentError('userId', 'must be 1 to 128 printable ASCII characters without spaces, "{" or "}"'))
  await t.rejects(store.addUserSession('a b', newSid(), { ttlMs: HOUR }), TokenStoreArgumentError)
  await t.rejects(store.addUserSession('12345', newSid(), { ttlMs: 0 }), /ttlMs/)
  await t.rejects(store.listUserSessions(''), /userId/)
  t.throws(() => store.setLastSeenReader(42 as never), /reader/)
})

t.test('in Redis: hash-tagged keys, each with a TTL that follows its session, nothing readable in them', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('us')
  cleanupPrefix(t, redis, prefix)
  const app = await buildApp(t, { redis, keyPrefix: prefix })
  const store = app.tokenStore
  const short = await signIn(store, '12345', { ttlMs: 10 * 60 * 1000, userAgent: 'Recognisable Browser' })
  await signIn(store, '12345', { ttlMs: 2 * HOUR })
  const keys = await scanKeys(redis, prefix)
  const index = `${prefix}{u:12345}:sessions`
  t.ok(keys.includes(index), 'one hash-tagged key per user')
  t.ok(keys.includes(`${prefix}{${short.sid}}:user`), 'a link in the session\'s own slot')
  t.equal(await redis.type(index), 'hash')
  const ttl = await redis.pttl(index)
  t.ok(ttl > HOUR && ttl <= 2 * HOUR, `the index lives as long as its longest session (${ttl} ms)`)
  const linkTtl = await redis.pttl(`${prefix}{${short.sid}}:user`)
  t.ok(linkTtl > 0 && linkTtl <= 10 * 60 * 1000, `a link lives as long as its session may (${linkTtl} ms)`)
  for (const key of keys) t.ok(await redis.pttl(key) > 0, `${key} has a TTL`)
  const entries = Object.values(await redis.hgetall(index))
  t.equal(entries.length, 2)
  for (const value of entries) {
    t.match(value, /^v1\./, 'entries are sealed')
    t.notMatch(value, short.sid, 'no session id in plain text')
    t.notMatch(value, 'Recognisable')
  }
})

// A rotation of the encryption key deployed in the wrong order: the new key first on A, B without it. A user's sign-in
// on A is indexed with the new key, which B cannot open. "Sign out everywhere" on B ended what it could and answered
// as if every session had ended (an operator review, from the code): what a user does after losing a device.
t.test('ending every session on an instance that lacks a key an entry is sealed with: the others end, and it fails', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const keyPrefix = uniquePrefix('unopened')
  cleanupPrefix(t, admin, keyPrefix)
  const a = (await buildApp(t, { keyPrefix, redis: await connectRedis(t), encryptionKeys: [KEY_B, KEY_A] })).tokenStore
  const b = (await buildApp(t, { keyPrefix, redis: await connectRedis(t), encryptionKeys: KEY_A })).tokenStore
  const onA = await signIn(a, '4242', { userAgent: 'signed in on A' })
  const onB = await signIn(b, '4242', { userAgent: 'signed in on B' })

  const failed = await b.endUserSessions('4242').then(() => undefined, (err: unknown) => err)
  t.ok(failed instanceof StoreUnavailableError, 'B fails (503), not "every session ended"')
  t.match(String((failed as { cause?: Error } | undefined)?.cause?.message), /^1 of this user's session is indexed with an encryption key this instance does not have, so not ended here/)
  t.equal(await alive(b, onB.sid), false, 'what B could open, it ended')
  t.equal(await alive(a, onA.sid), true, 'the session indexed with the key B lacks lives on')
  t.equal(await a.endUserSessions('4242'), 1, 'an instance with the key ends it')
  t.equal(await alive(a, onA.sid), false)
  t.same(await b.listUserSessions('4242'), [], 'nothing left')
})
