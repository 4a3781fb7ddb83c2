import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'
import { setExpiry, startStack, findLeaks, type Stack } from '../helpers/stack.js'
import { startProviderRelay, type ProviderRelay } from '../helpers/provider-relay.js'

// A token answer's expires_in never refuses the answer. By the time the provider answers a refresh it has rotated the
// refresh token: refusing the answer for an odd expires_in (0, -30, "3600") threw the new refresh token away, the
// next refresh presented the rotated-out one, and a provider that revokes on reuse signed the user out. Missing or
// unusable: the documented 7200 s; below the floor (5 s): the floor, so that a token is not refreshed on every
// request. The same holds for the answer's other details: a refresh_token of null or "" (a backend's nil: no rotation
// this time) is none sent, and a scope that is no string of scopes (null, a list) reads as the scopes asked for. Only
// what the set cannot do without refuses the answer: access_token, token_type, a refresh_token of another type.

const CSRF = { 'x-csrf': '1' }
const SECOND = 1000
const TEN_YEARS = 10 * 365 * 24 * 3600 * SECOND

/** A token endpoint on 127.0.0.1 port 0 that answers `answer.current` to every request. */
async function tokenEndpoint (t: Test, answer: { current: unknown }): Promise<string> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer.current)) })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function clientFor (t: Test, baseUrl: string): ReturnType<typeof createAihubmixClient> {
  const client = createAihubmixClient(resolveOptions({ baseUrl, clientId: 'client', clientSecret: 'secret', redirectUri: 'http://127.0.0.1/auth/callback', timeoutMs: 5000 }))
  t.teardown(() => client.close())
  return client
}

const DOCUMENTED = { access_token: 'at_new', token_type: 'Bearer', expires_in: 7200, refresh_token: 'rt_rotated', scope: 'profile balance' }

t.test('expires_in as the provider may send it: the answer is kept, its life bounded', async (t) => {
  const answer: { current: unknown } = { current: DOCUMENTED }
  const client = clientFor(t, await tokenEndpoint(t, answer))
  const cases: Array<[string, unknown, number]> = [
    ['7200 (documented)', 7200, 7200 * SECOND],
    ['missing', undefined, 7200 * SECOND],
    ['"3600" (a numeric string)', '3600', 3600 * SECOND],
    ['" 90.5" is no number: default', ' 90.5', 7200 * SECOND],
    ['"90.5"', '90.5', 90.5 * SECOND],
    ['30 (short, but real)', 30, 30 * SECOND],
    ['0', 0, 5 * SECOND],
    ['-30', -30, 5 * SECOND],
    ['"-30"', '-30', 5 * SECOND],
    ['0.001 (every request refreshed)', 0.001, 5 * SECOND],
    ['4.9', 4.9, 5 * SECOND],
    ['null', null, 7200 * SECOND],
    ['"soon"', 'soon', 7200 * SECOND],
    ['an object', { seconds: 60 }, 7200 * SECOND],
    ['1e12 (absurdly long)', 1e12, TEN_YEARS]
  ]
  for (const [name, expiresIn, life] of cases) {
    const body: Record<string, unknown> = { ...DOCUMENTED, expires_in: expiresIn }
    if (expiresIn === undefined) delete body.expires_in
    answer.current = body
    for (const grant of ['refresh', 'code exchange'] as const) {
      const set = grant === 'refresh'
        ? await client.refresh('rt_old')
        : await client.exchangeCode({ code: 'code', codeVerifier: 'v'.repeat(43) })
      t.equal(set.refreshToken, 'rt_rotated', `${name}, ${grant}: the rotated refresh token is kept`)
      t.equal(set.accessToken, 'at_new', `${name}, ${grant}: the new access token`)
      t.equal(set.expiresAt - set.obtainedAt, life, `${name}, ${grant}: life ${life / SECOND} s`)
    }
  }
  // In the provider's envelope too.
  answer.current = { success: true, message: 'ok', data: { ...DOCUMENTED, expires_in: '600' } }
  const set = await client.refresh('rt_old')
  t.equal(set.expiresAt - set.obtainedAt, 600 * SECOND, 'a numeric string inside the envelope')
})

