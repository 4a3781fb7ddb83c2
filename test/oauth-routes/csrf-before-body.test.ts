import t, { type Test } from 'tap'
import { TestBrowser } from '../helpers/browser.js'
import { startComposedApp, type ComposedApp } from '../helpers/readme-composition.js'

// The routes that need X-CSRF: 1 (logout, ending a session) refuse a request without it before its body is read:
// a plain HTML sign-out form (application/x-www-form-urlencoded, a type the app has no parser for) or a multipart
// body gets the documented 403 csrf_header_required, not Fastify's 415. With the header, a body these routes
// cannot read is answered with what to do: they take none.

const CSRF = { 'x-csrf': '1' }
const REFUSED = { error: 'csrf_header_required', message: 'This route needs the header X-CSRF: 1.' }
const NO_BODY = { error: 'bad_request', message: 'This route takes no request body: send it without one (and without Content-Type).' }

const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
const MULTIPART = { 'content-type': 'multipart/form-data; boundary=x' }
const MULTIPART_BODY = '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'

/** Signs a browser in and gives its session's id in the user's list. */
async function signedIn (t: Test, app: ComposedApp): Promise<{ browser: TestBrowser, id: string }> {
  const browser = new TestBrowser()
  t.equal((await app.signIn(browser)).headers.location, '/')
  const listed = JSON.parse((await browser.get(`${app.url}/auth/sessions`)).body) as { sessions: Array<{ id: string }> }
  return { browser, id: (listed.sessions[0] as { id: string }).id }
}

async function stillSignedIn (app: ComposedApp, browser: TestBrowser): Promise<boolean> {
  return (JSON.parse((await browser.get(`${app.url}/auth/session`)).body) as { authenticated: boolean }).authenticated
}

t.test('a plain form or a multipart body without X-CSRF: 1 gets 403 csrf_header_required, and nothing ends', async (t) => {
  const app = await startComposedApp(t)
  const { browser, id } = await signedIn(t, app)
  const requests: Array<[string, () => ReturnType<TestBrowser['post']>]> = [
    ['form, empty body', () => browser.post(`${app.url}/auth/logout`, FORM, '')],
    ['form, a field', () => browser.post(`${app.url}/auth/logout`, FORM, 'returnTo=%2F')],
    ['everywhere, form', () => browser.post(`${app.url}/auth/logout?everywhere=1`, FORM, 'a=1')],
    ['multipart', () => browser.post(`${app.url}/auth/logout`, MULTIPART, MULTIPART_BODY)],
    ['DELETE, form', () => browser.fetch(`${app.url}/auth/sessions/${id}`, { method: 'DELETE', headers: FORM, body: 'a=1' })],
    ['DELETE, multipart', () => browser.fetch(`${app.url}/auth/sessions/${id}`, { method: 'DELETE', headers: MULTIPART, body: MULTIPART_BODY })]
  ]
  for (const [name, send] of requests) {
    const res = await send()
    t.equal(res.status, 403, name)
    t.same(JSON.parse(res.body), REFUSED, name)
    t.equal(res.headers['cache-control'], 'no-store', name)
  }
  t.ok(await stillSignedIn(app, browser), 'still signed in')
})

t.test('with X-CSRF: 1, a body these routes cannot read answers what to do, and nothing ends', async (t) => {
  const app = await startComposedApp(t)
  const { browser, id } = await signedIn(t, app)
  const requests: Array<[string, () => ReturnType<TestBrowser['post']>]> = [
    ['form', () => browser.post(`${app.url}/auth/logout`, { ...CSRF, ...FORM }, 'a=1')],
    ['multipart', () => browser.post(`${app.url}/auth/logout`, { ...CSRF, ...MULTIPART }, MULTIPART_BODY)],
    ['DELETE, form', () => browser.fetch(`${app.url}/auth/sessions/${id}`, { method: 'DELETE', headers: { ...CSRF, ...FORM }, body: 'a=1' })]
  ]
  for (const [name, send] of requests) {
    const res = await send()
    t.equal(res.status, 415, name)
    t.same(JSON.parse(res.body), NO_BODY, name)
  }
  const emptyJson = await browser.post(`${app.url}/auth/logout`, { ...CSRF, 'content-type': 'application/json' }, '')
  t.same([emptyJson.status, JSON.parse(emptyJson.body)], [400, NO_BODY], 'JSON\'s content type with no body')
  t.ok(await stillSignedIn(app, browser), 'still signed in')
  t.equal((await browser.post(`${app.url}/auth/logout`, CSRF)).status, 204, 'without a body, the logout works')
  t.notOk(await stillSignedIn(app, browser), 'signed out')
})
