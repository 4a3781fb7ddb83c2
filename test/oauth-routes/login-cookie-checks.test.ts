import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { startStack, findLeaks, type Stack } from '../helpers/stack.js'
import { TestBrowser, type Answer } from '../helpers/browser.js'
import { connectRedis, uniquePrefix, cleanupPrefix } from '../helpers/redis.js'
import { MAX_PENDING_LOGINS } from '@fastify-aihubmix/oauth-routes'

// The pending login lives in a sealed cookie of the browser that started it (src/oauth-routes/login-cookies.ts).
// Whatever is done to that cookie, a callback that does not carry the right one, once, fails as invalid_state
// with no token call and no session change.

const CSRF = { 'x-csrf': '1' }

interface Pending {
  browser: TestBrowser
  state: string
  /** The callback URL the provider sent back (code and state), not visited yet. */
  callback: string
  /** The login cookie's name and sealed value. */
  name: string
  value: string
}

/** The login cookie's name: its slot, the first character of the state (base64url) modulo the 10 slots. */
function loginCookieName (state: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  return `aihubmix-login-${alphabet.indexOf(state.charAt(0)) % (2 * MAX_PENDING_LOGINS)}`
}

async function startLogin (stack: Stack, browser = new TestBrowser(), query = ''): Promise<Pending> {
  const start = await browser.get(`${stack.url}/auth/login${query}`)
  const state = new URL(TestBrowser.location(start)).searchParams.get('state') as string
  const back = await browser.get(TestBrowser.location(start))
  const name = loginCookieName(state)
  const value = browser.cookies.get(stack.url)?.get(name)
  if (value === undefined) throw new Error('no login cookie')
  return { browser, state, callback: TestBrowser.location(back), name, value }
}

/** The same pending login as an earlier version sealed it: under its own name, with that name in the associated data. */
function asEarlierVersion (stack: Stack, p: Pending): { opened: string, legacy: string, sealed: string } {
  const opened = stack.app.tokenStore.unseal(p.value, `login-cookie:${p.name}:${p.state}`) as string
  const legacy = `aihubmix-login-${p.state.slice(0, 8)}`
  return { opened, legacy, sealed: stack.app.tokenStore.seal(opened, `login-cookie:${legacy}:${p.state}`) }
}

/** The callback visited by `browser` with exactly `cookie` for the callback path (plus its session cookie, if any). */
async function callbackWith (stack: Stack, browser: TestBrowser, url: string, cookie: string): Promise<Answer> {
  const session = browser.cookieHeader(stack.url)
  return browser.get(url, { cookie: session === undefined ? cookie : `${session}; ${cookie}` })
}

async function expectRefused (t: Test, stack: Stack, browser: TestBrowser, visit: () => Promise<Answer>): Promise<void> {
  const calls = stack.mock.counts().grants.authorization_code
  const session = browser.cookieHeader(stack.url)
  const res = await visit()
  t.equal(res.status, 302)
  t.equal(res.headers.location, '/?error=invalid_state')
  t.equal(stack.mock.counts().grants.authorization_code, calls, 'no token call')
  t.equal(browser.cookieHeader(stack.url), session, 'no session change')
  t.notMatch(String(res.headers['set-cookie'] ?? ''), /(^|,)\s*sid=/, 'no session cookie set')
}

