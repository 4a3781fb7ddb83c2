import t, { type Test } from 'tap'
import type { Redis } from 'ioredis'
import { TestBrowser } from '../helpers/browser.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { composeReadmeApp, providerForPort } from '../helpers/readme-composition.js'

// The root README: `const secret = need('SESSION_SECRET').split(',')  // a list, newest first, to rotate`, given to
// both @fastify/session and token-store's sessionCookie, with `rolling: false` and `saveUninitialized: false`.
// A user signed in before the rotation carries a cookie signed with the old secret, which both accept; but on a
// @fastify/session route, with nothing to save, @fastify/session cleared it (it differs from the id signed with the
// newest secret) and the user was signed out. Now oauth-routes saves the stamp, and the cookie is signed anew.

const OLD = 'o'.repeat(40)
const NEW = 'n'.repeat(40)

/** Redis under a prefix of its own, a mock provider and a free port for the app (restarted on it). */
async function rotationSetup (t: Test): Promise<{ redis: Redis, keyPrefix: string, port: number, url: string, provider: { baseUrl: string, clientId: string, clientSecret: string } } | undefined> {
  const redis = await connectRedis(t)
  if (redis === undefined) return undefined
  const keyPrefix = uniquePrefix('rotation')
  cleanupPrefix(t, redis, keyPrefix)
  const { port, url, provider } = await providerForPort(t, 'rotation')
  return { redis, keyPrefix, port, url, provider }
}

/** A whole redirect-mode sign-in: the callback's status. */
async function signIn (browser: TestBrowser, url: string): Promise<number> {
  const start = await browser.get(`${url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  return (await browser.get(TestBrowser.location(back))).status
}

t.test('a session cookie signed with the old secret survives a rotation to [new, old]', async (t) => {
  const setup = await rotationSetup(t)
  if (setup === undefined) return
  const { redis, keyPrefix, port, url, provider } = setup

  let app = await composeReadmeApp({ port, provider, secret: [OLD], redis, keyPrefix })
  const browser = new TestBrowser()
  t.equal(await signIn(browser, url), 302, 'signed in under the old secret')
  t.equal((await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 200)

  // The rotation is deployed: the new secret signs, the old one still verifies.
  await app.close()
  app = await composeReadmeApp({ port, provider, secret: [NEW, OLD], redis, keyPrefix })
  t.teardown(() => app.close())

  t.equal((await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 200, '/api reads the old-signed cookie')
  // The page asks whether it is signed in (a @fastify/session route).
  const session = await browser.get(`${url}/auth/session`)
  t.equal(JSON.parse(session.body).authenticated, true, '/auth/session says signed in')
  t.comment(`set-cookie on /auth/session: ${JSON.stringify(session.headers['set-cookie'])}`)
  t.ok(browser.cookies.get(url)?.has('sid'), 'the browser still has its session cookie')
  const after = await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })
  t.equal(after.status, 200, 'and is still signed in on the next /api call')
})

// An instance whose session secret list lacks the one a cookie was signed with (a deploy with another SESSION_SECRET
// on one instance): @fastify/session takes the cookie for no session and clears it, and the user is signed out on
// every instance. Nothing said so on @fastify/session's routes. Now one warning line names the fix.
for (const sessionCookie of [true, false]) {
  t.test(`a session cookie signed with a secret this instance lacks (${sessionCookie ? 'with' : 'without'} token-store's sessionCookie): one warning that names the fix`, async (t) => {
    const setup = await rotationSetup(t)
    if (setup === undefined) return
    const { redis, keyPrefix, port, url, provider } = setup

    const a = await composeReadmeApp({ port, provider, secret: [OLD], redis, keyPrefix, ...(sessionCookie ? {} : { tokenStoreCookie: null }) })
    const browser = new TestBrowser()
    t.equal(await signIn(browser, url), 302, 'signed in on an instance with the old secret')
    await a.close()

    const logs: string[] = []
    const b = await composeReadmeApp({ port, provider, secret: [NEW], redis, keyPrefix, logs, ...(sessionCookie ? {} : { tokenStoreCookie: null }) })
    t.teardown(() => b.close())
    const warnings = (): string[] => logs.map((l) => JSON.parse(l) as { level: number, msg: string }).filter((l) => l.level === 40 && l.msg.startsWith('oauth-routes:')).map((l) => l.msg)

    // First a cookie this instance signed, of a session ended since (elsewhere): no session, and nothing to say.
    const other = new TestBrowser()
    t.equal(await signIn(other, url), 302)
    const signed = decodeURIComponent(String(other.cookies.get(url)?.get('sid')))
    await b.tokenStore.endSession(signed.slice(0, signed.lastIndexOf('.')))
    t.equal(JSON.parse((await other.get(`${url}/auth/session`)).body).authenticated, false, 'the ended session is signed out')
    t.same(warnings(), [], 'no line for it')

    for (let i = 0; i < 3; i++) {
      t.equal(JSON.parse((await browser.get(`${url}/auth/session`)).body).authenticated, false, 'the old-secret cookie is signed out there')
    }
    t.equal(warnings().length, 1, 'one line, however often')
    t.match(warnings()[0], /sid cookie did not verify here/)
    t.match(warnings()[0], /Fix: give every instance the same session secret list \(SESSION_SECRET in the example\)/)
  })
}

