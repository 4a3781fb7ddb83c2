import t from 'tap'
import { connect } from 'node:net'
import { startStack, findLeaks } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// A request Node cannot parse is answered by Fastify's client error handler, which logs it at trace with the raw
// request bytes (`err.rawPacket`): its Cookie, Authorization and query string. Through oauth-routes' loggerOptions()
// (the example's logger) that field is redacted. The bytes are logged as a JSON array of numbers: findLeaks decodes it.

/** Sends `text` on a raw socket and resolves with everything the server answers until it closes. */
function raw (port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text))
    let got = ''
    socket.on('data', (chunk: Buffer) => { got += chunk.toString('latin1') })
    socket.on('close', () => resolve(got))
    socket.on('error', reject)
  })
}

t.test('a request Node cannot parse logs no code, state, cookie or Authorization', async (t) => {
  const stack = await startStack({ env: { LOG_LEVEL: 'trace' } })
  t.teardown(() => stack.close())
  const { browser } = await stack.login()
  const sid = browser.cookies.get(stack.url)?.get('sid')
  if (sid === undefined) throw new Error('no session cookie')
  // A second sign-in of the same browser, stopped at the provider's redirect back: its callback carries a live code.
  const start = await browser.get(`${stack.url}/auth/login`)
  const callback = new URL(TestBrowser.location(await browser.get(TestBrowser.location(start))))
  const code = callback.searchParams.get('code') as string
  const state = callback.searchParams.get('state') as string
  const cookies = [...(browser.cookies.get(stack.url) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ')
  const port = Number(new URL(stack.url).port)
  const target = `${callback.pathname}${callback.search}`

  // A header block over Node's limit: 431.
  const tooLarge = await raw(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${cookies}\r\n` +
    `X-Pad: ${'a'.repeat(70_000)}\r\n\r\n`)
  t.match(tooLarge, /^HTTP\/1\.1 431/, 'a header block over the limit is refused')
  // A malformed header line: 400.
  const bearer = 'at_leakcanary_from_the_client_0123456789'
  const malformed = await raw(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${cookies}\r\n` +
    `Authorization: Bearer ${bearer}\r\nBad Header: x\r\n\r\n`)
  t.match(malformed, /^HTTP\/1\.1 400/, 'a malformed header is refused')
  await new Promise((resolve) => setTimeout(resolve, 100))

  const clientErrors = stack.logs.filter((line) => /"msg":"client /.test(line))
  t.equal(clientErrors.length, 2, 'both are logged at trace')
  t.ok(clientErrors.every((line) => line.includes('"rawPacket":"[REDACTED]"')), 'each without its raw bytes')
  t.same(findLeaks([code, state, sid, bearer, ...stack.secrets()], stack.logs), [], 'no code, state, cookie or token in any log line')
})

t.test('findLeaks finds a secret in raw bytes logged as a JSON Buffer', async (t) => {
  const secret = 'code_leakcanary_0123456789'
  const line = JSON.stringify({ err: { rawPacket: Buffer.from(`GET /auth/callback?code=${secret} HTTP/1.1`) } })
  t.notOk(line.includes(secret), 'the line does not hold the secret as a string')
  t.equal(findLeaks([secret], [line]).length, 1, 'findLeaks decodes the bytes and finds it')
})
