import t from 'tap'
import type { MemoryStore } from '../../src/token-store/memory-store.js'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'
import { kvOf } from '../helpers/token-store.js'

// Issue 15: a visitor who is not signed in leaves nothing on the server, whatever it does: the page, the
// session probe, sign-in starts, failed callbacks. Memory stores here (login-start.test.ts counts Redis keys).

t.test('a visitor who never signs in writes nothing to the session store or any other store', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const store = stack.app.tokenStore.sessionStore
  const writes: string[] = []
  const set = store.set.bind(store)
  // @fastify/session calls the store object it was given: count what it saves.
  store.set = (sid, session, callback) => {
    writes.push(sid)
    set(sid, session, callback)
  }
  const kv = kvOf(stack.app.tokenStore) as unknown as MemoryStore

  for (let i = 0; i < 20; i++) {
    const browser = new TestBrowser()
    await browser.get(`${stack.url}/`)
    await browser.get(`${stack.url}/auth/session`)
    const start = await browser.get(`${stack.url}/auth/login${i % 2 === 0 ? '?mode=popup' : ''}`)
    t.equal(start.status, 302)
    t.equal(browser.cookieHeader(stack.url), undefined, 'no session cookie')
    const back = new URL(TestBrowser.location(await browser.get(TestBrowser.location(start))))
    // Callbacks that fail: another browser's, a provider error, a made-up state.
    await new TestBrowser().get(back.href)
    back.searchParams.delete('code')
    back.searchParams.set('error', 'access_denied')
    const denied = await browser.get(back.href)
    if (i % 2 === 0) t.match(denied.body, '"ok":false,"error":"access_denied"', 'popup page')
    else t.equal(denied.headers.location, '/?error=access_denied')
    await browser.get(`${stack.url}/auth/callback?state=${'A'.repeat(43)}&code=x`)
  }
  t.same(writes, [], 'no session saved')
  t.same(kv.keys(), [], 'nothing stored at all')

  // The first thing written is the session of a finished sign-in.
  await stack.login()
  t.equal(new Set(writes).size, 1, 'one session saved, at sign-in (written by regenerate, then with its sign-in time)')
  t.equal(kv.keys().length, 5, 'its record, its token set, its link to its user, its user\'s index, and the used-state marker')
})
