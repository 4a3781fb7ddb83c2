import t from 'tap'
import { startStack } from '../helpers/stack.js'

// Every route of the example answers `{error, message}`: its 404 too, at the root, under /auth and under /api,
// and without quoting the request (Fastify's own 404 body names the method and URL, a callback's code with it).

t.test('an unknown route answers 404 {error: not_found, message} that names nothing of the request', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = stack.browser()
  for (const path of ['/nope?code=CODE-MUST-NOT-ECHO&state=STATE-MUST-NOT-ECHO', '/auth/callbackx?code=CODE-MUST-NOT-ECHO', '/api/nope?code=CODE-MUST-NOT-ECHO']) {
    const res = await browser.get(`${stack.url}${path}`, { 'x-csrf': '1' })
    t.equal(res.status, 404, path)
    t.match(res.headers['content-type'], /^application\/json/)
    const body = JSON.parse(res.body) as Record<string, unknown>
    t.same(Object.keys(body).sort(), ['error', 'message'], `${path}: {error, message}`)
    t.equal(body.error, 'not_found')
    t.notMatch(res.body, /MUST-NOT-ECHO|nope|callbackx|GET/, `${path}: nothing of the request in the answer`)
  }
  const post = await browser.post(`${stack.url}/nope?code=CODE-MUST-NOT-ECHO`, { 'x-csrf': '1' })
  t.equal(post.status, 404)
  t.same(JSON.parse(post.body), { error: 'not_found', message: 'No such route.' })
})
