import t from 'tap'
import { buildApp, forEachBackend, kvOf, sleep } from '../helpers/token-store.js'

forEachBackend(t, 'a record is returned once', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const value = { state: 'S', verifier: 'PKCE-VERIFIER', returnTo: '/after', mode: 'popup', created: 1 }
  await app.tokenStore.putRecord('login:abc', value, 60_000)
  t.same(await app.tokenStore.takeRecord('login:abc'), value)
  t.equal(await app.tokenStore.takeRecord('login:abc'), null, 'gone after the first take')
  t.equal(await app.tokenStore.takeRecord('login:never'), null)
})

forEachBackend(t, 'JSON values of any shape', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  for (const [i, value] of (['text', 42, true, [1, 'two'], { nested: { deep: ['x'] } }] as unknown[]).entries()) {
    await app.tokenStore.putRecord(`v${i}`, value, 60_000)
    t.same(await app.tokenStore.takeRecord(`v${i}`), value)
  }
  await app.tokenStore.putRecord('undef', undefined, 60_000)
  t.equal(await app.tokenStore.takeRecord('undef'), null)
  await t.rejects(app.tokenStore.putRecord('big', 10n, 60_000), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /JSON/ })
})

forEachBackend(t, 'concurrent takers: exactly one gets the record', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  await app.tokenStore.putRecord('race', { n: 1 }, 60_000)
  const results = await Promise.all(Array.from({ length: 25 }, () => app.tokenStore.takeRecord('race')))
  t.same(results.filter(r => r !== null), [{ n: 1 }])
})

forEachBackend(t, 'a record expires with its TTL, and has one', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  await app.tokenStore.putRecord('ttl', { a: 1 }, 60_000)
  const key = `${backend.prefix}rec:ttl`
  const ttl = backend.redis !== undefined ? await backend.redis.pttl(key) : kvOf(app.tokenStore).pttl?.(key) ?? -2
  t.ok(ttl > 0 && ttl <= 60_000, 'TTL set')
  await app.tokenStore.putRecord('short', { a: 1 }, 30)
  await sleep(80)
  t.equal(await app.tokenStore.takeRecord('short'), null, 'expired')
})

forEachBackend(t, 'a tampered or moved record reads as absent, logged without its value', async (t, backend) => {
  const logs: Array<Record<string, unknown>> = []
  const app = await buildApp(t, backend.options, { logs })
  const kv = kvOf(app.tokenStore)
  await app.tokenStore.putRecord('original', { verifier: 'PKCE-VERIFIER-SECRET' }, 60_000)
  const sealed = await kv.get(`${backend.prefix}rec:original`) as string
  await kv.set(`${backend.prefix}rec:copy`, sealed, 60_000)
  t.equal(await app.tokenStore.takeRecord('copy'), null, 'sealed for another key: does not open')
  await kv.set(`${backend.prefix}rec:flip`, sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.slice(-1), 60_000)
  t.equal(await app.tokenStore.takeRecord('flip'), null, 'tampered')
  t.same(await app.tokenStore.takeRecord('original'), { verifier: 'PKCE-VERIFIER-SECRET' })
  t.equal(logs.filter(l => l.level === 40).length, 2)
  t.notMatch(JSON.stringify(logs), 'PKCE-VERIFIER-SECRET')
  t.notMatch(JSON.stringify(logs), sealed.slice(3, 30))
})

forEachBackend(t, 'a claim marker is won by exactly one caller, has a TTL, and can be deleted', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  const results = await Promise.all(Array.from({ length: 25 }, () => app.tokenStore.claimRecord('used:s1', 60_000)))
  t.equal(results.filter(Boolean).length, 1, 'one winner of 25 concurrent claims')
  t.equal(await app.tokenStore.claimRecord('used:s1', 60_000), false, 'later claims lose too')
  const key = `${backend.prefix}rec:used:s1`
  const ttl = backend.redis !== undefined ? await backend.redis.pttl(key) : kvOf(app.tokenStore).pttl?.(key) ?? -2
  t.ok(ttl > 0 && ttl <= 60_000, 'TTL set')
  await app.tokenStore.deleteRecord('used:s1')
  t.equal(await app.tokenStore.claimRecord('used:s1', 60_000), true, 'claimable again once deleted')
  t.equal(await app.tokenStore.claimRecord('used:short', 30), true)
  await sleep(80)
  t.equal(await app.tokenStore.claimRecord('used:short', 30), true, 'claimable again once expired')
  await t.rejects(app.tokenStore.claimRecord('', 1000), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /"key"/ })
  await t.rejects(app.tokenStore.claimRecord('k', 0), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /"ttlMs"/ })
})

forEachBackend(t, 'bad keys and TTLs are rejected', async (t, backend) => {
  const app = await buildApp(t, backend.options)
  await t.rejects(app.tokenStore.putRecord('', 1, 1000), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /"key"/ })
  await t.rejects(app.tokenStore.putRecord('k', 1, 0), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT', message: /"ttlMs"/ })
  await t.rejects(app.tokenStore.putRecord('k', 1, Infinity), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' })
  await t.rejects(app.tokenStore.takeRecord(''), { code: 'FST_AIHUBMIX_TOKEN_STORE_ARGUMENT' })
})
