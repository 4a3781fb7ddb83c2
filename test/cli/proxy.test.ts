import { readFile } from 'node:fs/promises'
import { createServer, connect, type Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { parseEnvFile } from 'aihubmix-oauth'
import { closedPort, lines, runCli, runInstalled, tempDir } from './capture.js'

// Behind a proxy, as npm and curl are told about it (HTTPS_PROXY / HTTP_PROXY, NO_PROXY): create-app and doctor reach
// the provider through it. The proxy here is a real one on 127.0.0.1 that tunnels CONNECT requests (what undici's
// proxy agent sends) and records each.

const REDIRECT = 'http://localhost:3000/auth/callback'

async function startConnectProxy (t: Test): Promise<{ url: string, tunnels: string[], open: () => number }> {
  const tunnels: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    sockets.add(client)
    client.once('close', () => sockets.delete(client))
    client.once('data', (head) => {
      const match = /^CONNECT ([^\s:]+):(\d+) HTTP\/1\.[01]\r\n/.exec(head.toString('latin1'))
      if (match === null) {
        client.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n')
        return
      }
      tunnels.push(`${match[1] ?? ''}:${match[2] ?? ''}`)
      const upstream = connect(Number(match[2]), match[1] ?? '', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
        upstream.pipe(client)
        client.pipe(upstream)
      })
      sockets.add(upstream)
      upstream.once('close', () => sockets.delete(upstream))
      upstream.on('error', () => client.destroy())
      client.on('error', () => upstream.destroy())
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { url: `http://127.0.0.1:${address.port}`, tunnels, open: () => sockets.size }
}

t.test('create-app through HTTP_PROXY: registered through the tunnel, written as usual', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const proxy = await startConnectProxy(t)
  const cwd = await tempDir(t)
  const env = { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken, HTTP_PROXY: proxy.url }
  const result = await runCli(['create-app', '--name', 'x', '--redirect-uri', REDIRECT, '--base-url', mock.url], { env, cwd })
  t.equal(result.code, 0, { output: result.all })
  t.same(proxy.tunnels, [new URL(mock.url).host], 'one tunnel, to the provider')
  // The agent run() made for the proxy is closed when the command ends: its kept-alive tunnel (kept 4 s otherwise)
  // is gone at once.
  const deadline = Date.now() + 1000
  while (proxy.open() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(proxy.open(), 0, 'the tunnel is closed when the command ends')
  t.equal(parseEnvFile(await readFile(join(cwd, '.env'), 'utf8')).AIHUBMIX_CLIENT_ID, mock.apps[0]?.clientId)

  // NO_PROXY names the provider's host: straight there.
  const direct = await runCli(['create-app', '--name', 'y', '--redirect-uri', REDIRECT, '--base-url', mock.url, '--env-file', 'b.env'],
    { env: { ...env, no_proxy: '127.0.0.1' }, cwd })
  t.equal(direct.code, 0, { output: direct.all })
  t.equal(proxy.tunnels.length, 1, 'NO_PROXY: no tunnel')
})

t.test('doctor through HTTPS_PROXY (lower case, as curl reads it): the provider\'s checks pass through the tunnel', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const proxy = await startConnectProxy(t)
  const cwd = await tempDir(t)
  const app = mock.createApp({ name: 'doctor', redirectUri: REDIRECT })
  const env = {
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: app.clientId,
    AIHUBMIX_CLIENT_SECRET: app.clientSecret,
    PUBLIC_URL: 'http://localhost:3000',
    SESSION_SECRET: 'session-secret-of-forty-characters-xxxxx',
    // HTTPS_PROXY serves https only; the mock is http: HTTP_PROXY is what it takes, in lower case here.
    http_proxy: proxy.url
  }
  const result = await runCli(['doctor'], { env, cwd })
  t.match(result.stdout, /^ok {3}client credentials:/m, { output: result.all })
  t.ok(proxy.tunnels.length >= 2 && proxy.tunnels.every((h) => h === new URL(mock.url).host), `every request tunnelled to the provider (${proxy.tunnels.length})`)
})

t.test('a proxy that is down, or no URL: one line naming the variable, never its value', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const cwd = await tempDir(t)
  const argv = ['create-app', '--name', 'x', '--redirect-uri', REDIRECT, '--base-url', mock.url]
  const down = `http://user:pa55word@127.0.0.1:${await closedPort()}`
  const refused = await runCli(argv, { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken, HTTPS_PROXY: down, HTTP_PROXY: down }, cwd })
  t.equal(refused.code, 1)
  t.same(lines(refused.stderr), [`error: cannot reach the provider at ${mock.url}: connection refused (through the proxy in HTTPS_PROXY / HTTP_PROXY)`])
  t.notOk(refused.all.includes('pa55word'), 'the proxy\'s password is not printed')
  t.equal(mock.counts().oauth_apps, 0)

  const bad = await runCli(argv, { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken, HTTPS_PROXY: 'proxy.corp:8080 secret' }, cwd })
  t.equal(bad.code, 2)
  t.same(lines(bad.stderr), ['error: HTTPS_PROXY is not a proxy URL like http://proxy.example.com:8080 (or unset it)'])
  t.notOk(bad.all.includes('secret'), 'the value is not echoed')
})

t.test('the installed command through HTTP_PROXY', async (t) => {
  const mock = await startMockProvider({ port: 0 })
  t.teardown(() => mock.close())
  const proxy = await startConnectProxy(t)
  const cwd = await tempDir(t)
  const result = await runInstalled(['create-app', '--name', 'x', '--redirect-uri', REDIRECT, '--base-url', mock.url],
    { env: { AIHUBMIX_DEVELOPER_TOKEN: mock.developerToken, HTTP_PROXY: proxy.url }, cwd })
  t.equal(result.code, 0, { output: result.all })
  t.same(proxy.tunnels, [new URL(mock.url).host])
})
