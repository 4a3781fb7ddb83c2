import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import { connectRedis, uniquePrefix, cleanupPrefix, scanKeys } from '../helpers/redis.js'

// SECURITY.md "Starting a login".

t.test('state and PKCE values are fresh, 256-bit, base64url, per login', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const states = new Set<string>()
  const challenges = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const res = await browser.get(`${stack.url}/auth/login`)
    const url = new URL(TestBrowser.location(res))
    const state = url.searchParams.get('state') as string
    const challenge = url.searchParams.get('code_challenge') as string
    t.match(state, /^[A-Za-z0-9_-]{43}$/, '43 base64url characters = 256 bits')
    t.equal(Buffer.from(state, 'base64url').length, 32)
    t.equal(url.searchParams.get('code_challenge_method'), 'S256', 'S256 only')
    states.add(state)
    challenges.add(challenge)
  }
  t.equal(states.size, 20, 'every state differs')
  t.equal(challenges.size, 20, 'every PKCE verifier differs')
})

t.test('a login state expires (its life is configurable, 10 minutes by default)', async (t) => {
  const stack = await startStack({ oauth: { stateTtlMs: 1000 } })
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  await new Promise((resolve) => setTimeout(resolve, 1200))
  const res = await browser.get(TestBrowser.location(back))
  t.equal(res.headers.location, '/?error=invalid_state')
  t.equal(stack.mock.counts().grants.authorization_code, 0, 'no token call')
})

t.test('anonymous traffic to /auth/login cannot fill Redis: every record has a TTL', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('anon')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ redis, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  for (let i = 0; i < 30; i++) await new TestBrowser().get(`${stack.url}/auth/login`)
  const keys = await scanKeys(redis, prefix)
  t.ok(keys.length >= 30, `${keys.length} keys`)
  let states = 0
  for (const key of keys) {
    const ttl = await redis.pttl(key)
    // Login states live 10 minutes; a pre-login session lives as long as the session cookie (7 days in the example).
    const limit = key.includes('login:') ? 10 * 60 * 1000 : 7 * 24 * 3600 * 1000
    if (key.includes('login:')) states++
    t.ok(ttl > 0 && ttl <= limit, `${key}: TTL ${ttl} ms`)
  }
  t.equal(states, 30, 'one state record per login')
})
