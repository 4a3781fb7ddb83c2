import t from 'tap'
import { cleanupPrefix, connectRedis, scanKeys, uniquePrefix } from '../helpers/redis.js'
import { startComposedApp } from '../helpers/readme-composition.js'
import { TestBrowser } from '../helpers/browser.js'

// The README's app with @fastify/session's defaults kept (`saveUninitialized: false` and `rolling: false` left out:
// they look like tuning). @fastify/session then saves every anonymous visitor's new, empty session: 20 anonymous
// requests wrote 20 records to Redis, silently. token-store's session store writes no new session that holds nothing,
// so anonymous visitors leave nothing behind whatever @fastify/session is told; a sign-in still works.

t.test('@fastify/session saving uninitialized sessions: anonymous requests store nothing, sign-in works', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const keyPrefix = uniquePrefix('save-uninitialized')
  cleanupPrefix(t, redis, keyPrefix)
  const { url, signIn } = await startComposedApp(t, { tokenStore: { redis, keyPrefix }, session: { saveUninitialized: true, rolling: true } })
  for (let i = 0; i < 10; i++) {
    const login = await fetch(`${url}/auth/login`, { redirect: 'manual' })
    t.equal(login.status, 302)
    const session = await fetch(`${url}/auth/session`)
    t.same(await session.json(), { authenticated: false })
  }
  t.same(await scanKeys(redis, keyPrefix), [], 'no key after 20 anonymous requests')

  const browser = new TestBrowser()
  t.equal((await signIn(browser)).status, 302, 'signed in')
  t.equal(JSON.parse((await browser.get(`${url}/auth/session`)).body).authenticated, true)
  t.equal((await browser.get(`${url}/api/user/info`, { 'x-csrf': '1' })).status, 200)
})