t.test('a null or empty refresh_token is none sent, a scope that is no string reads as the scopes asked for', async (t) => {
  const answer: { current: unknown } = { current: DOCUMENTED }
  const client = clientFor(t, await tokenEndpoint(t, answer))
  const cases: Array<[string, Record<string, unknown>, string | undefined, string[]]> = [
    ['refresh_token null', { ...DOCUMENTED, refresh_token: null }, undefined, ['profile', 'balance']],
    ['refresh_token ""', { ...DOCUMENTED, refresh_token: '' }, undefined, ['profile', 'balance']],
    ['scope null', { ...DOCUMENTED, scope: null }, 'rt_rotated', ['profile', 'balance']],
    ['scope a list', { ...DOCUMENTED, scope: ['profile'] }, 'rt_rotated', ['profile', 'balance']],
    ['scope over 1024 characters', { ...DOCUMENTED, scope: 'x'.repeat(1025) }, 'rt_rotated', ['profile', 'balance']],
    ['scope "profile" (granted less)', { ...DOCUMENTED, scope: 'profile' }, 'rt_rotated', ['profile']]
  ]
  for (const [name, body, refreshToken, scope] of cases) {
    answer.current = body
    for (const grant of ['refresh', 'code exchange'] as const) {
      const set = grant === 'refresh'
        ? await client.refresh('rt_old')
        : await client.exchangeCode({ code: 'code', codeVerifier: 'v'.repeat(43) })
      t.equal(set.accessToken, 'at_new', `${name}, ${grant}: kept`)
      t.equal(set.refreshToken, refreshToken, `${name}, ${grant}: refresh token ${String(refreshToken)}`)
      t.same(set.scope, scope, `${name}, ${grant}: scope ${scope.join(' ')}`)
    }
  }
})

t.test('an answer the proxy cannot use is still refused, whatever its expires_in', async (t) => {
  // A guard: these were refused before the lenient expires_in and still are.
  const answer: { current: unknown } = { current: DOCUMENTED }
  const client = clientFor(t, await tokenEndpoint(t, answer))
  const { access_token: _at, ...noAccessToken } = DOCUMENTED
  const cases: Array<[string, Record<string, unknown>]> = [
    ['no access_token', noAccessToken],
    ['an empty access_token', { ...DOCUMENTED, access_token: '' }],
    ['a numeric access_token', { ...DOCUMENTED, access_token: 123 }],
    ['token_type mac', { ...DOCUMENTED, token_type: 'mac' }],
    ['no token_type', { ...DOCUMENTED, token_type: undefined }],
    ['a refresh_token that is not a string', { ...DOCUMENTED, refresh_token: false }],
    ['a numeric refresh_token', { ...DOCUMENTED, refresh_token: 12345 }]
  ]
  for (const [name, body] of cases) {
    for (const expiresIn of [7200, '3600', 0]) {
      answer.current = { ...body, expires_in: expiresIn }
      await t.rejects(client.refresh('rt_old'), { code: 'FST_AIHUBMIX_UPSTREAM_INVALID_RESPONSE' }, `${name}, expires_in ${JSON.stringify(expiresIn)}: refresh refused`)
      await t.rejects(client.exchangeCode({ code: 'code', codeVerifier: 'v'.repeat(43) }), { code: 'FST_AIHUBMIX_UPSTREAM_INVALID_RESPONSE' }, `${name}, expires_in ${JSON.stringify(expiresIn)}: code exchange refused`)
    }
  }
})

/** The example app against the mock provider, through a relay that can rewrite the token endpoint's answers. */
async function relayedStack (t: Test): Promise<{ stack: Stack, relay: ProviderRelay }> {
  const relay = await startProviderRelay()
  t.teardown(() => relay.close())
  const stack = await startStack({ proxy: { baseUrl: relay.url } })
  t.teardown(() => stack.close())
  relay.target = stack.mock.url
  return { stack, relay }
}

for (const expiresIn of [0, -30, '3600']) {
  t.test(`a refresh answered with expires_in ${JSON.stringify(expiresIn)} keeps the rotated refresh token (mock: rotation on, reuse revokes)`, async (t) => {
    const { stack, relay } = await relayedStack(t)
    const { browser } = await stack.login()
    stack.mock.resetCounts()
    await setExpiry(stack, browser, -SECOND)
    relay.tokenAnswer = (answer) => ({ ...answer, expires_in: expiresIn })
    const refreshed = await browser.get(`${stack.url}/api/user/info`, CSRF)
    relay.tokenAnswer = null
    t.equal(refreshed.status, 200, 'the request that refreshed is answered')
    t.equal(stack.mock.counts().grants.refresh_token, 1)
    const rotated = relay.tokenAnswers.at(-1)?.refresh_token
    t.type(rotated, 'string', 'the provider rotated the refresh token')
    const set = await stack.app.tokenStore.get(stack.sessionIdOf(browser))
    t.equal(set?.refreshToken, rotated, 'and the session keeps the rotated one')

    t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'the next request')
    t.equal(stack.mock.counts().grants.refresh_token, 1, 'is not refreshed again')

    // The provider is normal again; the next refresh presents the rotated token.
    await setExpiry(stack, browser, -SECOND)
    const again = await browser.get(`${stack.url}/api/user/info`, CSRF)
    t.equal(again.status, 200, 'still signed in at the next refresh')
    t.equal(stack.mock.counts().grants.refresh_token, 2)
    t.equal(stack.mock.counts().refreshTokenReuses, 0, 'no rotated-out refresh token presented')
    t.same(findLeaks(stack.secrets(), [...browser.transcript(stack.url), ...stack.logs]), [], 'no token in the logs or the answers')
  })
}

