import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import { connectRedis, uniquePrefix, cleanupPrefix, scanKeys, readStoredKeys } from '../helpers/redis.js'

// The security rules for starting a login.

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

t.test('anonymous sign-in starts write nothing to Redis: no session, no login record', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('anon')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ redis, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  for (let i = 0; i < 30; i++) {
    const res = await new TestBrowser().get(`${stack.url}/auth/login${i % 2 === 0 ? '?mode=popup' : ''}`)
    t.equal(res.status, 302)
  }
  t.same(await scanKeys(redis, prefix), [], 'not one key')
  // A finished sign-in writes its session, its token set, its link to its user, its user's index and the
  // used-state marker, each with a TTL.
  await stack.login()
  const { stored, ended } = await readStoredKeys(redis, prefix)
  // What each key is, without its ids: the list names any extra or missing kind of key.
  const kindOf = (key: string): string => key.slice(prefix.length).replace(/^\{(u:)?[^}]*\}/, (_, user) => user === undefined ? '{sid}' : '{user}').replace(/^(rec:login-used:).*/, '$1…')
  t.same(stored.map(({ key }) => kindOf(key)).sort(), ['rec:login-used:…', '{sid}:sess', '{sid}:tok', '{sid}:user', '{user}:sessions'].sort(), 'the keys of one sign-in')
  t.same(ended, [], 'no key ended between the scan and its read')
  for (const { key, ttl } of stored) {
    const limit = key.includes(':rec:login-used:') ? 10 * 60 * 1000 : 30 * 24 * 3600 * 1000
    t.ok(ttl > 0 && ttl <= limit, `${kindOf(key)}: TTL ${ttl} ms`)
  }
})
