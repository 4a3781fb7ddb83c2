import t from 'tap'
import { request } from 'undici'
import { startStack, findLeaks } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// A real authorization code and state in callback URLs mangled on their way (another case, a stray byte, a `;`
// separator, a doubled slash, a path Fastify does not route): whatever the app makes of them, the code reaches no log
// line (the example logs at trace here: every request line) and no answer. The request log redacted only a parameter
// named exactly `code`, so `?Code=`, `?code%00=` and `?x=1;code=` were written in clear.

t.test('a real code in mangled callback URLs never reaches a log line or an answer', async (t) => {
  const stack = await startStack({ env: { LOG_LEVEL: 'trace' } })
  t.teardown(() => stack.close())
  const variants = (q: string): string[] => [
    `/auth/callback/?${q}`, `/auth//callback?${q}`, `/AUTH/callback?${q}`, `/auth/callback%ZZ?${q}`,
    `/auth/callback?${q.replace('code=', 'co%64e=')}`, `/auth/callback?${q.replace('code=', 'code%00=')}`,
    `/auth/callback?${q.replace('code=', 'code%ZZ=')}`, `/auth/callback?x=1;${q}`, `/auth/callback?${q.replace(/&/g, ';')}`,
    `/auth/callback?${q.replace('code=', 'Code=')}`, `/auth/callback?${q.replace('code=', 'code[]=')}`,
    `/auth/callback?${q.replace('code=', '%20code=')}`, `/auth/callback?${q.replace('code=', 'code+=')}`,
    `/auth/callback?x=1?${q}`, `/auth/callback?${q.replace('code=', 'code%3D').replace('state=', 'state%3d')}`,
    `/auth/login?${q}`, `/?${q}`, `/api/user/info?${q}`
  ]
  const seen: string[] = []
  for (let i = 0; ; i++) {
    const browser = new TestBrowser()
    const start = await browser.get(`${stack.url}/auth/login`)
    const back = new URL(TestBrowser.location(await browser.get(TestBrowser.location(start))))
    const path = variants(back.search.slice(1))[i]
    if (path === undefined) break
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await request(stack.url + path, { method, headers: { cookie: browser.cookieHeader(back.href) ?? '' } })
      seen.push(`${res.statusCode} ${await res.body.text()}`, JSON.stringify(res.headers))
    }
  }
  t.equal(seen.length, 18 * 2 * 2, 'every variant sent')
  t.ok(stack.logs.length > 18, 'the requests were logged')
  t.same(findLeaks(stack.secrets(), [...seen, ...stack.logs]), [], 'no code, state or token anywhere')
})
