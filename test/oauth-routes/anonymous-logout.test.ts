import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'

// A sign-out from a browser without a session (no cookie, a forged one, one whose session ended) has nothing to end.
// It sent a DEL and a GETDEL for the id @fastify/session had just made up (GET for ?everywhere=1), and answered 503
// with a warning line per request while Redis was down. Now the store is not asked: these run on a Redis connection
// that is cut, where any command fails at once.

const CSRF = { 'x-csrf': '1' }

t.test('a sign-out without a session asks the store nothing: 204, or 401 for everywhere, through a store outage', async (t) => {
  const admin = await connectRedis(t)
  if (admin === undefined) return
  const prefix = uniquePrefix('anon-logout')
  cleanupPrefix(t, admin, prefix)
  const redis = await connectRedis(t, { enableOfflineQueue: false }) as NonNullable<typeof admin>
  const stack = await startStack({ redis, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  const { browser: ended } = await stack.login()
  const endedCookie = ended.cookieHeader(`${stack.url}/auth/logout`) as string
  t.match(endedCookie, /sid=/)
  t.equal((await ended.post(`${stack.url}/auth/logout`, CSRF)).status, 204, 'a signed-in browser signs out')

  // The cookie of a session that has ended: @fastify/session reads the store to find that out (so not in the outage).
  const again = await new TestBrowser().post(`${stack.url}/auth/logout`, { ...CSRF, cookie: endedCookie })
  t.equal(again.status, 204, 'the cookie of a session that has ended: 204')
  t.match(String(again.headers['set-cookie']), /sid=;/, 'the cookie of a session that has ended: cleared')
  const againEverywhere = await new TestBrowser().post(`${stack.url}/auth/logout?everywhere=1`, { ...CSRF, cookie: endedCookie })
  t.equal(againEverywhere.status, 401, 'the cookie of a session that has ended, everywhere: 401')

  redis.disconnect()
  const cookies: Array<[string, Record<string, string>]> = [
    ['no cookie', {}],
    ['a forged cookie', { cookie: `sid=${'A'.repeat(32)}.forged` }]
  ]
  for (const [name, cookie] of cookies) {
    const out = await new TestBrowser().post(`${stack.url}/auth/logout`, { ...CSRF, ...cookie })
    t.equal(out.status, 204, `${name}: 204`)
    t.match(String(out.headers['set-cookie']), /sid=;/, `${name}: the cookie is cleared`)
    const everywhere = await new TestBrowser().post(`${stack.url}/auth/logout?everywhere=1`, { ...CSRF, ...cookie })
    t.same([everywhere.status, JSON.parse(everywhere.body).error], [401, 'unauthenticated'], `${name}: everywhere is 401 (whose sessions is not known)`)
  }
  t.equal((await new TestBrowser().post(`${stack.url}/auth/logout`)).status, 403, 'the CSRF header is still required')
})
