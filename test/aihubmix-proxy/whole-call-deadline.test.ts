import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import Fastify from 'fastify'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { aihubmixProxy, publicErrorOf } from '@fastify-aihubmix/aihubmix-proxy'
import { createAihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'
import { KEY_A, sid, tokenSet } from '../helpers/token-store.js'
import { startStack, findLeaks } from '../helpers/stack.js'
import { startProviderRelay } from '../helpers/provider-relay.js'

// timeoutMs is a deadline for the whole call. undici's headersTimeout and bodyTimeout are idle timers: a provider
// that sent one byte every 100 ms never tripped them, and kept a refresh (with every request joined to it, and the
// refresh lock it renewed) waiting for as long as it trickled. Each case below trickles for ever: settling at all
// is the point; HANG_BOUND_MS only tells a hang (the old behaviour) from a timeout, with a wide margin. A refresh's
// answer is read for `refreshGraceMs` more after its callers got the 504 (the provider may have rotated the refresh
// token already: refresh-late-answer.test.ts); here that grace is TIMEOUT_MS, so that it ends within the bound too.

const CSRF = { 'x-csrf': '1' }
const TIMEOUT_MS = 300
const HANG_BOUND_MS = 3000

interface Trickler {
  url: string
  /** Requests seen, and those still open. */
  requests: number
  open: number
  /** Closes every connection (a teardown registered after the clients runs before theirs, which wait for their calls). */
  cut: () => void
}

/** A provider on 127.0.0.1 port 0 whose every answer is a 200 that sends one space every 100 ms and never ends. */
async function trickler (t: Test, answer?: (req: IncomingMessage, res: ServerResponse) => boolean): Promise<Trickler> {
  const state: Trickler = { url: '', requests: 0, open: 0, cut: () => { server.closeAllConnections() } }
  const server = createServer((req, res) => {
    state.requests++
    req.resume()
    if (answer?.(req, res) === true) return
    state.open++
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{')
    const timer = setInterval(() => { res.write(' ') }, 100)
    res.on('close', () => {
      state.open--
      clearInterval(timer)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return state
}

/** How `promise` settled, or 'still waiting' after HANG_BOUND_MS. */
function settled (promise: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise((resolve) => { timer = setTimeout(() => resolve('still waiting'), HANG_BOUND_MS) })
  return Promise.race([promise.then((value) => ({ value }), (err: unknown) => err), bound]).finally(() => clearTimeout(timer))
}

/** Whether `check` came true within HANG_BOUND_MS. */
function until (check: () => boolean): Promise<boolean> {
  const end = Date.now() + HANG_BOUND_MS
  return new Promise((resolve) => {
    const poll = (): void => {
      if (check()) resolve(true)
      else if (Date.now() > end) resolve(false)
      else setTimeout(poll, 10)
    }
    poll()
  })
}

const timeoutError = { code: 'FST_AIHUBMIX_UPSTREAM_TIMEOUT', statusCode: 504 }

t.test('every provider call that trickles fails with UpstreamTimeoutError (504), and its request is torn down', async (t) => {
  const provider = await trickler(t)
  const agent = new Agent()
  t.teardown(() => agent.close())
  const calls: Array<[string, () => Promise<unknown>]> = []
  for (const [dispatcher, own] of [['the plugin\'s own Pool', true], ['a dispatcher of the caller\'s', false]] as const) {
    const client = createAihubmixClient(resolveOptions({
      baseUrl: provider.url,
      clientId: 'client',
      clientSecret: 'secret',
      redirectUri: 'http://127.0.0.1/auth/callback',
      revocationUrl: `${provider.url}/revoke`,
      timeoutMs: TIMEOUT_MS,
      refreshGraceMs: TIMEOUT_MS,
      ...(own ? {} : { dispatcher: agent })
    }))
    t.teardown(() => client.close())
    t.teardown(() => { provider.cut() })
    calls.push(
      [`${dispatcher}, refresh`, () => client.refresh('rt')],
      [`${dispatcher}, code exchange`, () => client.exchangeCode({ code: 'code', codeVerifier: 'v'.repeat(43) })],
      [`${dispatcher}, userinfo`, () => client.userinfo('at')],
      [`${dispatcher}, top-up`, () => client.topup('at')],
      [`${dispatcher}, revocation`, () => client.revoke('rt', 'refresh_token')]
    )
  }
  const results = await Promise.all(calls.map(([, call]) => settled(call())))
  for (const [i, [name]] of calls.entries()) {
    t.match(results[i], timeoutError, `${name}: UpstreamTimeoutError`)
    t.match(publicErrorOf(results[i]), { statusCode: 504, error: 'upstream_timeout' }, `${name}: answers 504`)
  }
  t.ok(await until(() => provider.open === 0), 'every trickling request was closed')
})

t.test('a refresh that trickles: every request joined to it settles, and the session refreshes once the provider answers', async (t) => {
  let trickle = true
  const provider = await trickler(t, (_req, res) => {
    if (trickle) return false
    res.writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ access_token: 'at_new', token_type: 'Bearer', expires_in: 7200, refresh_token: 'rt_new', scope: 'profile balance' }))
    return true
  })
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(tokenStore, { encryptionKeys: KEY_A, refreshBackoffMs: 0 })
  await app.register(aihubmixProxy, { baseUrl: provider.url, clientId: 'c', clientSecret: 's', redirectUri: 'http://127.0.0.1/cb', routes: false, timeoutMs: TIMEOUT_MS, refreshGraceMs: TIMEOUT_MS })
  await app.ready()
  t.teardown(() => { provider.cut() })
  const id = sid()
  // Expired a second ago, after a 2-hour life: no request can be answered before the refresh.
  await app.tokenStore.save(id, tokenSet({ expiresInMs: -1000, obtainedAt: Date.now() - 7_201_000 }))
  const joined = await Promise.all([1, 2, 3].map(() => settled(app.tokenStore.getFresh(id, app.aihubmix.refresh))))
  t.ok(provider.requests <= 1, 'one refresh at most, shared (under load the deadline may pass before it is sent)')
  for (const [i, result] of joined.entries()) t.match(result, timeoutError, `request ${i + 1}: the refresh's timeout`)
  // Its answer is still read for refreshGraceMs; then the call is torn down, and the lock let go.
  t.ok(await until(() => provider.open === 0), 'the trickling refresh was closed once its grace was over')
  trickle = false
  const fresh = await settled(app.tokenStore.getFresh(id, app.aihubmix.refresh))
  t.match(fresh, { value: { accessToken: 'at_new', refreshToken: 'rt_new' } }, 'the lock was let go: the next refresh ran')
})

t.test('through the proxy routes: a trickling userinfo or token endpoint answers 504 upstream_timeout, and the session stays', async (t) => {
  const relay = await startProviderRelay()
  t.teardown(() => relay.close())
  const stack = await startStack({ proxy: { baseUrl: relay.url, timeoutMs: TIMEOUT_MS, refreshGraceMs: TIMEOUT_MS }, tokenStore: { refreshBackoffMs: 0 } })
  t.teardown(() => stack.close())
  t.teardown(() => { relay.trickle.clear(); relay.cut() })
  relay.target = stack.mock.url
  const { browser } = await stack.login()

  relay.trickle.add('userinfo').add('topup')
  const [info, topup] = await Promise.all([
    settled(browser.get(`${stack.url}/api/user/info`, CSRF)),
    settled(browser.get(`${stack.url}/api/user/topup`, CSRF))
  ])
  t.match(info, { value: { status: 504, body: JSON.stringify({ error: 'upstream_timeout', message: 'AIHubMix did not answer in time.' }) } }, 'userinfo: 504 upstream_timeout')
  t.match(topup, { value: { status: 504 } }, 'top-up: 504')
  relay.trickle.clear()
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'then answered again')

  // The token endpoint trickles while the session needs a refresh: five requests of the page, all joined to it.
  const id = stack.sessionIdOf(browser)
  const set = await stack.app.tokenStore.get(id)
  if (set === null) throw new Error('no token set')
  await stack.app.tokenStore.save(id, { ...set, expiresAt: Date.now() - 1000, obtainedAt: Date.now() - 1000 - 7_200_000 })
  relay.trickle.add('token')
  const before = relay.trickled
  const page = await Promise.all(Array.from({ length: 5 }, () => settled(browser.get(`${stack.url}/api/user/info`, CSRF))))
  t.same(page.map((r) => (r as { value?: { status: number } }).value?.status), [504, 504, 504, 504, 504], 'every joined request: 504')
  t.ok(relay.trickled - before <= 1, 'one refresh at most, shared by the five')
  relay.trickle.clear()
  // While the trickling answer is still read (refreshGraceMs), no second refresh: 503, then 200 once it is over.
  let next = await browser.get(`${stack.url}/api/user/info`, CSRF)
  const end = Date.now() + HANG_BOUND_MS
  while (next.status === 503 && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    next = await browser.get(`${stack.url}/api/user/info`, CSRF)
  }
  t.equal(next.status, 200, 'refreshed once the provider answers: still signed in')
  t.same(findLeaks(stack.secrets(), [...browser.transcript(stack.url), ...stack.logs]), [])
})

t.test('a call that completes leaves no deadline timer behind', async (t) => {
  // A guard for the hot path: the deadline's timer is cleared when the call settles, whichever way.
  const userinfo = JSON.stringify({ id: 1, username: 'u' })
  const server = createServer((req, res) => {
    req.resume()
    if (req.url?.endsWith('/userinfo') === true) res.writeHead(200, { 'content-type': 'application/json' }).end(userinfo)
    else res.writeHead(500).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const client = createAihubmixClient(resolveOptions({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clientId: 'client',
    clientSecret: 'secret',
    redirectUri: 'http://127.0.0.1/auth/callback',
    timeoutMs: 600_000
  }))
  t.teardown(() => client.close())
  const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  await client.userinfo('at') // the pool's connection and its own timers are made
  const before = timers()
  await Promise.all(Array.from({ length: 50 }, () => client.userinfo('at')))
  await t.rejects(client.topup('at'), { code: 'FST_AIHUBMIX_UPSTREAM_STATUS' })
  t.equal(timers(), before, 'as many timers as before fifty answers and a failure')
})