// An operator review, two instances on one Redis: the new secret put first on A while B still had only the old one
// (or the old one dropped on one instance too early). B could not verify the cookies A signed, and @fastify/session's
// clearing of them signed 10 of 10 users out for good: once B had the right list, their cookies were gone. The
// clearing is now dropped for a cookie refused for its signature: the request is answered signed out, nothing else.
for (const sessionCookie of [true, false]) {
  t.test(`a cookie an instance cannot verify is not cleared: signed in again once the secret list is mended (${sessionCookie ? 'with' : 'without'} sessionCookie)`, async (t) => {
    const setup = await rotationSetup(t)
    if (setup === undefined) return
    const { redis, keyPrefix, port, url, provider } = setup
    const composition = sessionCookie ? {} : { tokenStoreCookie: null }

    const a = await composeReadmeApp({ port, provider, secret: [OLD], redis, keyPrefix, ...composition })
    const browser = new TestBrowser()
    t.equal(await signIn(browser, url), 302, 'signed in where the old secret signs')
    const leaving = new TestBrowser()
    t.equal(await signIn(leaving, url), 302, 'another browser too')
    await a.close()

    // The mistake: an instance without the old secret.
    const b = await composeReadmeApp({ port, provider, secret: [NEW], redis, keyPrefix, ...composition })
    const session = await browser.get(`${url}/auth/session`)
    t.equal(JSON.parse(session.body).authenticated, false, 'answered signed out there')
    t.notOk([session.headers['set-cookie'] ?? []].flat().some((line) => line.startsWith('sid=')), 'no Set-Cookie for sid: the cookie is not cleared')
    t.ok(browser.cookies.get(url)?.has('sid'), 'the browser keeps it')
    // (Without sessionCookie this composition's /api routes, outside @fastify/session's scope, have no session at all.)
    if (sessionCookie) t.equal((await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 401, '/api answers 401 there too')
    // A sign-out asked for there still clears the cookie (the session itself cannot be found from there).
    const logout = await leaving.post(`${url}/auth/logout`, { 'x-csrf': '1' })
    t.equal(logout.status, 204)
    t.ok([logout.headers['set-cookie'] ?? []].flat().some((line) => line.startsWith('sid=;')), 'a sign-out clears it')
    t.notOk(leaving.cookies.get(url)?.has('sid'), 'that browser has no session cookie left')
    await b.close()

    // Mended: the list every instance should have had.
    const mended = await composeReadmeApp({ port, provider, secret: [NEW, OLD], redis, keyPrefix, ...composition })
    t.teardown(() => mended.close())
    t.equal(JSON.parse((await browser.get(`${url}/auth/session`)).body).authenticated, true, 'signed in again, nothing else done')
    if (sessionCookie) t.equal((await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 200, 'and /api answers')

    // A cookie of a session ended since (signed here, no record) is still cleared, as before.
    const other = new TestBrowser()
    t.equal(await signIn(other, url), 302)
    const signed = decodeURIComponent(String(other.cookies.get(url)?.get('sid')))
    await mended.tokenStore.endSession(signed.slice(0, signed.lastIndexOf('.')))
    const ended = await other.get(`${url}/auth/session`)
    t.ok([ended.headers['set-cookie'] ?? []].flat().some((line) => line.startsWith('sid=;')), 'an ended session\'s cookie is cleared')
  })
}

// The encryption key's rotation deployed in the wrong order: the new key first on one instance, the other without it.
// A sign-in on the first is indexed with the new key. "Sign out everywhere" on the other answered 204 and left it.
t.test('sign out everywhere on an instance that lacks a key a session is indexed with: 503, not 204, and an instance with the key ends it', async (t) => {
  const setup = await rotationSetup(t)
  if (setup === undefined) return
  const { redis, keyPrefix, port, url, provider } = setup
  const OLD_KEY = `base64:${Buffer.alloc(32, 1).toString('base64')}`
  const NEW_KEY = `base64:${Buffer.alloc(32, 2).toString('base64')}`

  const withNew = await composeReadmeApp({ port, provider, secret: [OLD], redis, keyPrefix, encryptionKeys: [NEW_KEY, OLD_KEY] })
  const lost = new TestBrowser()
  t.equal(await signIn(lost, url), 302, 'a device signed in where the new key seals')
  await withNew.close()

  const without = await composeReadmeApp({ port, provider, secret: [OLD], redis, keyPrefix, encryptionKeys: [OLD_KEY] })
  const here = new TestBrowser()
  t.equal(await signIn(here, url), 302, 'and one where it does not')
  const everywhere = await here.post(`${url}/auth/logout?everywhere=1`, { 'x-csrf': '1' })
  t.same([everywhere.status, JSON.parse(everywhere.body).error], [503, 'store_unavailable'], 'not every session could end: 503')
  await without.close()

  const mended = await composeReadmeApp({ port, provider, secret: [OLD], redis, keyPrefix, encryptionKeys: [NEW_KEY, OLD_KEY] })
  t.teardown(() => mended.close())
  t.equal((await lost.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 200, 'the other device was still signed in')
  // What could be ended was, this device's session too: signed in again, the user asks once more.
  t.equal((await here.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 401, 'this device was signed out with the others')
  t.equal(await signIn(here, url), 302)
  t.equal((await here.post(`${url}/auth/logout?everywhere=1`, { 'x-csrf': '1' })).status, 204, 'everywhere, once every instance has the key')
  t.equal((await lost.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 401, 'the other device is signed out')
})
