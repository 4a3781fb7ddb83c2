import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'
import { setExpiry, startStack, findLeaks, type Stack, type StackOptions } from '../helpers/stack.js'
import type { TestBrowser } from '../helpers/browser.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'

// A token endpoint slower than aihubmix-proxy's `timeoutMs`, once. The provider (rotation on, reuse of a rotated
// refresh token revokes the grant: the mock's defaults, RFC 9700's advice) processes the refresh it was sent: it
// rotates the refresh token and answers, only later than the deadline. The requests waiting on that refresh must be
// answered on time (504, as documented), but the call itself must not be torn down: its answer is the only copy of
// the new refresh token. Before `refreshGraceMs`, the app threw it away and kept the old, now dead, refresh token;
// the session's next refresh presented it, the provider refused it and revoked the grant: one slow answer signed
// the user out. (First written by a reviewer as test/faults/slow-token-answer-lost-rotation.test.ts.)

const CSRF = { 'x-csrf': '1' }
const TIMEOUT_MS = 300

interface Relay { url: string, target: string, delayTokenMs: number, processed: number }

/** A relay in front of the mock: passes everything on; token answers are held `delayTokenMs` before they go back. */
async function slowRelay (t: Test): Promise<Relay> {
  const state: Relay = { url: '', target: '', delayTokenMs: 0, processed: 0 }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers[k] = v
      const body = Buffer.concat(chunks)
      request(state.target + (req.url ?? '/'), { method: req.method as 'GET' | 'POST', headers, ...(body.length === 0 ? {} : { body }) })
        .then(async (up) => {
          const text = await up.body.text()
          const isToken = (req.url ?? '').includes('/api/oauth2/token')
          if (isToken) state.processed++ // the provider has answered (and rotated)
          if (isToken && state.delayTokenMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayTokenMs))
          if (res.destroyed) return
          const out: Record<string, string | string[]> = {}
          for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(k)) out[k] = v
          res.writeHead(up.statusCode, out).end(text)
        })
        .catch(() => { res.destroy() })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return state
}

async function signedInBehindRelay (t: Test, proxy: StackOptions['proxy'] = {}): Promise<{ relay: Relay, stack: Stack, browser: TestBrowser }> {
  const relay = await slowRelay(t)
  const stack = await startStack({ proxy: { baseUrl: relay.url, timeoutMs: TIMEOUT_MS, ...proxy }, tokenStore: { refreshBackoffMs: 200 } })
  t.teardown(() => stack.close())
  relay.target = stack.mock.url
  const { browser } = await stack.login()
  stack.mock.resetCounts()
  relay.processed = 0
  return { relay, stack, browser }
}

t.test('one token answer later than timeoutMs: 504 on time, and the late answer is stored; the user stays signed in', async (t) => {
  const { relay, stack, browser } = await signedInBehindRelay(t)
  await setExpiry(stack, browser, -1000)

  // The provider processes this refresh at once (and rotates), but its answer arrives after the deadline.
  relay.delayTokenMs = TIMEOUT_MS * 3
  const started = Date.now()
  const slow = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.equal(slow.status, 504, 'the request waiting on the refresh: 504, as documented')
  const answeredAt = Date.now()
  t.ok(answeredAt - started < TIMEOUT_MS * 3, 'answered at the deadline, not when the answer came')
  t.equal(relay.processed, 1, 'the provider processed that refresh (rotated the refresh token)')
  relay.delayTokenMs = 0

  // While the answer is on its way: no second refresh (it would present the rotated-out token); 503 meanwhile.
  const meanwhile = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.same([meanwhile.status, JSON.parse(meanwhile.body).error], [503, 'upstream_unavailable'], 'a request meanwhile: 503 upstream_unavailable')
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'and no second token call')

  let next = meanwhile
  const end = Date.now() + 5000
  while (next.status === 503 && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    next = await browser.get(`${stack.url}/api/user/info`, CSRF)
  }
  t.equal(next.status, 200, `the late answer was stored: still signed in (got ${next.status} ${next.body})`)
  // The token's life counts from when the refresh request left (the provider starts it then), not from when its
  // late answer came: counted from the answer, a token the provider has expired looked valid here for that long.
  const stored = await stack.app.tokenStore.get(stack.sessionIdOf(browser))
  t.ok(stored !== null && stored.obtainedAt < answeredAt, 'obtainedAt: before the deadline, when the request was sent')
  t.equal(stored === null ? NaN : stored.expiresAt - stored.obtainedAt, 7200 * 1000, 'expiresAt: that plus the answer\'s expires_in')
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'one refresh in all')
  t.equal(stack.mock.counts().refreshTokenReuses, 0, 'the app never presents a refresh token the provider already rotated')
  const lines = stack.logs.filter((line) => line.includes('whose answer came after its requests had been answered'))
  t.equal(lines.length, 1, 'one info line says so')
  t.match(JSON.parse(lines[0] as string), { level: 30, session: String })
  t.same(findLeaks(stack.secrets(), [...browser.transcript(stack.url), ...stack.logs]), [], 'no secret in the answers or the logs')
})

