import t from 'tap'
import type { KeyLayout } from '../../src/token-store/keys.js'
import type { KVStore } from '../../src/token-store/kv-store.js'
import { startStack, findLeaks, type Stack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import type { T } from '../helpers/token-store.js'
import { signIn, stackOn, type Listed } from '../helpers/user-sessions-stack.js'

// The user's sessions through oauth-routes: GET /auth/sessions, DELETE /auth/sessions/:id and
// POST /auth/logout?everywhere=1, on the example app, with the memory store and with Redis.

const CSRF = { 'x-csrf': '1' }
const HANDLE = /^[A-Za-z0-9_-]{22}$/

async function list (stack: Stack, browser: TestBrowser, headers: Record<string, string> = {}): Promise<Listed[]> {
  const res = await browser.get(`${stack.url}/auth/sessions`, headers)
  if (res.status !== 200) throw new Error(`GET /auth/sessions: ${res.status} ${res.body}`)
  return (JSON.parse(res.body) as { sessions: Listed[] }).sessions
}

async function signedIn (stack: Stack, browser: TestBrowser): Promise<boolean> {
  return (await browser.get(`${stack.url}/api/user/info`, CSRF)).status === 200
}

function store (stack: Stack): { kv: KVStore, keys: KeyLayout } {
  return stack.app.tokenStore as unknown as { kv: KVStore, keys: KeyLayout }
}

/** Declares `<title> [memory]` and `<title> [redis]` (skipped, or failed under CI, without Redis). */
function onBothBackends (title: string, fn: (t: T, stack: Stack) => Promise<void>): void {
  for (const backend of ['memory', 'redis'] as const) {
    t.test(`${title} [${backend}]`, async (t) => {
      const stack = await stackOn(t, backend)
      if (stack === undefined) return
      await fn(t, stack)
    })
  }
}

onBothBackends('GET /auth/sessions: the user\'s sessions, newest first, exactly one current; 401 signed out', async (t, stack) => {
  const anonymous = stack.browser()
  const out = await anonymous.get(`${stack.url}/auth/sessions`)
  t.equal(out.status, 401)
  t.same(JSON.parse(out.body), { error: 'unauthenticated', message: 'Sign in first.' })
  t.equal(out.headers['cache-control'], 'no-store')

  const laptop = await signIn(stack, 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0')
  const phone = await signIn(stack, 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Mobile/15E148 Safari/604.1')
  const seenByPhone = await list(stack, phone)
  t.equal(seenByPhone.length, 2)
  t.same(seenByPhone.map((s) => s.current), [true, false], 'newest first: the phone signed in last')
  t.match(seenByPhone[0]?.userAgent, /iPhone/)
  t.match(seenByPhone[1]?.userAgent, /Firefox/)
  for (const s of seenByPhone) {
    t.match(s.id, HANDLE)
    t.ok(Date.parse(s.createdAt) <= Date.parse(s.lastSeenAt), 'last seen, not before the start')
    t.same(Object.keys(s).sort(), ['createdAt', 'current', 'id', 'lastSeenAt', 'userAgent'])
  }
  const seenByLaptop = await list(stack, laptop)
  t.same(seenByLaptop.map((s) => s.id), seenByPhone.map((s) => s.id), 'the same sessions, the same handles')
  t.same(seenByLaptop.map((s) => s.current), [false, true], 'each device sees itself as the current one')
})

onBothBackends('a listing never carries a session id, a cookie value or a token', async (t, stack) => {
  const browsers = [await signIn(stack, 'A'), await signIn(stack, 'B'), await signIn(stack, 'C')]
  stack.mock.expireAccessTokens()
  t.ok(await signedIn(stack, browsers[0] as TestBrowser), 'a refresh, so rotated tokens exist too')
  const bodies: string[] = []
  for (const browser of browsers) {
    const res = await browser.get(`${stack.url}/auth/sessions`)
    bodies.push(res.body, JSON.stringify(res.headers))
  }
  const sids = browsers.map((b) => stack.sessionIdOf(b))
  const cookies = browsers.map((b) => b.cookieHeader(stack.url) as string)
  t.same(findLeaks([...sids, ...cookies, ...cookies.map((c) => decodeURIComponent(c.slice('sid='.length))), ...stack.secrets()], bodies), [])
  t.equal(bodies.filter((b) => b.startsWith('{"sessions":')).length, 3)
})

onBothBackends('DELETE /auth/sessions/:id and logout everywhere need X-CSRF: 1; without it nothing ends', async (t, stack) => {
  const one = await signIn(stack, 'one')
  const two = await signIn(stack, 'two')
  const [, other] = await list(stack, one) as [Listed, Listed]
  const variants: Array<Record<string, string>> = [{}, { 'x-csrf': '0' }, { 'content-type': 'text/plain' }]
  for (const headers of variants) {
    const del = await one.delete(`${stack.url}/auth/sessions/${other.id}`, headers)
    t.equal(del.status, 403)
    t.same(JSON.parse(del.body).error, 'csrf_header_required')
    const everywhere = await one.post(`${stack.url}/auth/logout?everywhere=1`, headers)
    t.equal(everywhere.status, 403)
    t.same(JSON.parse(everywhere.body).error, 'csrf_header_required')
  }
  t.ok(await signedIn(stack, one))
  t.ok(await signedIn(stack, two), 'nothing ended')
  t.equal((await list(stack, two)).length, 2)
})

onBothBackends('ending another session of mine ends it at once; an id that is not one of mine is 404 and ends nothing', async (t, stack) => {
  const mine = await signIn(stack, 'mine')
  const myOther = await signIn(stack, 'my other')
  stack.mock.signIn({ id: 777, username: 'bob', email: 'bob@example.com' })
  const bobs = await signIn(stack, 'bob')
  const [bobsOwn] = await list(stack, bobs) as [Listed]
  t.equal((await list(stack, bobs)).length, 1, 'bob sees only his own session')

  for (const id of [bobsOwn.id, 'A'.repeat(22), 'not-a-handle', stack.sessionIdOf(myOther), encodeURIComponent('../sessions')]) {
    const res = await mine.delete(`${stack.url}/auth/sessions/${id}`, CSRF)
    t.equal(res.status, 404, `${id.slice(0, 8)}…: 404`)
    t.same(JSON.parse(res.body), { error: 'not_found', message: 'No session of yours has this id.' })
  }
  t.ok(await signedIn(stack, bobs), 'bob\'s session did not end')
  t.ok(await signedIn(stack, myOther), 'neither did mine')

  const other = (await list(stack, mine)).find((s) => !s.current) as Listed
  const ended = await mine.delete(`${stack.url}/auth/sessions/${other.id}`, CSRF)
  t.equal(ended.status, 204)
  t.equal(ended.body, '')
  t.notOk(await signedIn(stack, myOther), 'the other device is signed out at once')
  t.same((await myOther.get(`${stack.url}/auth/session`)).body, '{"authenticated":false}')
  t.same((await list(stack, mine)).map((s) => s.current), [true], 'and gone from the listing')
  t.equal((await mine.delete(`${stack.url}/auth/sessions/${other.id}`, CSRF)).status, 404, 'once')
  t.ok(await signedIn(stack, mine), 'this device stays signed in')
  t.ok(await signedIn(stack, bobs))
})

onBothBackends('ending the current session is a logout: the cookie is cleared', async (t, stack) => {
  const other = await signIn(stack, 'other')
  const here = await signIn(stack, 'here')
  const cookie = here.cookieHeader(stack.url) as string
  const current = (await list(stack, here)).find((s) => s.current) as Listed
  const res = await here.delete(`${stack.url}/auth/sessions/${current.id}`, CSRF)
  t.equal(res.status, 204)
  t.match(String(res.headers['set-cookie']), /^sid=;.*Expires=Thu, 01 Jan 1970/, 'the cookie is cleared, as a logout clears it')
  t.equal((await here.get(`${stack.url}/api/user/info`, { ...CSRF, cookie })).status, 401, 'the old cookie is dead')
  t.equal((await here.get(`${stack.url}/auth/sessions`)).status, 401)
  t.ok(await signedIn(stack, other), 'the other device stays signed in')
  t.equal((await list(stack, other)).length, 1)
})

// `?everywhere=` with any other value than 1 signed out this device alone and answered 204, as if every device were.
onBothBackends('POST /auth/logout?everywhere=: true as 1; 0 and false this session only; anything else 400, nothing ended', async (t, stack) => {
  const { browser: one } = await stack.login()
  const { browser: other } = await stack.login()
  for (const value of ['yes', 'TRUE', '']) {
    const res = await one.post(`${stack.url}/auth/logout?everywhere=${value}`, CSRF)
    t.equal(res.status, 400, `everywhere=${value}`)
    t.equal(JSON.parse(res.body).error, 'bad_request')
  }
  t.equal((await one.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'this session lives on')
  t.equal((await other.post(`${stack.url}/auth/logout?everywhere=true`, CSRF)).status, 204)
  t.equal((await one.get(`${stack.url}/api/user/info`, CSRF)).status, 401, 'true ended the other device too')
  const { browser: three } = await stack.login()
  const { browser: four } = await stack.login()
  t.equal((await three.post(`${stack.url}/auth/logout?everywhere=false`, CSRF)).status, 204)
  t.equal((await four.get(`${stack.url}/api/user/info`, CSRF)).status, 200, 'false: this session only')
})

onBothBackends('POST /auth/logout?everywhere=1 ends every session of the user and none of another user\'s', async (t, stack) => {
  const mine = [await signIn(stack, 'one'), await signIn(stack, 'two'), await signIn(stack, 'three')]
  stack.mock.signIn({ id: 777, username: 'bob', email: 'bob@example.com' })
  const bobs = await signIn(stack, 'bob')
  const [here] = mine as [TestBrowser]
  const res = await here.post(`${stack.url}/auth/logout?everywhere=1`, CSRF)
  t.equal(res.status, 204)
  t.match(String(res.headers['set-cookie']), /^sid=;/, 'this device\'s cookie is cleared')
  for (const browser of mine) t.notOk(await signedIn(stack, browser), 'every session of mine is over')
  t.ok(await signedIn(stack, bobs), 'bob stays signed in')
  t.equal((await list(stack, bobs)).length, 1)
  // A plain logout (no everywhere=1) ends only its own session.
  stack.mock.signIn({ id: 12345 })
  const [a, b] = [await signIn(stack, 'a'), await signIn(stack, 'b')]
  t.equal((await a.post(`${stack.url}/auth/logout?everywhere=0`, CSRF)).status, 204)
  t.notOk(await signedIn(stack, a))
  t.ok(await signedIn(stack, b))
})

onBothBackends('a session past its idle timeout leaves the listing and is ended', async (t, stack) => {
  const idle = await signIn(stack, 'idle')
  const active = await signIn(stack, 'active')
  // The idle one was last seen two days ago (the idle timeout is 24 hours), as its record says.
  const { kv, keys } = store(stack)
  const key = keys.session(stack.sessionIdOf(idle))
  const record = JSON.parse(await kv.get(key) as string) as { aihubmixAuth: { at: number, seen: number } }
  const twoDaysAgo = Date.now() - 2 * 24 * 3600 * 1000
  record.aihubmixAuth = { at: twoDaysAgo, seen: twoDaysAgo }
  await kv.set(key, JSON.stringify(record), 3600_000)
  const listed = await list(stack, active)
  t.same(listed.map((s) => s.userAgent), ['active'])
  t.equal(await kv.get(keys.tokens(stack.sessionIdOf(idle))), null, 'ended there: its token set is gone')
})

/** A redirect-mode sign-in up to the callback's answer (whatever it is). */
async function callback (stack: Stack, browser: TestBrowser = stack.browser()): Promise<{ status: number, location: string | undefined }> {
  const start = await browser.get(`${stack.url}/auth/login`)
  const authorize = await browser.get(TestBrowser.location(start))
  const back = await browser.get(TestBrowser.location(authorize))
  return { status: back.status, location: back.headers.location as string | undefined }
}

onBothBackends('userinfo failing at sign-in refuses the sign-in with userinfo_failed; no session is created', async (t, stack) => {
  // Twice: a 503 is a fault that may pass, so the sign-in calls userinfo once more (after its Retry-After of 1 s).
  stack.mock.setFault('userinfo', 'http503', { times: 2 })
  stack.mock.resetCounts()
  const browser = stack.browser()
  const back = await callback(stack, browser)
  t.equal(back.status, 302)
  t.equal(back.location, '/?error=userinfo_failed')
  t.equal(stack.mock.counts().userinfo, 2, 'called once more, then given up')
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'the code was exchanged')
  t.equal(browser.cookies.get(stack.url)?.get('sid'), undefined, 'no session cookie')
  t.same(JSON.parse((await browser.get(`${stack.url}/auth/session`)).body), { authenticated: false })
  t.equal((await browser.get(`${stack.url}/auth/sessions`)).status, 401)
  t.ok(stack.logs.some((l) => l.includes('userinfo after the code exchange failed: sign-in refused')), 'logged')
  // The next attempt goes through.
  t.ok(await signedIn(stack, await signIn(stack, 'again')))
})

onBothBackends('a userinfo fault that may pass does not fail the sign-in: userinfo is called once more', async (t, stack) => {
  for (const fault of ['http500', 'http503'] as const) {
    stack.mock.setFault('userinfo', fault, { times: 1 })
    stack.mock.resetCounts()
    const browser = stack.browser()
    const back = await callback(stack, browser)
    t.same(back, { status: 302, location: '/' }, `${fault} once: signed in`)
    t.equal(stack.mock.counts().userinfo, 2, `${fault}: two userinfo calls`)
    t.equal(stack.mock.counts().grants.authorization_code, 1, `${fault}: one code exchange`)
    t.ok(await signedIn(stack, browser), `${fault}: the session works`)
    t.equal((await list(stack, browser)).filter((listed) => listed.current).length, 1, `${fault}: and is listed under its user`)
  }
})

t.test('a userinfo failure another call would not mend fails the sign-in at once', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  for (const fault of ['http401', 'wrong_types', 'non_json', 'truncated'] as const) {
    stack.mock.setFault('userinfo', fault, { times: 1 })
    stack.mock.resetCounts()
    const back = await callback(stack)
    t.same(back, { status: 302, location: '/?error=userinfo_failed' }, `${fault}: userinfo_failed`)
    t.equal(stack.mock.counts().userinfo, 1, `${fault}: no second call`)
  }
})

t.test('userinfoRetryDelay: which failures get a second userinfo call at sign-in, and after how long', async (t) => {
  const { userinfoRetryDelay, USERINFO_RETRY_DELAY_MS, USERINFO_MAX_RETRY_AFTER_MS } = await import('../../src/oauth-routes/userinfo-retry.js')
  const proxy = await import('@fastify-aihubmix/aihubmix-proxy')
  const cause = { cause: new Error('x') }
  t.equal(userinfoRetryDelay(new proxy.UpstreamBusyError(503)), USERINFO_RETRY_DELAY_MS, 'busy without Retry-After')
  t.equal(userinfoRetryDelay(new proxy.UpstreamBusyError(429, 1000)), 1000, 'busy: its Retry-After')
  t.equal(userinfoRetryDelay(new proxy.UpstreamBusyError(503, USERINFO_MAX_RETRY_AFTER_MS)), USERINFO_MAX_RETRY_AFTER_MS, 'up to the longest')
  t.equal(userinfoRetryDelay(new proxy.UpstreamBusyError(503, USERINFO_MAX_RETRY_AFTER_MS + 1)), undefined, 'a longer Retry-After is not waited for')
  t.equal(userinfoRetryDelay(new proxy.UpstreamStatusError(500)), USERINFO_RETRY_DELAY_MS, '500')
  t.equal(userinfoRetryDelay(new proxy.UpstreamStatusError(502, cause)), USERINFO_RETRY_DELAY_MS, '502')
  t.equal(userinfoRetryDelay(new proxy.UpstreamStatusError(404)), undefined, '404: not a passing fault')
  t.equal(userinfoRetryDelay(new proxy.UpstreamUnreachableError(cause)), USERINFO_RETRY_DELAY_MS, 'no connection')
  for (const err of [new proxy.UpstreamTimeoutError(10_000), new proxy.UpstreamUnauthorizedError(), new proxy.UpstreamInvalidResponseError('userinfo'), new proxy.UpstreamBodyTooLargeError(1), new Error('other')]) {
    t.equal(userinfoRetryDelay(err), undefined, err.constructor.name)
  }
  t.equal(new proxy.UpstreamStatusError(500).message, 'The AIHubMix provider answered HTTP 500', 'the message names the status, nothing more')
  t.equal(new proxy.UpstreamStatusError(503, cause).upstreamStatus, 503, 'upstreamStatus')
})

onBothBackends('a signed-in session its user\'s index lacks is indexed at its first listing', async (t, stack) => {
  const browser = await signIn(stack, 'from before')
  // As a session from before sessions were indexed (or whose entry was lost): no link, no entry.
  const { kv, keys } = store(stack)
  const sid = stack.sessionIdOf(browser)
  await kv.delete(keys.userLink(sid))
  await kv.delete(keys.userSessions('12345'))
  stack.mock.setFault('userinfo', 'http500', { times: 1 })
  const failed = await browser.get(`${stack.url}/auth/sessions`)
  t.equal(failed.status, 502, 'the provider cannot say whose it is: a gateway error')
  t.same(JSON.parse(failed.body), { error: 'bad_gateway', message: 'AIHubMix gave an unusable answer.' })
  t.ok(await signedIn(stack, browser), 'and the session lives on')
  stack.mock.resetCounts()
  const listed = await list(stack, browser, { 'user-agent': 'still here' })
  t.equal(listed.length, 1)
  t.equal(listed[0]?.current, true)
  t.equal(listed[0]?.userAgent, 'still here', 'the browser as it is now')
  t.equal(stack.mock.counts().userinfo, 1, 'one userinfo call to learn whose it is')
  t.equal((await list(stack, browser))[0]?.id, listed[0]?.id, 'from then on it is indexed')
  t.equal(stack.mock.counts().userinfo, 1)
})

t.test('the sessions route is named by routes.sessions, under the prefix', async (t) => {
  const stack = await startStack({ oauth: { routes: { sessions: '/devices' } } })
  t.teardown(() => stack.close())
  const browser = await signIn(stack, 'renamed')
  const listed = await browser.get(`${stack.url}/auth/devices`)
  t.equal(listed.status, 200)
  const [own] = JSON.parse(listed.body).sessions as [Listed]
  t.equal((await browser.get(`${stack.url}/auth/sessions`)).status, 404)
  t.equal((await browser.delete(`${stack.url}/auth/devices/${own.id}`, CSRF)).status, 204, 'DELETE under the same name')
  t.notOk(await signedIn(stack, browser))
})
