import t from 'tap'
import type { TokenStore } from '@fastify-aihubmix/token-store'
import { ReauthRequiredError, RefreshRejectedError } from '@fastify-aihubmix/token-store'
import { buildApp, forEachBackend, kvOf, sid as newSid, tokenSet } from '../helpers/token-store.js'

// `endUserSessionsOnRevoked`: the provider refusing one session's refresh token for good (the user revoked the
// app at the provider) ends every session of that user, on every instance; off by default.

const HOUR = 60 * 60 * 1000

async function signIn (store: TokenStore, userId: string): Promise<string> {
  const sid = newSid()
  await store.addUserSession(userId, sid, { ttlMs: HOUR })
  // Expired: the next getFresh refreshes.
  await store.save(sid, tokenSet({ expiresInMs: -1000 }))
  await new Promise<void>((resolve, reject) => store.sessionStore.set(sid, { cookie: {}, aihubmixAuth: { at: Date.now(), seen: Date.now() } }, (err) => { if (err) reject(err); else resolve() }))
  return sid
}

async function alive (store: TokenStore, sid: string): Promise<boolean> {
  const core = store as unknown as { keys: { session: (s: string) => string, tokens: (s: string) => string } }
  const [record, tokens] = await kvOf(store).getMany([core.keys.session(sid), core.keys.tokens(sid)])
  return record !== null && tokens !== null
}

const refused = async (): Promise<never> => { throw new RefreshRejectedError({ cause: new Error('invalid_grant') }) }

forEachBackend(t, 'with endUserSessionsOnRevoked, a refused refresh ends every session of that user', async (t, backend) => {
  const revoked: string[] = []
  const app = await buildApp(t, { ...backend.options, endUserSessionsOnRevoked: true, hooks: { onRevoked: ({ sid }) => { revoked.push(sid) } } })
  const store = app.tokenStore
  const [first, second] = [await signIn(store, '12345'), await signIn(store, '12345')]
  const other = await signIn(store, '777')
  await t.rejects(store.getFresh(first, refused), ReauthRequiredError)
  t.same(revoked, [first], 'onRevoked still runs, once')
  t.notOk(await alive(store, first))
  t.notOk(await alive(store, second), 'the user\'s other session is ended too')
  t.same(await store.listUserSessions('12345'), [])
  t.ok(await alive(store, other), 'another user\'s session lives on')
})

forEachBackend(t, 'by default a refused refresh ends only the token set of that session', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const [first, second] = [await signIn(store, '12345'), await signIn(store, '12345')]
  await t.rejects(store.getFresh(first, refused), ReauthRequiredError)
  t.equal(await store.get(first), null)
  t.ok(await alive(store, second))
})