t.test('a tampered, swapped, renamed, forged or expired login cookie fails as invalid_state', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())

  await t.test('tampered: one character of the sealed value changed', async (t) => {
    const p = await startLogin(stack)
    const i = 20
    const flipped = p.value.slice(0, i) + (p.value[i] === 'A' ? 'B' : 'A') + p.value.slice(i + 1)
    await expectRefused(t, stack, p.browser, () => callbackWith(stack, p.browser, p.callback, `${p.name}=${flipped}`))
  })

  await t.test('swapped: the cookie of login A under the name of login B, with B\'s state and code', async (t) => {
    const browser = new TestBrowser()
    const a = await startLogin(stack, browser)
    const b = await startLogin(stack, browser)
    await expectRefused(t, stack, browser, () => callbackWith(stack, browser, b.callback, `${b.name}=${a.value}`))
    // and A's own callback with B's cookie under A's name
    await expectRefused(t, stack, browser, () => callbackWith(stack, browser, a.callback, `${a.name}=${b.value}`))
  })

  await t.test('another state with the same first characters (the name fits, the state does not)', async (t) => {
    const p = await startLogin(stack)
    const other = p.state.slice(0, 8) + (p.state[8] === 'A' ? 'B' : 'A') + p.state.slice(9)
    const url = new URL(p.callback)
    url.searchParams.set('state', other)
    await expectRefused(t, stack, p.browser, () => callbackWith(stack, p.browser, url.href, `${p.name}=${p.value}`))
  })

  await t.test('forged: a value sealed for this name and state, but not by this app\'s key ring', async (t) => {
    const other = await startStack()
    t.teardown(() => other.close())
    const p = await startLogin(stack)
    const foreign = other.app.tokenStore.seal(JSON.stringify({ v: 'v'.repeat(43), r: '/', m: 'redirect', t: Date.now() }), `login-cookie:${p.name}:${p.state}`)
    await expectRefused(t, stack, p.browser, () => callbackWith(stack, p.browser, p.callback, `${p.name}=${foreign}`))
  })

  await t.test('expired: the sealed creation time decides, whatever the cookie\'s Max-Age', async (t) => {
    const p = await startLogin(stack)
    const context = `login-cookie:${p.name}:${p.state}`
    const opened = JSON.parse(stack.app.tokenStore.unseal(p.value, context) as string) as { v: string, r: string, m: string, t: number }
    const old = stack.app.tokenStore.seal(JSON.stringify({ ...opened, t: Date.now() - 10 * 60 * 1000 - 1000 }), context)
    await expectRefused(t, stack, p.browser, () => callbackWith(stack, p.browser, p.callback, `${p.name}=${old}`))
    // The same login resealed as it was (same verifier, fresh time) goes through: the refusal was the time's.
    const fresh = stack.app.tokenStore.seal(JSON.stringify(opened), context)
    const ok = await callbackWith(stack, p.browser, p.callback, `${p.name}=${fresh}`)
    t.equal(ok.headers.location, '/')
  })

  await t.test('no cookie at all, an empty one, an oversize one', async (t) => {
    const p = await startLogin(stack)
    await expectRefused(t, stack, p.browser, () => callbackWith(stack, p.browser, p.callback, 'unrelated=1'))
    await expectRefused(t, stack, p.browser, () => callbackWith(stack, p.browser, p.callback, `${p.name}=`))
    await expectRefused(t, stack, p.browser, () => callbackWith(stack, p.browser, p.callback, `${p.name}=v1.${'A'.repeat(3000)}`))
  })
})

t.test('single use: a replayed callback never reaches the token endpoint, concurrent or later', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const p = await startLogin(stack)
  const captured = `${p.name}=${p.value}`

  // Five copies of the same pair at once (an attacker who captured it, or a browser retrying): one wins.
  const browsers = Array.from({ length: 5 }, () => new TestBrowser())
  const answers = await Promise.all(browsers.map((b) => b.get(p.callback, { cookie: captured })))
  t.same(answers.map((a) => a.headers.location).sort(), ['/', '/?error=invalid_state', '/?error=invalid_state', '/?error=invalid_state', '/?error=invalid_state'])
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'one token call')

  // Later, with the cookie the success answer meant to delete (its answer was lost): refused, no token call.
  await expectRefused(t, stack, p.browser, () => p.browser.get(p.callback, { cookie: captured }))
  t.equal((await p.browser.get(`${stack.url}/api/user/info`, CSRF)).status, 401, 'the replaying browser is not signed in')
})

t.test('a popup\'s callback replayed (its answer lost, the popup reloaded): the popup page with invalid_state, not the app in the popup', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const p = await startLogin(stack, new TestBrowser(), '?mode=popup')
  const captured = `${p.name}=${p.value}`
  const first = await new TestBrowser().get(p.callback, { cookie: captured })
  t.match(first.body, /"type":"aihubmix:login","ok":true/, 'the first visit signs in')
  const again = await new TestBrowser().get(p.callback, { cookie: captured })
  t.equal(again.status, 200, 'a page, not a redirect to the app (which would load the whole app inside the popup)')
  t.match(String(again.headers['content-type']), /^text\/html/)
  t.match(again.body, /"type":"aihubmix:login","ok":false,"error":"invalid_state"/, 'telling the opener the sign-in failed')
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'one token call')
})

t.test('a failed code exchange spends the state: the pair replayed answers invalid_state with no token call', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const p = await startLogin(stack)
  stack.mock.setFault('token', 'http500', { times: 1 })
  const failed = await p.browser.get(p.callback, { cookie: `${p.name}=${p.value}` })
  t.equal(failed.headers.location, '/?error=token_exchange_failed')
  t.match(String(failed.headers['set-cookie']), new RegExp(`${p.name}=; Max-Age=0; Path=/auth/callback`), 'the login cookie is cleared')
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'one token call')
  // The cookie replayed (a script, or a browser whose answer was lost) with the same code, then with made-up ones.
  for (const callback of [p.callback, p.callback.replace(/code=[^&]+/, 'code=guess1'), p.callback.replace(/code=[^&]+/, 'code=guess2')]) {
    const replayed = await p.browser.get(callback, { cookie: `${p.name}=${p.value}` })
    t.equal(replayed.headers.location, '/?error=invalid_state', 'replayed: invalid_state')
  }
  t.equal(stack.mock.counts().grants.authorization_code, 1, 'no token call for any replay')
  // Control: a new sign-in in the same browser goes through.
  t.equal((await stack.login({ browser: p.browser })).final.headers.location, '/')
})

