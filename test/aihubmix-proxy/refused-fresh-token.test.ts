import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'

// The provider's userinfo refuses access tokens it has just issued (a resource server lagging behind the token
// service, a provider bug: the mock's `http401` fault, "refuses even a live token"). callAsUser refreshes once on a
// 401 and retries once, which bounds ONE request; nothing bounded the session: every request of the user forced one
// more refresh (and, with rotation, one more rotation of the refresh token), however fresh the refused token was. A
// page polling every few seconds kept the token endpoint busy for as long as the fault lasted. Now a token a refresh
// stored less than token-store's `forcedRefreshIntervalMs` ago is not refreshed again after a 401: the request
// answers the documented error for a 401 that a refresh did not mend (502 bad_gateway, UpstreamUnauthorizedError)
// without another refresh or retry. (First written by a reviewer as test/faults/resource-401-refresh-per-request.)

const CSRF = { 'x-csrf': '1' }

/** Two instances on Redis (a key prefix of their own) and a user signed in on the first; undefined without Redis. */
async function twoInstances (t: Parameters<typeof connectRedis>[0], name: string) {
  const redis = await connectRedis(t)
  if (redis === undefined) return undefined
  const prefix = uniquePrefix(name)
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ instances: 2, redis, tokenStore: { keyPrefix: prefix } })
  t.teardown(() => stack.close())
  const [a, b] = stack.peers.map((p) => p.url) as [string, string]
  const { browser } = await stack.login()
  return { stack, a, b, browser, headers: { ...CSRF, cookie: browser.cookieHeader(a) as string } }
}

t.test('a provider that keeps refusing fresh access tokens: not one refresh per request', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.resetCounts()
  stack.mock.setFault('userinfo', 'http401') // until cleared

  const answers: Array<[number, string]> = []
  for (let i = 0; i < 10; i++) {
    const res = await browser.get(`${stack.url}/api/user/info`, CSRF)
    answers.push([res.status, JSON.parse(res.body).error])
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.same(answers, Array(10).fill([502, 'bad_gateway']), 'each request fails (the provider refuses every token), as a 401 after a refresh is documented to')
  const counts = stack.mock.counts()
  t.equal(counts.grants.refresh_token, 1, 'one refresh: the sign-in\'s token was refused, the refreshed one too, and that one is not refreshed again')
  t.equal(counts.userinfo, 11, 'the first request: a call and a retry; each later one: one call')

  stack.mock.setFault('userinfo', null)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'the session survived')
  t.equal(stack.mock.counts().refreshTokenReuses, 0)
})

t.test('once the refused token is older than forcedRefreshIntervalMs, a 401 refreshes again', async (t) => {
  const stack = await startStack({ tokenStore: { forcedRefreshIntervalMs: 300 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.resetCounts()
  stack.mock.setFault('userinfo', 'http401')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 502)
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 502)
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'within the interval: no second refresh')
  await new Promise((resolve) => setTimeout(resolve, 350))
  stack.mock.setFault('userinfo', 'http401', { times: 1 }) // refused once more, then accepted
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'refreshed, and the new token accepted')
  t.equal(stack.mock.counts().grants.refresh_token, 2)
})

// The provider dropped every access token, and again 10 s later (a restart, a key rotation): after the second drop
// every user got 502 until forcedRefreshIntervalMs (30 s) from the first forced refresh had passed, though the
// refused tokens had worked for seconds. A token the provider accepted here, then refused, is refreshed again once
// its forced refresh is a second old; a token refused from its first use still waits the whole interval (above).
// `uses`: calls made with the forced set before the second drop; with none, the only call it worked for was the
// retry right after its refresh (the object later reads hand out must be the one that retry was made with).
for (const [backend, uses] of [['memory', 3], ['redis', 3], ['memory', 0]] as const) {
  t.test(`the provider drops its tokens twice within forcedRefreshIntervalMs: the second drop is refreshed too, as tokens that worked [${backend}, ${uses} more calls]`, async (t) => {
    let stack
    if (backend === 'memory') stack = await startStack()
    else {
      const redis = await connectRedis(t)
      if (redis === undefined) return
      const prefix = uniquePrefix('dropped-twice')
      cleanupPrefix(t, redis, prefix)
      stack = await startStack({ redis, tokenStore: { keyPrefix: prefix } })
    }
    t.teardown(() => stack.close())
    const { browser } = await stack.login()
    stack.mock.resetCounts()
    stack.mock.expireAccessTokens()
    t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'the first drop: refreshed')
    for (let i = 0; i < uses; i++) t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'the forced set works')
    t.equal(stack.mock.counts().grants.refresh_token, 1)
    await new Promise((resolve) => setTimeout(resolve, 1100))
    stack.mock.expireAccessTokens()
    const again = await browser.get(`${stack.url}/api/user/info`, CSRF)
    t.equal(again.status, 200, `the second drop, 1 s later: refreshed too (${again.status} ${again.status === 200 ? '' : again.body})`)
    t.equal(stack.mock.counts().grants.refresh_token, 2, 'one refresh per drop')
    t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
    t.equal(stack.mock.counts().grants.refresh_token, 2)
    t.equal(stack.mock.counts().refreshTokenReuses, 0)
  })
}

