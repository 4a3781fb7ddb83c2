import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { startMockProvider, type MockProvider, type MockProviderOptions } from '@fastify-aihubmix/mock-provider'
import { buildApp, loggerOptions, type BuildOptions } from '../../example/app.js'
import { readConfig } from 'aihubmix-oauth'
import { TestBrowser, type Answer } from './browser.js'
import { freePort } from './free-port.js'

export interface Stack {
  mock: MockProvider
  app: FastifyInstance
  /** The app's origin, e.g. http://127.0.0.1:PORT */
  url: string
  clientSecret: string
  /** Every log line the app wrote (JSON strings). */
  logs: string[]
  browser (): TestBrowser
  /** Signs a new browser in (redirect mode) and returns it with the final answer. */
  login (opts?: { returnTo?: string, browser?: TestBrowser }): Promise<{ browser: TestBrowser, final: Answer }>
  /** The session id behind a browser's session cookie (to reach its token set in tests). */
  sessionIdOf (browser: TestBrowser): string
  /** Every string that must never appear anywhere the outside can see. */
  secrets (): string[]
  /** Every instance (the first is `app`/`url`); more than one with `instances` (they share `redis`). */
  peers: Array<{ app: FastifyInstance, url: string }>
  /** Stops instance `i` and starts a new one on the same port with the same configuration. */
  restart (i: number): Promise<void>
  close (): Promise<void>
}

export interface StackOptions {
  mock?: MockProviderOptions
  env?: Record<string, string>
  /** The proxy's options, or a function of the started mock provider giving them (a `revocationUrl` on it). */
  proxy?: BuildOptions['proxy'] | ((mock: MockProvider) => BuildOptions['proxy'])
  tokenStore?: BuildOptions['tokenStore']
  redis?: BuildOptions['redis']
  oauth?: BuildOptions['oauth']
  /** How many app instances share the configuration (and `redis`); default 1. */
  instances?: number
}

