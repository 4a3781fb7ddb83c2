import t from 'tap'
import { startStack, findLeaks } from '../helpers/stack.js'

// The provider's faults give 502/504 JSON, never its body,
// and the server stays up (the next call succeeds).

const CSRF = { 'x-csrf': '1' }

t.test('provider faults on userinfo and top-up', async (t) => {
  const stack = await startStack({ proxy: { timeoutMs: 300 } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()

  const cases: Array<[string, 'userinfo' | 'topup', Parameters<typeof stack.mock.setFault>[1], number, string]> = [
    ['500', 'userinfo', 'http500', 502, 'bad_gateway'],
    ['non-JSON', 'userinfo', 'non_json', 502, 'bad_gateway'],
    ['truncated JSON', 'userinfo', 'truncated', 502, 'bad_gateway'],
    ['wrong types', 'userinfo', 'wrong_types', 502, 'bad_gateway'],
    ['null body', 'userinfo', 'null_body', 502, 'bad_gateway'],
    ['oversize body', 'userinfo', 'oversize', 502, 'bad_gateway'],
    ['an error in a 200', 'userinfo', 'error_in_200', 502, 'bad_gateway'],
    ['a redirect elsewhere', 'userinfo', 'redirect', 502, 'bad_gateway'],
    ['503', 'userinfo', 'http503', 502, 'bad_gateway'],
    ['429', 'userinfo', 'http429', 503, 'upstream_unavailable'],
    ['no answer in time', 'userinfo', 'hang', 504, 'upstream_timeout'],
    ['top-up 500', 'topup', 'http500', 502, 'bad_gateway'],
    ['top-up wrong types', 'topup', 'wrong_types', 502, 'bad_gateway'],
    ['top-up no answer in time', 'topup', 'hang', 504, 'upstream_timeout']
  ]
  for (const [name, endpoint, fault, status, error] of cases) {
    stack.mock.setFault(endpoint, fault, { times: 1 })
    const path = endpoint === 'userinfo' ? '/api/user/info' : '/api/user/topup'
    const res = await browser.get(`${stack.url}${path}`, CSRF)
    t.equal(res.status, status, `${name}: status`)
    t.match(String(res.headers['content-type']), /^application\/json/, `${name}: JSON`)
    const body = JSON.parse(res.body)
    t.same(Object.keys(body).sort(), ['error', 'message'], `${name}: only error and message`)
    t.equal(body.error, error, `${name}: error code`)
    t.equal(res.headers['set-cookie'] === undefined || !String(res.headers['set-cookie']).includes('mock'), true, `${name}: no provider cookie`)
    const next = await browser.get(`${stack.url}${path}`, CSRF)
    t.equal(next.status, 200, `${name}: the server stays up and the session is kept`)
  }
  t.same(findLeaks(stack.secrets(), [...browser.transcript(stack.url), ...stack.logs]), [])
})

t.test('the provider\'s Set-Cookie never comes back, the browser\'s cookie never goes up', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.setFault('userinfo', 'set_cookie', { times: 1 })
  const res = await browser.get(`${stack.url}/api/user/info`, { ...CSRF, authorization: 'Bearer browser-supplied' })
  t.equal(res.status, 200)
  t.equal(res.headers['set-cookie'], undefined)
  // Had the browser's Authorization gone up instead of the session's token, the mock
  // would have answered 401 and the proxy would have refreshed.
  t.equal(stack.mock.counts().grants.refresh_token, 0)
})

t.test('without the X-CSRF header: 403, for every method', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  stack.mock.resetCounts() // the sign-in's own userinfo call
  for (const method of ['GET', 'POST'] as const) {
    const variants: Array<Record<string, string>> = [{}, { 'x-csrf': '0' }, { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }]
    for (const headers of variants) {
      const res = await browser.fetch(`${stack.url}/api/user/info`, { method, headers, body: method === 'POST' ? 'a=b' : undefined })
      t.equal(res.status, 403, `${method} ${JSON.stringify(headers)}`)
      t.same(JSON.parse(res.body).error, 'csrf_header_required')
    }
  }
  const withHeader = await browser.fetch(`${stack.url}/api/user/info`, { method: 'POST', headers: { 'x-csrf': '1', 'content-type': 'text/plain' }, body: 'x' })
  t.equal(withHeader.status, 404, 'only GET is routed')
  t.same(JSON.parse(withHeader.body).error, 'not_found')
  t.equal(stack.mock.counts().userinfo, 0, 'no upstream call without the header')
})

t.test('without a session: 401 JSON, never a redirect to the provider', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = stack.browser()
  for (const path of ['/api/user/info', '/api/user/topup']) {
    const res = await browser.get(`${stack.url}${path}`, CSRF)
    t.equal(res.status, 401)
    t.same(JSON.parse(res.body), { error: 'unauthenticated', message: 'Sign in first.' })
    t.equal(res.headers.location, undefined)
  }
  t.equal(stack.mock.counts().userinfo + stack.mock.counts().topup, 0)
})
