import t from 'tap'
import type { Test } from 'tap'
import Fastify from 'fastify'
import tokenStore, { type TokenSet } from '@fastify-aihubmix/token-store'

// The opened-set cache: reading the same sealed value again skips AES-GCM, and nothing else changes.

function set (accessToken: string): TokenSet {
  return { accessToken, refreshToken: `rt-${accessToken}`, tokenType: 'Bearer', expiresAt: Date.now() + 3600_000, scope: ['profile'], obtainedAt: Date.now() }
}

async function app (t: Test, openedCacheSize?: number) {
  const fastify = Fastify()
  t.teardown(() => fastify.close())
  await fastify.register(tokenStore, { encryptionKeys: 'c'.repeat(32), ...(openedCacheSize === undefined ? {} : { openedCacheSize }) })
  return fastify
}

t.test('the same sealed value opens once; a new value is opened again; sets are read-only', async (t) => {
  const { tokenStore: store } = await app(t)
  await store.save('sid-1', set('a'))
  const first = await store.get('sid-1')
  const second = await store.get('sid-1')
  t.equal(first?.accessToken, 'a')
  t.equal(second, first, 'a cache hit gives the very same object')
  t.ok(Object.isFrozen(first) && Object.isFrozen(first?.scope), 'frozen: no request can change what others read')
  await store.save('sid-1', set('b'))
  t.equal((await store.get('sid-1'))?.accessToken, 'b', 'a new sealed value is opened, never the old copy')
  await store.delete('sid-1')
  t.equal(await store.get('sid-1'), null, 'deleted means gone')
})

t.test('a blob moved to another session still does not open (the cache is per session)', async (t) => {
  const fastify = await app(t)
  const store = fastify.tokenStore
  await store.save('victim', set('v'))
  t.equal((await store.get('victim'))?.accessToken, 'v')
  const kv = store as unknown as { kv: { get: (k: string) => Promise<string | null>, set: (k: string, v: string, ttl: number) => Promise<void> }, keys: { tokens: (sid: string) => string } }
  const blob = await kv.kv.get(kv.keys.tokens('victim'))
  await kv.kv.set(kv.keys.tokens('attacker'), blob as string, 60_000)
  t.equal(await store.get('attacker'), null)
})

t.test('openedCacheSize: 0 turns it off', async (t) => {
  const { tokenStore: store } = await app(t, 0)
  await store.save('sid-2', set('x'))
  const first = await store.get('sid-2')
  const second = await store.get('sid-2')
  t.same(first, second)
  t.not(first, second, 'opened every time')
})
