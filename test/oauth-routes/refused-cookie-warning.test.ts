import t, { type Test } from 'tap'
import { createHmac } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { composeReadmeApp, providerForPort } from '../helpers/readme-composition.js'

// Without token-store's sessionCookie, oauth-routes tells a cookie @fastify/session refused (signed by an instance
// with another SESSION_SECRET) by a session record under the cookie's id. It took the id as everything before the
// last '.', so with a cookiePrefix ('s:') it looked up 's:<id>' and never warned; and a cookie @fastify/session had
// opened (signed with an older secret of its list) of a session without oauth-routes' stamp (a cart) got the warning
// on a healthy rotation, after which a real mismatch went unsaid.

const OLD = 'o'.repeat(40)
const NEW = 'n'.repeat(40)
const OTHER = 'x'.repeat(40)
/** A value signed as @fastify/session (its cookie-signature) signs it. */
const sign = (value: string, secret: string): string => `${value}.${createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '')}`
const setField = (request: FastifyRequest): void => { (request.session as unknown as { set: (k: string, v: unknown) => void }).set('cart', ['apple']) }
const getField = (request: FastifyRequest): unknown => (request.session as unknown as { get: (k: string) => unknown }).get('cart')

/** The README's app without token-store's sessionCookie, with a cart route of the app's own; its id once saved. */
async function cartApp (t: Test, secret: string[], cookiePrefix = ''): Promise<{ url: string, sid: string, warnings: () => string[] }> {
  const { port, url, provider } = await providerForPort(t, 'cart')
  const logs: string[] = []
  const app: FastifyInstance = await composeReadmeApp({
    port,
    provider,
    secret,
    tokenStoreCookie: null,
    logs,
    session: { cookiePrefix },
    sessionScope: (scope) => {
      scope.get('/cart', async (request) => { setField(request); return { ok: true } })
      scope.get('/cart/show', async (request) => ({ cart: getField(request) ?? null }))
    }
  })
  t.teardown(() => app.close())
  const setCookie = (await fetch(`${url}/cart`)).headers.get('set-cookie') ?? ''
  const value = decodeURIComponent(/sid=([^;]+)/.exec(setCookie)?.[1] ?? '').slice(cookiePrefix.length)
  const sid = value.slice(0, value.lastIndexOf('.'))
  const warnings = (): string[] => logs.map((l) => JSON.parse(l) as { level: number, msg: string })
    .filter((l) => l.level === 40 && /did not verify here/.test(l.msg)).map((l) => l.msg)
  return { url, sid, warnings }
}

t.test('a live session\'s cookie signed with an older secret of the list (a rotation), no stamp: no warning', async (t) => {
  const { url, sid, warnings } = await cartApp(t, [NEW, OLD])
  const cookie = `sid=${encodeURIComponent(sign(sid, OLD))}`
  const shown = await (await fetch(`${url}/cart/show`, { headers: { cookie } })).json() as { cart: unknown }
  t.same(shown.cart, ['apple'], '@fastify/session opens it: the session is live')
  await fetch(`${url}/auth/session`, { headers: { cookie } })
  t.same(warnings(), [], 'nothing was refused: no line')
  // A real mismatch afterwards is still said.
  await fetch(`${url}/auth/session`, { headers: { cookie: `sid=${encodeURIComponent(sign(sid, OTHER))}` } })
  t.equal(warnings().length, 1, 'the first real one is')
})

for (const cookiePrefix of ['', 's:']) {
  t.test(`a live session's cookie signed with a secret this instance lacks, cookiePrefix '${cookiePrefix}': one warning`, async (t) => {
    const { url, sid, warnings } = await cartApp(t, [NEW], cookiePrefix)
    t.ok(sid.length > 0 && !sid.includes(':'), `saved: ${cookiePrefix}<id>.<signature>`)
    await fetch(`${url}/auth/session`, { headers: { cookie: `sid=${encodeURIComponent(cookiePrefix + sign(sid, OTHER))}` } })
    t.equal(warnings().length, 1, 'one "did not verify here" warning')
  })
}