// With staleAccepted alone, an endpoint that refuses a token another endpoint accepts (a 401 for a scope the token
// lacks) cost one refresh, and one rotation, per call once a second: the token had worked, on the other endpoint. A
// set a refresh after a 401 gave that is refused at once too is held back the whole interval, as before.
t.test('an endpoint that refuses tokens another accepts: one refresh, not one a second', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.resetCounts()
  stack.mock.setFault('topup', 'http401') // until cleared; userinfo answers
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) {
    statuses.push((await browser.get(`${stack.url}/api/user/info`, CSRF)).status)
    statuses.push((await browser.get(`${stack.url}/api/user/topup`, CSRF)).status)
    await new Promise((resolve) => setTimeout(resolve, 1100))
  }
  t.same(statuses, [200, 502, 200, 502, 200, 502], 'userinfo works, the top-up is refused')
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'one refresh: the first 401\'s')
  t.equal(stack.mock.counts().refreshTokenReuses, 0)
})

// Only the process whose retry worked knows a set worked: one that merely worked on some call (the other instance's
// userinfo, or the same instance's after the set fell out of the opened-set cache) must not be taken for one the
// provider dropped. Taken so, the endpoint refusing it cost one refresh a second (found by the diff review: 6
// refreshes in 6 s across two instances, 5 in 5 s with openedCacheSize 1).
t.test('an endpoint that refuses tokens another accepts, on two instances: one refresh', async (t) => {
  const signedIn = await twoInstances(t, 'refused-topup')
  if (signedIn === undefined) return
  const { stack, a, b, browser, headers } = signedIn
  stack.mock.resetCounts()
  stack.mock.setFault('topup', 'http401')
  const statuses: string[] = []
  for (let i = 0; i < 4; i++) {
    const [name, at] = i % 2 === 0 ? ['A', a] : ['B', b]
    statuses.push(`${name} ${(await browser.get(`${at}/api/user/info`, headers)).status}`)
    statuses.push(`${name} ${(await browser.get(`${at}/api/user/topup`, headers)).status}`)
    await new Promise((resolve) => setTimeout(resolve, 1100))
  }
  t.same(statuses, ['A 200', 'A 502', 'B 200', 'B 502', 'A 200', 'A 502', 'B 200', 'B 502'])
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'one refresh: the first 401\'s, whichever instance answers')
  t.equal(stack.mock.counts().refreshTokenReuses, 0)
})

t.test('an endpoint that refuses tokens another accepts, the session falling out of the opened-set cache: one refresh', async (t) => {
  const stack = await startStack({ tokenStore: { openedCacheSize: 1 } })
  t.teardown(() => stack.close())
  const { browser: x } = await stack.login()
  const { browser: y } = await stack.login()
  stack.mock.resetCounts()
  stack.mock.setFault('topup', 'http401')
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) {
    statuses.push((await y.get(`${stack.url}/api/user/info`, CSRF)).status) // takes the cache's one place
    statuses.push((await x.get(`${stack.url}/api/user/info`, CSRF)).status)
    statuses.push((await x.get(`${stack.url}/api/user/topup`, CSRF)).status)
    await new Promise((resolve) => setTimeout(resolve, 1100))
  }
  t.same(statuses, [200, 200, 502, 200, 200, 502, 200, 200, 502])
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'one refresh: the first 401\'s')
})

t.test('across instances: a token another instance refreshed moments ago is not refreshed again', async (t) => {
  const signedIn = await twoInstances(t, 'refused-fresh')
  if (signedIn === undefined) return
  const { stack, a, b, browser, headers } = signedIn
  stack.mock.resetCounts()
  stack.mock.setFault('userinfo', 'http401')
  t.equal((await browser.get(`${a}/api/user/info`, headers)).status, 502, 'on A: refreshed once, refused again')
  t.equal(stack.mock.counts().grants.refresh_token, 1)
  for (let i = 0; i < 3; i++) t.equal((await browser.get(`${b}/api/user/info`, headers)).status, 502, 'on B')
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'B read when the set was refreshed from the store: no refresh')
  stack.mock.setFault('userinfo', null)
  t.equal((await browser.get(`${b}/api/user/info`, headers)).status, 200, 'the session survived')
})
