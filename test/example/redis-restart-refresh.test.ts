import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { redisServerOrSkip, startRedisServer, until } from '../helpers/redis-server.js'
import { freePort } from '../helpers/free-port.js'

// Issue 14, a short chaos case: two example instances on a private redis-server that persists (AOF), a provider
// that rotates refresh tokens and revokes the grant when an old one comes back. Redis goes down while refreshes
// are on their way to the provider; when the provider answers, the rotated sets cannot be stored.

const CSRF = { 'x-csrf': '1' }
const USERS = 8

t.test('Redis restarted while refreshes are in flight: nobody is logged out, no refresh token is used twice', async (t) => {
  const binary = redisServerOrSkip(t, 'the Redis restart during refreshes')
  if (binary === undefined) return
  const redis = await startRedisServer(binary, await freePort())
  t.teardown(() => redis.close())
  const stack = await startStack({ instances: 2, env: { REDIS_URL: redis.url }, mock: { accessTokenTtlSeconds: 30 } })
  t.teardown(() => stack.close())
  const [a, b] = stack.peers.map((p) => ({ url: p.url })) as [{ url: string }, { url: string }]
  const users: Array<{ cookie: string, get: (url: string) => Promise<{ status: number, body: string }> }> = []
  for (let i = 0; i < USERS; i++) {
    const { browser } = await stack.login()
    const cookie = browser.cookieHeader(a.url) as string
    users.push({ cookie, get: (url) => browser.get(`${url}/api/user/info`, { ...CSRF, cookie }) })
  }
  stack.mock.resetCounts()

  // Every access token dies; each user's next request refreshes (after the provider's 401), half on each instance.
  stack.mock.expireAccessTokens()
  stack.mock.setLatency('token', 500)
  const during = Promise.all(users.map((user, i) => user.get(i % 2 === 0 ? a.url : b.url)))
  await until(async () => stack.mock.counts().token === USERS, 'every refresh to reach the provider')
  await redis.stop() // data kept: appendonly, appendfsync always
  const answered = await during
  t.same(answered.map((r) => r.status), Array(USERS).fill(200), 'answered from the rotated sets each instance keeps')
  stack.mock.setLatency('token', 0)

  const whileDown = await users[0]?.get(a.url)
  t.equal(whileDown?.status, 503, 'while Redis is down: 503 (the session cannot be read)')
  await redis.start()

  for (const [i, user] of users.entries()) {
    for (const peer of [a, b]) {
      let answer = await user.get(peer.url)
      // Until the instance has reconnected: 503, nothing else.
      while (answer.status === 503) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        answer = await user.get(peer.url)
      }
      t.equal(answer.status, 200, `user ${i} is still signed in on ${peer === a ? 'A' : 'B'}`)
    }
  }
  const counts = stack.mock.counts()
  t.equal(counts.refreshTokenReuses, 0, 'no refresh token was used twice')
  t.equal(counts.grants.refresh_token, USERS, 'one refresh per user')
})
