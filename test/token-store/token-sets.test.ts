import t from 'tap'
import { createTokenStore, DEFAULT_REFRESH_TOKEN_TTL_MS } from '@fastify-aihubmix/token-store'
import { createKeyRing } from '../../src/token-store/crypto.js'
import type { TokenSet } from '@fastify-aihubmix/token-store'
import { scanKeys } from '../helpers/redis.js'
import { buildApp, forEachBackend, KEY_A, KEY_B, kvOf, sid, tokenSet } from '../helpers/token-store.js'

forEachBackend(t, 'save, get, delete', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const store = app.tokenStore
  const id = sid()
  t.equal(await store.get(id), null, 'nothing yet')
  const set = tokenSet()
  await store.save(id, set)
  t.same(await store.get(id), set, 'read back as saved')
  t.equal(await store.get(sid()), null, 'other sessions see nothing')
  const replaced = tokenSet()
  await store.save(id, replaced)
  t.same(await store.get(id), replaced, 'save overwrites')
  await store.delete(id)
  t.equal(await store.get(id), null, 'deleted')
  await store.delete(id) // deleting nothing is fine
})

forEachBackend(t, 'extra properties of a set survive; an empty refresh token counts as none', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const id = sid()
  const set = { ...tokenSet(), idToken: 'ID-TOKEN' } as TokenSet
  await app.tokenStore.save(id, set)
  t.same(await app.tokenStore.get(id), set)
  await app.tokenStore.save(id, tokenSet({ refreshToken: '' }))
  t.notOk('refreshToken' in ((await app.tokenStore.get(id)) ?? {}), 'no refresh token stored')
})

forEachBackend(t, 'TTL: refreshTokenTtlMs with a refresh token, else until expiresAt', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const kv = kvOf(app.tokenStore)
  const pttl = async (key: string): Promise<number> =>
    backend.redis !== undefined ? await backend.redis.pttl(key) : (kv.pttl?.(key) ?? -2)
  const withRefresh = sid()
  await app.tokenStore.save(withRefresh, tokenSet())
  const ttl1 = await pttl(`${backend.prefix}{${withRefresh}}:tok`)
  t.ok(ttl1 > DEFAULT_REFRESH_TOKEN_TTL_MS - 60_000 && ttl1 <= DEFAULT_REFRESH_TOKEN_TTL_MS, 'refresh token TTL')

  const accessOnly = sid()
  const { refreshToken: _rt, ...noRefresh } = tokenSet({ expiresInMs: 10 * 60_000 })
  await app.tokenStore.save(accessOnly, noRefresh)
  const ttl2 = await pttl(`${backend.prefix}{${accessOnly}}:tok`)
  t.ok(ttl2 > 9 * 60_000 && ttl2 <= 10 * 60_000, 'until the access token expires')

  const expired = sid()
  await app.tokenStore.save(expired, tokenSet())
  await app.tokenStore.save(expired, { ...noRefresh, expiresAt: Date.now() - 1000 })
  t.equal(await app.tokenStore.get(expired), null, 'an already expired set without refresh token is not kept')
})

forEachBackend(t, 'a stored value contains no token in plain text', async (t, backend) => {
  if (backend.redis === undefined) {
    // The memory store holds the same sealed strings: read them through its KV interface.
    const app = await buildApp(t, backend.options)
    const id = sid()
    const set = tokenSet()
    await app.tokenStore.save(id, set)
    const raw = await kvOf(app.tokenStore).get(`${backend.prefix}{${id}}:tok`)
    t.type(raw, 'string')
    t.notMatch(raw, set.accessToken)
    t.notMatch(raw, set.refreshToken as string)
    t.notMatch(raw, 'Bearer')
    return
  }
  const redis = backend.redis
  const app = await buildApp(t, backend.options)
  const sets = Array.from({ length: 5 }, () => tokenSet())
  await Promise.all(sets.map(set => app.tokenStore.save(sid(), set)))
  await app.tokenStore.putRecord('login-state-1', { verifier: 'PKCE-VERIFIER-SECRET', returnTo: '/x' }, 60_000)
  const keys = await scanKeys(redis, backend.prefix)
  t.equal(keys.length, 6)
  for (const key of keys) {
    const value = await redis.get(key) as string
    t.match(value, /^v1\./, `${key.slice(backend.prefix.length)} is sealed`)
    for (const set of sets) {
      t.notMatch(value, set.accessToken)
      t.notMatch(value, set.refreshToken as string)
    }
    t.notMatch(value, 'PKCE-VERIFIER-SECRET')
    t.notMatch(value, 'AT-SECRET')
    t.notMatch(value, 'RT-SECRET')
  }
})

