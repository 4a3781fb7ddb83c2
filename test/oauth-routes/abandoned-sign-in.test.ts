import t from 'tap'
import { request } from 'undici'
import { TestBrowser } from '../helpers/browser.js'
import { keyedStack } from '../helpers/stored-keys.js'
import type { Stack } from '../helpers/stack.js'

// A sign-in whose browser leaves at the callback (the popup or tab closed, the connection dropped) while the app is
// still exchanging the code or storing the sign-in. No cookie can reach that browser: the sign-in was committed all
// the same, a signed-in session nobody holds, listed on the user's other devices, counted towards their cap and kept
// (with an unrevoked grant) as long as a session lives. Now nothing of it is kept.

const CSRF = { 'x-csrf': '1' }

/** Starts a sign-in and sends its callback with a connection dropped `leaveAfterMs` later; resolves how it ended. */
async function leaveAtCallback (stack: Stack, leaveAfterMs: number): Promise<string> {
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login`)
  const back = TestBrowser.location(await browser.get(TestBrowser.location(start)))
  const gone = new AbortController()
  setTimeout(() => gone.abort(), leaveAfterMs)
  return await request(back, { headers: { cookie: browser.cookieHeader(back) ?? '' }, signal: gone.signal })
    .then((res) => `answered ${res.statusCode}`, (err: Error) => err.name)
}

async function until (what: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !await what(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
}

for (const backend of ['memory', 'redis'] as const) {
  t.test(`a browser gone while userinfo is asked: nothing of the sign-in is kept (${backend})`, async (t) => {
    const keyed = await keyedStack(t, backend)
    if (keyed === undefined) return
    const { stack, keys } = keyed
    const { browser: other } = await stack.login()
    const before = await keys()

    stack.mock.setLatency('userinfo', 400)
    for (let i = 0; i < 3; i++) t.equal(await leaveAtCallback(stack, 100), 'AbortError', 'the browser left before the answer')
    // Each callback goes on after its browser left: wait for its login-used marker and userinfo to be done.
    await until(async () => stack.mock.counts().userinfo >= 4)
    await new Promise((resolve) => setTimeout(resolve, 200))

    const added = (await keys()).filter((k) => !before.includes(k))
    t.same(added.filter((k) => !k.includes(':rec:login-used:')), [], 'no session, token set or index link of theirs')
    t.equal(added.length, 3, 'only the three used-state markers (they expire with the state)')
    const listed = JSON.parse((await other.get(`${stack.url}/auth/sessions`, CSRF)).body).sessions as unknown[]
    t.equal(listed.length, 1, 'the user\'s other device lists only itself')
  })
}

t.test('a browser gone while the sign-in is stored: the stored sign-in is ended again', async (t) => {
  const keyed = await keyedStack(t, 'memory')
  if (keyed === undefined) return
  const { stack, keys } = keyed
  const { browser: other } = await stack.login()
  const before = await keys()
  // The store slow to index the session: the browser leaves meanwhile. (Wrapped on the instance the routes use.)
  const store = stack.app.tokenStore
  const addUserSession = store.addUserSession.bind(store)
  store.addUserSession = async (...args) => {
    const id = await addUserSession(...args)
    await new Promise((resolve) => setTimeout(resolve, 300))
    return id
  }
  t.equal(await leaveAtCallback(stack, 100), 'AbortError', 'the browser left before the answer')
  await new Promise((resolve) => setTimeout(resolve, 500))
  const added = (await keys()).filter((k) => !before.includes(k))
  t.same(added.filter((k) => !k.includes(':rec:login-used:')), [], 'no session, token set or index link left')
  const listed = JSON.parse((await other.get(`${stack.url}/auth/sessions`, CSRF)).body).sessions as unknown[]
  t.equal(listed.length, 1, 'the user\'s other device lists only itself')
})