t.test('a token given a life below the floor is not refreshed on every request; a provider 401 still refreshes once', async (t) => {
  const { stack, relay } = await relayedStack(t)
  const { browser } = await stack.login()
  stack.mock.resetCounts()
  await setExpiry(stack, browser, -SECOND)
  relay.tokenAnswer = (answer) => ({ ...answer, expires_in: 0.001 })
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  relay.tokenAnswer = null
  const set = await stack.app.tokenStore.get(stack.sessionIdOf(browser))
  t.equal(set !== null && set.expiresAt - set.obtainedAt, 5 * SECOND, 'kept with the floor\'s 5 s life')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'the next request did not refresh')

  // The token really expired sooner than the proxy believes: the provider answers 401, the proxy refreshes once and
  // retries once (call-as-user.ts).
  stack.mock.resetCounts()
  stack.mock.expireAccessTokens()
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'answered after the 401')
  t.equal(stack.mock.counts().userinfo, 2, 'one refused call, one retry')
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'one refresh')
  t.equal(stack.mock.counts().refreshTokenReuses, 0)
})

t.test('a sign-in whose code exchange answers expires_in as a string succeeds', async (t) => {
  const { stack, relay } = await relayedStack(t)
  relay.tokenAnswer = (answer) => ({ ...answer, expires_in: String(answer.expires_in) })
  const { browser, final } = await stack.login()
  t.equal(final.headers.location, '/', 'back to the app, no error')
  const session = JSON.parse((await browser.get(`${stack.url}/auth/session`)).body)
  t.equal(session.authenticated, true, 'signed in')
  t.equal(relay.tokenAnswers.length, 1, 'the code exchange went through the relay')
  const set = await stack.app.tokenStore.get(stack.sessionIdOf(browser))
  t.equal(set !== null && set.expiresAt - set.obtainedAt, 7200 * SECOND, 'the documented life, read from the string')
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200)
})

t.test('a refresh answered with "scope": null keeps the rotated refresh token; the user stays signed in', async (t) => {
  const { stack, relay } = await relayedStack(t)
  const { browser } = await stack.login()
  await setExpiry(stack, browser, -1000)
  relay.tokenAnswer = (answer) => ({ ...answer, scope: null })
  const first = await browser.get(`${stack.url}/api/user/info`, CSRF)
  relay.tokenAnswer = null
  t.equal(first.status, 200, 'the request that refreshed is answered (got ' + first.status + ' ' + first.body + ')')
  const set = await stack.app.tokenStore.get(stack.sessionIdOf(browser))
  t.equal(set?.refreshToken, relay.tokenAnswers.at(-1)?.refresh_token, 'the session keeps the refresh token the provider rotated to')
  // The provider answers as documented again; the next refresh presents the refresh token kept.
  await setExpiry(stack, browser, -1000)
  const next = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(next.status, 200, 'still signed in at the next refresh (got ' + next.status + ' ' + next.body + ')')
  t.equal(stack.mock.counts().refreshTokenReuses, 0, 'no rotated-out refresh token presented')
})

t.test('a refresh answered with "refresh_token": null (no rotation this time) is a success', async (t) => {
  const { stack, relay } = await relayedStack(t)
  const { browser } = await stack.login()
  stack.mock.setRotation({ rotate: false })
  const before = (await stack.app.tokenStore.get(stack.sessionIdOf(browser)))?.refreshToken
  await setExpiry(stack, browser, -1000)
  relay.tokenAnswer = (answer) => ({ ...answer, refresh_token: null })
  const res = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(res.status, 200, 'answered (got ' + res.status + ' ' + res.body + ')')
  const set = await stack.app.tokenStore.get(stack.sessionIdOf(browser))
  t.equal(set?.refreshToken, before, 'the set keeps the refresh token it had')
  t.ok((set?.expiresAt ?? 0) > Date.now(), 'with the new access token\'s life')
})
