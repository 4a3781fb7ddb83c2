import t from 'tap'
import { startStack, findLeaks } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// The token endpoint's answers: non-JSON, null, missing access_token, a 200 that carries an
// error, redirects, oversize bodies, slow answers: the login fails cleanly.

t.test('a broken token endpoint fails the login cleanly', async (t) => {
  const stack = await startStack({ proxy: { timeoutMs: 300 } })
  t.teardown(() => stack.close())
  const faults = ['http500', 'http503', 'http429', 'non_json', 'truncated', 'wrong_types', 'null_body', 'error_in_200', 'redirect', 'oversize', 'hang'] as const
  for (const fault of faults) {
    const browser = new TestBrowser()
    const start = await browser.get(`${stack.url}/auth/login`)
    const back = await browser.get(TestBrowser.location(start))
    stack.mock.setFault('token', fault, { times: 1 })
    const done = await browser.get(TestBrowser.location(back))
    t.equal(done.status, 302, `${fault}: redirect`)
    t.equal(done.headers.location, '/?error=token_exchange_failed', `${fault}: fixed error code`)
    const info = await browser.get(`${stack.url}/api/user/info`, { 'x-csrf': '1' })
    t.equal(info.status, 401, `${fault}: not signed in`)
    t.same(findLeaks(stack.secrets(), browser.transcript(stack.url)), [], `${fault}: nothing leaked`)
  }
  t.same(findLeaks(stack.secrets(), stack.logs), [], 'no secret in the logs')
})

t.test('a popup login that fails tells the opener, with a fixed code', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new TestBrowser()
  const start = await browser.get(`${stack.url}/auth/login?mode=popup`)
  const back = await browser.get(TestBrowser.location(start))
  stack.mock.setFault('token', 'http500', { times: 1 })
  const done = await browser.get(TestBrowser.location(back))
  t.equal(done.status, 200)
  t.match(done.body, '"type":"aihubmix:login","ok":false,"error":"token_exchange_failed"')
})
