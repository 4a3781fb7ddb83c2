import t from 'tap'
import { buildApp, kvOf, KEY_A, KEY_B } from '../helpers/token-store.js'

// tokenStore.seal / unseal: values the server hands to the browser and reads back (oauth-routes' login cookies).

t.test('a sealed value opens under its own context only, with any key of the ring', async (t) => {
  const app = await buildApp(t, { encryptionKeys: [KEY_A] })
  const sealed = app.tokenStore.seal('{"v":"PKCE-VERIFIER-SECRET"}', 'cookie-a:state-1')
  t.match(sealed, /^v1\.[A-Za-z0-9_-]+$/)
  t.notMatch(sealed, 'PKCE-VERIFIER-SECRET')
  t.equal(app.tokenStore.unseal(sealed, 'cookie-a:state-1'), '{"v":"PKCE-VERIFIER-SECRET"}')
  t.equal(app.tokenStore.unseal(sealed, 'cookie-b:state-1'), null, 'another name')
  t.equal(app.tokenStore.unseal(sealed, 'cookie-a:state-2'), null, 'another state')
  t.equal(app.tokenStore.unseal(sealed.slice(0, -2) + (sealed.at(-2) === 'A' ? 'B' : 'A') + sealed.slice(-1), 'cookie-a:state-1'), null, 'tampered')
  t.equal(app.tokenStore.unseal('', 'cookie-a:state-1'), null, 'empty')
  t.equal(app.tokenStore.unseal('not sealed', 'cookie-a:state-1'), null, 'garbage')

  // Rotation: a value sealed before the new key was put first still opens; a ring without its key does not.
  const rotated = await buildApp(t, { encryptionKeys: [KEY_B, KEY_A] })
  t.equal(rotated.tokenStore.unseal(sealed, 'cookie-a:state-1'), '{"v":"PKCE-VERIFIER-SECRET"}')
  const other = await buildApp(t, { encryptionKeys: [KEY_B] })
  t.equal(other.tokenStore.unseal(sealed, 'cookie-a:state-1'), null)
})

t.test('a stored record or token set never opens through unseal, whatever the context', async (t) => {
  const app = await buildApp(t, { keyPrefix: 'sv:' })
  const kv = kvOf(app.tokenStore)
  await app.tokenStore.putRecord('login:abc', { v: 'PKCE-VERIFIER-SECRET' }, 60_000)
  const record = await kv.get('sv:rec:login:abc') as string
  t.match(record, /^v1\./)
  // The record was sealed for `rec:login:abc`; unseal's contexts live under `val:`, so no context reaches it.
  for (const context of ['login:abc', 'rec:login:abc', 'val:rec:login:abc', '']) t.equal(app.tokenStore.unseal(record, context), null, JSON.stringify(context))
  t.same(await app.tokenStore.takeRecord('login:abc'), { v: 'PKCE-VERIFIER-SECRET' }, 'while the store itself opens it')
})