/** Mock provider + the example app, both listening on 127.0.0.1 port 0. */
export async function startStack (opts: StackOptions = {}): Promise<Stack> {
  const mock = await startMockProvider({ tokenPrefix: 'leakcanary', ...opts.mock })
  const logs: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'))
      cb()
    }
  })
  // Instances that share sessions share the secrets.
  const sessionSecret = opts.env?.SESSION_SECRET ?? randomBytes(32).toString('base64url')
  // PUBLIC_URL must be known before listening; pick the ports first. A port free a moment ago may be taken by the time
  // it is listened on (another test's outgoing connection gets its local port from the same range): new ports then.
  let ports: number[] = []
  let config: ReturnType<typeof readConfig> | undefined
  let demo: ReturnType<MockProvider['createApp']> | undefined
  const peers: Array<{ app: FastifyInstance, url: string }> = []
  for (let attempt = 1; ; attempt++) {
    ports = []
    for (let i = 0; i < (opts.instances ?? 1); i++) ports.push(await freePort())
    const probe = ports[0] as number
    config = readConfig({ PORT: String(probe), PUBLIC_URL: `http://127.0.0.1:${probe}`, LOG_LEVEL: 'info', ...opts.env, SESSION_SECRET: sessionSecret })
    demo = mock.createApp({ name: 'test app', redirectUri: config.redirectUri })
    try {
      for (const port of ports) peers.push({ app: await build(port), url: `http://127.0.0.1:${port}` })
      break
    } catch (err) {
      for (const peer of peers.splice(0)) await peer.app.close()
      if ((err as { code?: string }).code !== 'EADDRINUSE' || attempt === 5) {
        await mock.close()
        throw err
      }
    }
  }
  const url = peers[0]?.url as string
  async function build (port: number): Promise<FastifyInstance> {
    if (config === undefined || demo === undefined) throw new Error('no configuration')
    const instance = await buildApp({
      config,
      provider: { baseUrl: mock.url, clientId: demo.clientId, clientSecret: demo.clientSecret },
      logger: { ...loggerOptions(config.logLevel), stream },
      proxy: typeof opts.proxy === 'function' ? opts.proxy(mock) : opts.proxy,
      tokenStore: opts.tokenStore,
      oauth: opts.oauth,
      redis: opts.redis
    })
    try {
      await instance.listen({ port, host: '127.0.0.1' })
    } catch (err) {
      await instance.close()
      throw err
    }
    return instance
  }
  const app = (peers[0] as { app: FastifyInstance }).app
  const { clientSecret } = demo
  const { sessionSecret: signingSecret } = config

  const stack: Stack = {
    mock,
    app,
    url,
    clientSecret,
    logs,
    browser: () => new TestBrowser(),
    async login ({ returnTo, browser = new TestBrowser() } = {}) {
      const q = returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`
      const start = await browser.get(`${url}/auth/login${q}`)
      const authorize = await browser.get(TestBrowser.location(start))
      const final = await browser.get(TestBrowser.location(authorize))
      return { browser, final }
    },
    sessionIdOf (browser) {
      const jar = browser.cookies.get(url)
      const raw = jar?.get('sid')
      if (raw === undefined) throw new Error('no session cookie')
      const unsigned = fastifyCookie.unsign(decodeURIComponent(raw), signingSecret)
      if (!unsigned.valid || unsigned.value === null) throw new Error('bad session cookie')
      return unsigned.value
    },
    secrets () {
      const issued = mock.issued()
      return [
        ...issued.accessTokens,
        ...issued.refreshTokens,
        ...issued.codes,
        ...issued.clientSecrets,
        signingSecret
      ]
    },
    peers,
    async restart (i) {
      const peer = peers[i]
      if (peer === undefined) throw new Error(`no instance ${i}`)
      await peer.app.close()
      peer.app = await build(ports[i] as number)
      if (i === 0) stack.app = peer.app
    },
    async close () {
      for (const peer of peers) await peer.app.close()
      await mock.close()
    }
  }
  return stack
}

/** Asserts that no secret appears in any of the haystacks; returns the leaks found. */
export function findLeaks (secrets: string[], haystacks: string[]): string[] {
  const leaks: string[] = []
  const searched = haystacks.map(withBuffersDecoded)
  for (const secret of secrets) {
    if (secret.length < 8) continue
    for (const hay of searched) {
      if (hay.includes(secret) || hay.includes(encodeURIComponent(secret))) {
        leaks.push(`${secret.slice(0, 6)}… in ${hay.slice(0, 120)}`)
        break
      }
    }
  }
  return leaks
}

/**
 * `text` with every Buffer that pino wrote as JSON (`{"type":"Buffer","data":[71,69,84,...]}`) appended decoded: raw
 * request bytes logged that way hold their secrets as numbers, where a search for the string finds nothing.
 */
function withBuffersDecoded (text: string): string {
  const decoded: string[] = []
  for (const m of text.matchAll(/"type":"Buffer","data":\[([\d,]*)\]/g)) {
    decoded.push(Buffer.from((m[1] ?? '').split(',').filter((n) => n !== '').map(Number)).toString('latin1'))
  }
  return decoded.length === 0 ? text : `${text}\n${decoded.join('\n')}`
}

/**
 * Moves the browser's session's token set in time: it now expires `msFromNow` from now (negative: expired, due for
 * refresh), after the same life as before.
 */
export async function setExpiry (stack: Stack, browser: TestBrowser, msFromNow: number): Promise<void> {
  const sid = stack.sessionIdOf(browser)
  const set = await stack.app.tokenStore.get(sid)
  if (set === null) throw new Error('no token set')
  const expiresAt = Date.now() + msFromNow
  await stack.app.tokenStore.save(sid, { ...set, expiresAt, obtainedAt: expiresAt - (set.expiresAt - set.obtainedAt) })
}
