import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import fastifyCookie from '@fastify/cookie'
import type { KVStore } from '../../src/token-store/kv-store.js'
import type { KeyLayout } from '../../src/token-store/keys.js'
import { TestBrowser } from '../helpers/browser.js'
import { startComposedApp } from '../helpers/readme-composition.js'

// POST /auth/logout?everywhere=1 from a session its user's index lacks now asks userinfo who the
// user is. With the access token expired, that call refreshes the token set (the provider rotates the refresh
// token), but logout() revokes the set it read BEFORE the call: the refresh token it presents is the one just
// rotated out, and the grant's live refresh token (the one the refresh returned, then deleted locally) is never
// revoked at the provider. Before the change, this path made no provider call and revoked the current set.

t.test('sign out everywhere (unindexed session, access token expired) revokes the refresh token that is current', async (t) => {
  const revoked: string[] = []
  const revocation = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => { revoked.push(new URLSearchParams(body).get('token') ?? ''); res.writeHead(200).end() })
  })
  revocation.listen(0, '127.0.0.1')
  await once(revocation, 'listening')
  t.teardown(() => { revocation.close() })
  const port = (revocation.address() as { port: number }).port
  const composed = await startComposedApp(t, { proxy: { revocationUrl: `http://127.0.0.1:${port}/revoke` } })
  const browser = new TestBrowser()
  t.equal((await composed.signIn(browser)).status, 302, 'signed in')
  const raw = browser.cookies.get(composed.url)?.get('sid') ?? ''
  const sid = fastifyCookie.unsign(decodeURIComponent(raw), 's'.repeat(40)).value as string

  // Unindexed (signed in before sessions were indexed), and its access token expired.
  const { kv, keys } = composed.app.tokenStore as unknown as { kv: KVStore, keys: KeyLayout }
  const owner = await composed.app.tokenStore.sessionOwner(sid)
  t.ok(owner !== null)
  await kv.delete(keys.userLink(sid))
  await kv.hashDelete(keys.userSessions(owner!.userId), [owner!.id])
  const set = await composed.app.tokenStore.get(sid)
  if (set === null) throw new Error('no token set')
  await composed.app.tokenStore.save(sid, { ...set, expiresAt: Date.now() - 1000, obtainedAt: Date.now() - 3600_000 })

  const res = await browser.post(`${composed.url}/auth/logout?everywhere=1`, { 'x-csrf': '1' })
  t.equal(res.status, 204, 'signed out everywhere')
  const deadline = Date.now() + 3000
  while (revoked.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const issued = composed.mock.issued().refreshTokens
  t.comment(`refresh tokens issued: ${issued.length}; revoked: ${revoked.length}`)
  const live = issued[issued.length - 1]
  t.ok(revoked.includes(live as string), 'the refresh token the grant holds now (issued by the refresh during sign-out) is revoked')
})
