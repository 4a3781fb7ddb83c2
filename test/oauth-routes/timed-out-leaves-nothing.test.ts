import t from 'tap'
import { keyedStack } from '../helpers/stored-keys.js'

// A session ended by its idle timeout on a route of @fastify/session's scope (/auth/session, the page's first call)
// is regenerated, and @fastify/session's regenerate() saves the new, empty session at once. No cookie ever names it:
// each visit after a timeout left one empty record in the store until its TTL (7 days for the example's cookie).
// token-store's session store now writes no new session that holds nothing.

for (const backend of ['memory', 'redis'] as const) {
  t.test(`a session ended by its idle timeout at /auth/session leaves no record behind (${backend})`, async (t) => {
    const keyed = await keyedStack(t, backend, { oauth: { idleTimeoutMs: 1000, absoluteTimeoutMs: 60_000 } })
    if (keyed === undefined) return
    const { stack, keys } = keyed
    const records = async (): Promise<string[]> => (await keys()).filter((k) => k.endsWith(':sess'))
    const browsers = []
    for (let i = 0; i < 3; i++) browsers.push((await stack.login()).browser)
    t.equal((await records()).length, 3, 'three signed-in sessions')
    await new Promise((resolve) => setTimeout(resolve, 1300))
    for (const browser of browsers) {
      const res = await browser.get(`${stack.url}/auth/session`)
      t.same(JSON.parse(res.body), { authenticated: false }, 'ended by the idle timeout')
      t.notMatch(String(res.headers['set-cookie'] ?? ''), /(^|,)\s*sid=[^;]/, 'no new session cookie handed out')
    }
    t.same(await records(), [], 'no session record is left (none has a cookie naming it)')
    t.same((await keys()).filter((k) => k.endsWith(':tok')), [], 'nor a token set')
  })
}
