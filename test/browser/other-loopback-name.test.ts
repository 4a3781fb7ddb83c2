import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { openPage, sharedBrowser } from '../helpers/chromium.js'
import { freePort } from '../helpers/free-port.js'
import { startStack } from '../helpers/stack.js'

// What users of `npm start` met (from the page review): the server printed "listening on http://localhost:3000"
// (PUBLIC_URL's default) and Fastify's own line "Server listening at http://127.0.0.1:3000"; a user who opened the
// other name of the same server got a page that loaded and a sign-in that could not finish. The callback goes to
// PUBLIC_URL, where the login cookie (set on the name the page was opened at) is not sent: invalid_state, and the
// sign-in window landed on the whole app ("The sign-in link expired or was already used") and stayed open, while
// the page that opened it, cut off from it, said "The sign-in window was closed before signing in finished." Now the
// page and the sign-in's start, opened under another loopback name of PUBLIC_URL's port, redirect to PUBLIC_URL
// first, and Fastify's line names PUBLIC_URL too. Here PUBLIC_URL is http://127.0.0.1:<port> and the user opens
// http://localhost:<port>/ (the mirror image of npm start's default).

const browserFor = sharedBrowser(t)

t.test('the page opened at the other loopback name: sent to PUBLIC_URL, one click signs the user in', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const other = stack.url.replace('127.0.0.1', 'localhost')
  const { page, context, watch } = await openPage(t, browser)
  await page.goto(`${other}/`)
  t.equal(new URL(page.url()).origin, stack.url, 'the page is at PUBLIC_URL')
  const seen = await watch.responses()
  t.same(seen.filter((r) => r.url === `${other}/`).map((r) => [r.status, r.headers.location]), [[302, `${stack.url}/`]], 'a 302 took it there')

  await page.getByTestId('login').waitFor({ state: 'visible' })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  if (!popup.isClosed()) await popup.waitForEvent('close', { timeout: 10000 })
  await page.getByTestId('user-info').waitFor({ state: 'visible', timeout: 10000 })
  t.same(context.pages().filter((p) => p !== page), [], 'no sign-in window left open')
  t.equal(await page.getByTestId('error').isVisible(), false, 'no error')
})

t.test('only the page and the sign-in\'s start, only from another loopback name of the same port, are redirected', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const port = new URL(stack.url).port
  const get = async (url: string, host: string, headers: Record<string, string> = {}): Promise<[number, string | undefined]> => {
    const res = await stack.app.inject({ method: 'GET', url, headers: { host, ...headers } })
    return [res.statusCode, res.headers.location as string | undefined]
  }
  t.same(await get('/', `localhost:${port}`), [302, `${stack.url}/`], 'the page, from localhost')
  t.same(await get('/?error=access_denied', `[::1]:${port}`), [302, `${stack.url}/?error=access_denied`], 'from [::1], its query kept')
  t.same(await get('/auth/login?mode=popup&returnTo=%2F', `localhost:${port}`), [302, `${stack.url}/auth/login?mode=popup&returnTo=%2F`], 'the sign-in\'s start')
  const head = await stack.app.inject({ method: 'HEAD', url: '/', headers: { host: `localhost:${port}` } })
  t.equal(head.statusCode, 302, 'HEAD of the page too')
  // Not kept by the browser: where it leads depends on PUBLIC_URL, which a restart may change.
  const redirected = await stack.app.inject({ method: 'GET', url: '/', headers: { host: `localhost:${port}` } })
  t.same([redirected.statusCode, redirected.headers['cache-control']], [302, 'no-store'], 'the redirect: cache-control no-store')

  t.equal((await get('/', `127.0.0.1:${port}`))[0], 200, 'PUBLIC_URL\'s own host: the page')
  t.same(await get('/', 'app.example.com'), [200, undefined], 'a host that is not loopback (a reverse proxy\'s): the page')
  t.same(await get('/', `localhost:${Number(port) === 65535 ? 1 : Number(port) + 1}`), [200, undefined], 'another port: the page')
  t.same(await get('/', `localhost:${port}`, { 'x-forwarded-host': 'app.example.com' }), [200, undefined], 'X-Forwarded-Host of a trusted proxy: the page')
  t.same(await get('/auth/session', `localhost:${port}`), [200, undefined], 'an API call: answered, not redirected')
  t.same(await get('/api/user/info', `localhost:${port}`, { 'x-csrf': '1' }), [401, undefined], 'an API call: answered (signed out), not redirected')
  t.not((await get('/auth/callback?code=c&state=s', `localhost:${port}`))[1], `${stack.url}/auth/callback?code=c&state=s`, 'the callback: not sent on to PUBLIC_URL')
  const post = await stack.app.inject({ method: 'POST', url: '/auth/logout', headers: { host: `localhost:${port}`, 'x-csrf': '1' } })
  t.not(post.statusCode, 302, 'a POST: not redirected')

  // An absolute-form request target (no browser sends one to an origin server; a security review did, by hand):
  // Fastify routes it by its path, and its Location was `<PUBLIC_URL>http://x@evil.example/?q=1`. Only its path and
  // query are taken.
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.end(`GET http://x@evil.example/?q=1 HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`)
    })
    let answer = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => { answer += chunk }).on('end', () => { resolve(answer) }).on('error', reject)
  })
  t.match(raw, /^HTTP\/1\.1 302 /, 'redirected')
  t.equal(/^location: (.*)$/mi.exec(raw)?.[1]?.trim(), `${stack.url}/?q=1`, 'to PUBLIC_URL\'s origin with the target\'s path and query only')
})

t.test('npm start: both lines that say where it listens name PUBLIC_URL as the address to open', async (t) => {
  // The built server (`npm test` builds it first), with PUBLIC_URL's default, http://localhost:$PORT.
  const server = resolve(dirname(fileURLToPath(import.meta.url)), '../../example/dist/server.js')
  const port = await freePort()
  const child = spawn(process.execPath, [server], { env: { PATH: process.env.PATH ?? '', PORT: String(port), ENV_FILE: '/nonexistent/.env' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill() })
  let output = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      if (/listening on /.test(output) && /Server listening at /.test(output)) resolve()
    })
    child.once('exit', (code) => { reject(new Error(`the server exited (${String(code)}) before listening:\n${output}`)) })
  })
  const lines = output.split('\n').filter((line) => /listening/i.test(line))
  t.ok(lines.includes(`listening on http://localhost:${port}`), 'its own line names PUBLIC_URL')
  t.ok(lines.some((line) => line.includes(`"Server listening at http://127.0.0.1:${port}; open http://localhost:${port} (PUBLIC_URL)"`)), 'Fastify\'s names the socket\'s address and PUBLIC_URL')
})
