import t from 'tap'
import { startStack } from '../helpers/stack.js'

// URLs Fastify's router refuses before any route runs (bad percent-encoding, a parameter longer than
// maxParamLength): Fastify's own body quotes the URL, and a callback's URL carries a code. The example answers them
// as everything else, {error, message} with no-store, naming nothing of the request.

t.test('a URL the router refuses: {error, message}, never the URL', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const cases: Array<[string, Record<string, string>, number]> = [
    ['/auth/%zz?code=code_mock_must_not_echo&state=s', {}, 400],
    [`/auth/sessions/${'A'.repeat(250)}?code=code_mock_must_not_echo`, { 'x-csrf': '1' }, 414]
  ]
  for (const [path, headers, status] of cases) {
    const res = await stack.browser().fetch(`${stack.url}${path}`, { method: path.startsWith('/auth/sessions') ? 'DELETE' : 'GET', headers })
    t.equal(res.status, status, path.slice(0, 30))
    t.same(JSON.parse(res.body), { error: 'bad_request', message: 'The request was not valid.' })
    t.equal(res.headers['cache-control'], 'no-store')
    t.notMatch(res.body, 'code_mock_must_not_echo')
  }
  t.notMatch(stack.logs.join(''), 'code_mock_must_not_echo', 'nor in a log line')
})
