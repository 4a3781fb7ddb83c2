import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// GET /auth/login is a browser navigation (a link, the popup the page opens): a returnTo given twice or longer than
// 4096 characters was refused by the route's schema with a 400 JSON body, which the browser showed as the page (in
// popup mode, inside the popup), where any other unsafe returnTo falls back to defaultReturnTo. Now they fall back too.

const UNSAFE: Array<[string, string]> = [
  ['a repeated returnTo', 'returnTo=%2Fa&returnTo=%2Fb'],
  ['a returnTo of 5000 characters', `returnTo=%2F${'a'.repeat(4999)}`],
  ['a repeated returnTo, one of them too long', `returnTo=%2Fa&returnTo=%2F${'a'.repeat(4999)}`]
]

for (const mode of ['redirect', 'popup'] as const) {
  t.test(`${mode} mode: a returnTo the route cannot use starts the sign-in, which ends at defaultReturnTo`, async (t) => {
    const stack = await startStack({ oauth: { defaultReturnTo: '/home' } })
    t.teardown(() => stack.close())
    for (const [name, query] of UNSAFE) {
      const browser = new TestBrowser()
      const start = await browser.get(`${stack.url}/auth/login?${query}${mode === 'popup' ? '&mode=popup' : ''}`)
      t.equal(start.status, 302, `${name}: the sign-in starts (not a 400 JSON page)`)
      t.equal(new URL(TestBrowser.location(start)).pathname, '/api/oauth2/authorize', `${name}: to the provider`)
      const back = await browser.get(TestBrowser.location(start))
      const done = await browser.get(TestBrowser.location(back))
      if (mode === 'redirect') {
        t.equal(done.status, 302)
        t.equal(done.headers.location, '/home', `${name}: the signed-in browser goes to defaultReturnTo`)
      } else {
        t.equal(done.status, 200)
        t.match(done.body, /"type":"aihubmix:login","ok":true/)
        t.match(done.body, 'var fallback = "/home"', `${name}: the popup page's fallback is defaultReturnTo`)
      }
    }
  })
}

t.test('a malformed mode is still refused by the route\'s schema (400 bad_request)', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const res = await new TestBrowser().get(`${stack.url}/auth/login?mode=${'p'.repeat(33)}`)
  t.equal(res.status, 400)
  t.same(JSON.parse(res.body), { error: 'bad_request', message: 'The request was not valid.' })
})