forEachBackend(t, 'a blob copied to another session does not open there, and is deleted', async (t, backend) => {
  const logs: Array<Record<string, unknown>> = []
  const app = await buildApp(t, backend.options, { logs })
  const kv = kvOf(app.tokenStore)
  const victim = sid()
  const attacker = sid()
  const set = tokenSet()
  await app.tokenStore.save(victim, set)
  const blob = await kv.get(`${backend.prefix}{${victim}}:tok`) as string
  await kv.set(`${backend.prefix}{${attacker}}:tok`, blob, 60_000)
  t.equal(await app.tokenStore.get(attacker), null, 'not readable under another session id')
  t.equal(await kv.get(`${backend.prefix}{${attacker}}:tok`), null, 'and deleted')
  t.same(await app.tokenStore.get(victim), set, 'the original is untouched')
  const warnings = logs.filter(l => l.level === 40)
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0], { msg: /could not be opened/, err: { code: 'FST_AIHUBMIX_UNSEAL_FAILED' } })
  const all = JSON.stringify(logs)
  t.notMatch(all, blob.slice(3, 40), 'the value is not logged')
  t.notMatch(all, victim, 'no session id in the logs')
  t.notMatch(all, attacker)
})

forEachBackend(t, 'garbage and values sealed with a retired key read as absent (the retired key\'s one is kept: see unknown-key.test.ts)', async (t, backend) => {
  const logs: Array<Record<string, unknown>> = []
  const oldApp = await buildApp(t, { ...backend.options, encryptionKeys: KEY_B })
  const app = await buildApp(t, backend.options, { logs })
  const kv = kvOf(app.tokenStore)
  const g = sid()
  await kv.set(`${backend.prefix}{${g}}:tok`, 'not sealed at all', 60_000)
  t.equal(await app.tokenStore.get(g), null)
  const old = sid()
  if (backend.redis !== undefined) {
    await oldApp.tokenStore.save(old, tokenSet())
    const sealed = await kv.get(`${backend.prefix}{${old}}:tok`)
    t.equal(await app.tokenStore.get(old), null, 'sealed with a key no longer in the ring')
    t.equal(await kv.get(`${backend.prefix}{${old}}:tok`), sealed, 'but not deleted: the key may only be missing from this ring')
    t.equal(logs.filter(l => l.level === 50).length, 1, 'one error line')
  }
  t.equal(await kv.get(`${backend.prefix}{${g}}:tok`), null, 'garbage is deleted')
  const json = sid()
  const ring = createKeyRing(KEY_A)
  await kv.set(`${backend.prefix}{${json}}:tok`, ring.seal('{"accessToken":1}', `tok:${json}`), 60_000)
  t.equal(await app.tokenStore.get(json), null, 'opens, but is not a token set')
  t.ok(logs.filter(l => l.level === 40).length >= 2)
})

t.test('key rotation: sets sealed with the old key stay readable', async t => {
  const before = createTokenStore({ encryptionKeys: KEY_A })
  t.teardown(() => before.close())
  // Same process, two stores: share nothing but sealed strings; move one across by hand.
  const id = sid()
  const set = tokenSet()
  await before.save(id, set)
  const sealed = await kvOf(before).get(`aihubmix:{${id}}:tok`) as string
  const after = createTokenStore({ encryptionKeys: [KEY_B, KEY_A] })
  t.teardown(() => after.close())
  await kvOf(after).set(`aihubmix:{${id}}:tok`, sealed, 60_000)
  t.same(await after.get(id), set)
})

t.test('invalid arguments are programming errors, with exact codes', async t => {
  const store = createTokenStore({ encryptionKeys: KEY_A })
  t.teardown(() => store.close())
  await t.rejects(store.save('', tokenSet()), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /"sid"/ })
  await t.rejects(store.get(''), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' })
  await t.rejects(store.save('s', { ...tokenSet(), accessToken: '' }), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /accessToken/ })
  await t.rejects(store.save('s', { ...tokenSet(), expiresAt: Number.NaN }), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /expiresAt/ })
  await t.rejects(store.save('s', { ...tokenSet(), scope: 'profile' } as unknown as TokenSet), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /scope/ })
  t.equal(await store.get('s'), null, 'nothing stored')
})
