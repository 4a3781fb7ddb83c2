import t from 'tap'
import { startStack } from '../helpers/stack.js'

// A team that names its own CSRF header (`csrfHeader`) gets refusals that name that header, not the default one.

t.test('a custom csrfHeader: the 403 of /api and of logout names it, and it lets requests through', async (t) => {
  const stack = await startStack({ proxy: { csrfHeader: 'x-requested-by' }, oauth: { csrfHeader: 'x-requested-by' } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const expected = { error: 'csrf_header_required', message: 'This route needs the header x-requested-by: 1.' }
  const api = await browser.get(`${stack.url}/api/user/info`, { 'x-csrf': '1' })
  t.equal(api.status, 403, '/api: the default header is not the one asked for')
  t.same(JSON.parse(api.body), expected, '/api: the message names the configured header')
  const logout = await browser.fetch(`${stack.url}/auth/logout`, { method: 'POST', headers: { 'x-csrf': '1' } })
  t.equal(logout.status, 403)
  t.same(JSON.parse(logout.body), expected, 'logout: the same body')
  t.equal((await browser.get(`${stack.url}/api/user/info`, { 'x-requested-by': '1' })).status, 200, 'with the configured header: through')
})

t.test('the default header is said as X-CSRF', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const api = await browser.get(`${stack.url}/api/user/info`)
  t.same(JSON.parse(api.body), { error: 'csrf_header_required', message: 'This route needs the header X-CSRF: 1.' })
})

t.test('a csrfHeader written with capitals (X-Requested-By) works as its lower case: header names ignore case', async (t) => {
  // It was refused at start ("expected a lower-case header name"): a surprise, since HTTP header names ignore case.
  const stack = await startStack({ proxy: { csrfHeader: 'X-Requested-By' }, oauth: { csrfHeader: 'X-Requested-By' } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const api = await browser.get(`${stack.url}/api/user/info`)
  t.same(JSON.parse(api.body), { error: 'csrf_header_required', message: 'This route needs the header x-requested-by: 1.' })
  t.equal((await browser.get(`${stack.url}/api/user/info`, { 'X-REQUESTED-BY': '1' })).status, 200, '/api: the header in any case lets it through')
  const logout = await browser.fetch(`${stack.url}/auth/logout`, { method: 'POST', headers: { 'x-requested-by': '1' } })
  t.equal(logout.status, 204, 'logout too')
})
