import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { sharedBrowser, openPage } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

const COMMON = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin-allow-popups',
  'cross-origin-resource-policy': 'same-origin'
}

t.test('the page, its script and style carry the CSP and the usual security headers', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  const main = await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.ok(main, 'the page answered')
  if (main === null) return
  t.equal(main.status(), 200)
  const headers = main.headers()
  t.match(headers, { ...COMMON, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
  t.match(headers['permissions-policy'], /camera=\(\)/)
  t.notOk(headers['strict-transport-security'], 'no HSTS over plain http')

  const csp = new Map((headers['content-security-policy'] ?? '').split(';').map((d) => {
    const [name = '', ...values] = d.trim().split(/\s+/)
    return [name, values.join(' ')] as const
  }))
  t.equal(csp.get('default-src'), "'none'")
  t.equal(csp.get('script-src'), "'self'", 'no inline script, no eval, no other origin')
  t.equal(csp.get('style-src'), "'self'", 'no inline style')
  t.equal(csp.get('connect-src'), "'self'", 'calls only its own origin')
  t.equal(csp.get('img-src'), "'self' data:")
  t.equal(csp.get('frame-ancestors'), "'none'")
  t.equal(csp.get('base-uri'), "'none'")
  t.equal(csp.get('form-action'), "'none'")
  t.equal(csp.get('require-trusted-types-for'), "'script'")

  // The script and style the page loaded (files of example/public, named by content hash).
  const assets = [
    await page.locator('script[src]').getAttribute('src'),
    await page.locator('link[rel="stylesheet"]').getAttribute('href')
  ]
  t.match(assets, [/^\/assets\/app\.[0-9a-f]+\.js$/, /^\/assets\/app\.[0-9a-f]+\.css$/])
  for (const asset of assets) {
    const answer = await page.request.get(`${stack.url}${asset}`)
    t.equal(answer.status(), 200, `${asset}`)
    t.match(answer.headers(), { ...COMMON, 'cache-control': 'public, max-age=31536000, immutable' }, `${asset}: the same headers`)
    t.equal(answer.headers()['content-security-policy'], headers['content-security-policy'], `${asset}: the same policy`)
    t.match(answer.headers()['content-type'], asset?.endsWith('.js') === true ? 'text/javascript' : 'text/css')
  }
  const favicon = await page.request.get(`${stack.url}/favicon.ico`)
  t.equal(favicon.status(), 204, '/favicon.ico answers (a 404 would be a console error)')

  t.same(watch.errorsAt(stack.url), [], 'the page itself caused no console error and no violation')

  // The policy holds in the browser: an injected inline script does not run...
  await page.addScriptTag({ content: 'document.documentElement.dataset.injected = "ran"' }).catch(() => null)
  t.equal(await page.evaluate(() => document.documentElement.dataset.injected), undefined, 'inline script blocked')
  // ...nor does HTML from a string, whatever the script.
  const sink = await page.evaluate(() => {
    try {
      document.body.insertAdjacentHTML('beforeend', '<b id="sunk">x</b>')
      return 'allowed'
    } catch (err) {
      return (err as Error).name
    }
  })
  t.equal(sink, 'TypeError', 'Trusted Types refuse string-to-HTML sinks')
  t.equal(await page.locator('#sunk').count(), 0)
})

t.test('no other site can frame the page', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  // A page of another origin (its own server on another port, with no policy of its own) frames
  // the app. (A page the test fulfils itself counts as public and may not reach 127.0.0.1 at all.)
  const framer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(`<!doctype html><title>framer</title><iframe id="app" src="${stack.url}/"></iframe>`)
  })
  await new Promise<void>((resolve) => framer.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => framer.close(() => resolve())))
  const framerUrl = `http://127.0.0.1:${(framer.address() as AddressInfo).port}/`

  const { page } = await openPage(t, browser)
  const answered = page.waitForResponse(`${stack.url}/`)
  await page.goto(framerUrl)
  t.equal((await answered).status(), 200, 'the app answered the frame\'s request')
  const frame = page.frames().find((f) => f !== page.mainFrame())
  t.ok(frame, 'the frame exists')
  t.not(frame?.url(), `${stack.url}/`, 'but the browser did not show the app in it')
  t.equal(await frame?.locator('[data-testid="login"]').count(), 0, 'nothing of the app rendered')
})