t.test('the verifier never reaches the page, an answer or a log line', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login?mode=popup`)
  const authorize = new URL(TestBrowser.location(start))
  const state = authorize.searchParams.get('state') as string
  const line = String(start.headers['set-cookie'])
  t.match(line, /aihubmix-login-[0-9]=v1\.[A-Za-z0-9_-]+; Max-Age=600; Path=\/auth\/callback; HttpOnly; SameSite=Lax/)
  t.notMatch(line, /Secure/, 'plain http on loopback: not Secure, no __Secure- prefix')
  const name = loginCookieName(state)
  const value = browser.cookies.get(stack.url)?.get(name) as string
  const opened = JSON.parse(stack.app.tokenStore.unseal(value, `login-cookie:${name}:${state}`) as string) as { v: string }
  t.equal(createHash('sha256').update(opened.v).digest('base64url'), authorize.searchParams.get('code_challenge'), 'the cookie holds the PKCE verifier of this login')
  const back = await browser.get(authorize.href)
  await browser.get(TestBrowser.location(back))
  t.same(findLeaks([opened.v], [...browser.transcript(stack.url), ...stack.logs]), [], 'nowhere in clear')
})

t.test('a login started on one instance finishes on another, once', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('logins')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ redis, tokenStore: { keyPrefix: prefix }, instances: 2 })
  t.teardown(() => stack.close())
  const a = stack.peers[0] as { url: string }
  const b = stack.peers[1] as { url: string }
  const browser = new TestBrowser()
  const start = await browser.get(`${a.url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  const callback = new URL(TestBrowser.location(back))
  const cookie = browser.cookieHeader(callback.href) as string
  // Both instances share the key ring and the store: B opens A's cookie, and the state is used once across both.
  const onB = await new TestBrowser().get(`${b.url}${callback.pathname}${callback.search}`, { cookie })
  t.equal(onB.headers.location, '/')
  const replayOnA = await new TestBrowser().get(callback.href, { cookie })
  t.equal(replayOnA.headers.location, '/?error=invalid_state')
  t.equal(stack.mock.counts().grants.authorization_code, 1)
})

t.test('a login whose cookie an earlier version set (named by the state\'s first 8 characters) still finishes, once', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const p = await startLogin(stack)
  const { legacy, sealed } = asEarlierVersion(stack, p)
  const done = await callbackWith(stack, p.browser, p.callback, `${legacy}=${sealed}`)
  t.equal(done.status, 302)
  t.equal(done.headers.location, '/', 'signed in')
  t.match(String(done.headers['set-cookie']), new RegExp(`${legacy}=;`), 'its cookie cleared')
})

t.test('during a deploy: an earlier version\'s login finishes even when its slot holds another login, and its index ids count', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const p = await startLogin(stack)
  const { opened, legacy, sealed } = asEarlierVersion(stack, p)
  // The slot named by this state holds another login's cookie (started on this version): a state that differs from
  // this one in its first character (a fixed 'Q' was this very state for one state in 64, and the test failed).
  const other = (p.state.startsWith('Q') ? 'R' : 'Q') + p.state.slice(1)
  const foreign = stack.app.tokenStore.seal(opened, `login-cookie:${p.name}:${other}`)
  const done = await callbackWith(stack, p.browser, p.callback, `${p.name}=${foreign}; ${legacy}=${sealed}`)
  t.equal(done.headers.location, '/', 'signed in from the earlier version\'s cookie')
  const cleared = String(done.headers['set-cookie'])
  t.match(cleared, new RegExp(`${legacy}=;`), 'its cookie cleared')
  t.notMatch(cleared, new RegExp(`${p.name}=;`), 'the slot\'s cookie, another login\'s, left alone')

  // An index written by the earlier version (8-character ids): its oldest login is expired like any other.
  const ids = ['AAAAAAAA', 'BBBBBBBB', 'CCCCCCCC', 'DDDDDDDD', 'EEEEEEEE']
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login`, { cookie: `aihubmix-logins=${ids.join('.')}` })
  const set = ([] as string[]).concat(start.headers['set-cookie'] ?? [])
  t.ok(set.some((c) => c.startsWith('aihubmix-login-AAAAAAAA=;')), 'the oldest earlier-version login expired')
  const index = set.find((c) => c.startsWith('aihubmix-logins='))?.split(';')[0]?.slice('aihubmix-logins='.length) ?? ''
  t.match(index, /^BBBBBBBB\.CCCCCCCC\.DDDDDDDD\.EEEEEEEE\.\d$/, 'the index keeps the others, and the new slot')
})