t.test('a restart while a late refresh answer is on its way: the close waits for it and stores it; the other instance goes on with it', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('late-close')
  cleanupPrefix(t, redis, prefix)
  const relay = await slowRelay(t)
  const stack = await startStack({ instances: 2, redis, proxy: { baseUrl: relay.url, timeoutMs: TIMEOUT_MS }, tokenStore: { keyPrefix: prefix, refreshBackoffMs: 200 } })
  t.teardown(() => stack.close())
  relay.target = stack.mock.url
  const [a, b] = stack.peers.map((peer) => peer.url) as [string, string]
  const { browser } = await stack.login()
  const headers = { ...CSRF, cookie: browser.cookieHeader(a) as string }
  await setExpiry(stack, browser, -1000)
  stack.mock.resetCounts()
  relay.processed = 0

  // The provider processes the refresh at once (and rotates); its answer comes well after A's callers' deadline.
  relay.delayTokenMs = TIMEOUT_MS * 4
  t.equal((await browser.get(`${a}/api/user/info`, headers)).status, 504, 'the request waiting on the refresh: 504')
  t.equal(relay.processed, 1, 'the provider processed that refresh (rotated the refresh token)')
  // A deploy restarts A now. Before, its close cut the answer off and took the presented mark off the set: B presented
  // the rotated-away refresh token at once, and the provider revoked the grant (401 reauth_required on B).
  await stack.restart(0)
  relay.delayTokenMs = 0
  const onB = await browser.get(`${b}/api/user/info`, headers)
  t.equal(onB.status, 200, `B goes on with the set A stored while closing (got ${onB.status} ${onB.body})`)
  t.equal(stack.mock.counts().grants.refresh_token, 1, 'one refresh in all')
  t.equal(stack.mock.counts().refreshTokenReuses, 0, 'no refresh token presented twice')
  t.equal(stack.logs.filter((line) => line.includes('whose answer came after its requests had been answered')).length, 1, 'A stored the late answer')
  t.equal(stack.logs.filter((line) => line.includes('aihubmix-proxy: closing once a refresh answer still on the way has come')).length, 1,
    'and said at close why it waited')
  t.same(findLeaks(stack.secrets(), [...browser.transcript(a), ...browser.transcript(b), ...stack.logs]), [], 'no secret in the answers or the logs')
})

t.test('refreshGraceMs: 0 is the old behaviour: the late answer is thrown away (and with it the rotated refresh token)', async (t) => {
  const { relay, stack, browser } = await signedInBehindRelay(t, { refreshGraceMs: 0 })
  await setExpiry(stack, browser, -1000)
  relay.delayTokenMs = TIMEOUT_MS * 2
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 504)
  relay.delayTokenMs = 0
  await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 3)) // the answer came (to nobody), the backoff is over
  const next = await browser.get(`${stack.url}/api/user/info`, CSRF)
  t.same([next.status, JSON.parse(next.body).error], [401, 'reauth_required'], 'signed out: the next refresh presented the rotated-out token')
  t.equal(stack.mock.counts().refreshTokenReuses, 1)
})

t.test('a token endpoint that never answers: once the grace is over, the session backs off, then refreshes', async (t) => {
  const { stack, browser } = await signedInBehindRelay(t, { refreshGraceMs: TIMEOUT_MS })
  await setExpiry(stack, browser, -1000)
  stack.mock.setFault('token', 'hang', { times: 1 })
  t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 504)
  const statuses: number[] = []
  let next = await browser.get(`${stack.url}/api/user/info`, CSRF)
  const end = Date.now() + 5000
  while (next.status === 503 && Date.now() < end) {
    statuses.push(next.status)
    await new Promise((resolve) => setTimeout(resolve, 50))
    next = await browser.get(`${stack.url}/api/user/info`, CSRF)
  }
  t.ok(statuses.length > 0, '503 while the answer was awaited and the session backed off')
  t.equal(next.status, 200, 'then a new refresh, and the user is still signed in')
  t.equal(stack.mock.counts().grants.refresh_token, 2, 'the hung one and the one after')
})

t.test('refreshGraceMs: validated like every option', async (t) => {
  const base = { baseUrl: 'http://127.0.0.1:1', clientId: 'c', clientSecret: 's', redirectUri: 'http://127.0.0.1/cb' }
  t.equal(resolveOptions(base).refreshGraceMs, 60_000, 'default: 60 s')
  t.equal(resolveOptions({ ...base, refreshGraceMs: 0 }).refreshGraceMs, 0, '0: off')
  t.throws(() => resolveOptions({ ...base, refreshGraceMs: -1 }), { message: 'Invalid aihubmix-proxy option "refreshGraceMs": expected an integer from 0 to 600000, got -1' })
  t.throws(() => resolveOptions({ ...base, refreshGraceMs: 1.5 }), { message: /"refreshGraceMs": expected an integer/ })
  t.throws(() => resolveOptions({ ...base, refreshGraceMs: '60000' } as never), { message: /"refreshGraceMs": expected an integer .*, got a string of 5 characters/ })
  t.throws(() => resolveOptions({ ...base, refreshGrace: 1000 } as never), { message: 'Invalid aihubmix-proxy option "refreshGrace": is not an option (did you mean refreshGraceMs?)' })
})
