import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { startMockProvider, type MockProvider } from '@fastify-aihubmix/mock-provider'
import { buildApp } from './app.js'
import { startMetrics } from './metrics.js'
import { listenError } from './listen-errors.js'
import { ConfigError, parseEnvFile, readConfig, unreadVariables, type ProviderConfig } from 'aihubmix-oauth'

/**
 * `npm start`: the example server. With no AIHUBMIX_BASE_URL it starts the
 * embedded mock provider in this process and registers a demo app on it.
 */

/** Reads an env file (KEY=VALUE lines) into `env`, never overriding what is already set. */
export function loadEnvFile (path: string, env: Record<string, string | undefined> = process.env): boolean {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return false
  }
  for (const [name, value] of Object.entries(parseEnvFile(text))) {
    if (env[name] === undefined) env[name] = value
  }
  return true
}

export async function main (env: Record<string, string | undefined> = process.env): Promise<{ close: () => Promise<void>, url: string, keyPrefix: string | undefined }> {
  const envFile = resolve(env.ENV_FILE ?? '.env')
  loadEnvFile(envFile, env)
  const config = readConfig(env)

  let mock: MockProvider | undefined
  let provider: ProviderConfig
  if (config.provider !== undefined) {
    provider = config.provider
  } else {
    mock = await startMockProvider({ host: '127.0.0.1', port: 0 })
    const app = mock.createApp({ name: 'Example app', redirectUri: config.redirectUri, description: 'Demo app of the example server' })
    provider = { baseUrl: mock.url, clientId: app.clientId, clientSecret: app.clientSecret }
  }

  // The embedded mock forgets every token it issued when this process stops. Sessions in Redis outlive it: one
  // signed in through an earlier run's mock would read as signed in on /auth/session and end with reauth_required
  // on its first /api call. Kept under a key prefix of this run instead, they are gone for both routes alike.
  const runPrefix = mock !== undefined && config.redisUrl !== undefined ? { tokenStore: { keyPrefix: `aihubmix:mock-${randomUUID()}:` } } : {}
  const app = await buildApp({ config, provider, ...runPrefix })
  for (const line of unreadVariables(env)) app.log.warn(line)
  if (config.sessionSecretGenerated) {
    app.log.warn('SESSION_SECRET is not set: using a random one for this process (sessions end when it stops)')
  }
  if (config.plainHttpPublicUrl) {
    app.log.warn(`PUBLIC_URL ${config.publicUrl} is plain http outside loopback: cookies are not Secure and OAuth traffic is readable; use https:// (NODE_ENV=production refuses it)`)
  }
  if (mock !== undefined) {
    app.log.info(`embedded mock AIHubMix provider at ${mock.url} (set AIHUBMIX_BASE_URL to use the real one)`)
  }
  // METRICS_PORT: Prometheus metrics on a listener of their own, never on the public port.
  let metrics: Awaited<ReturnType<typeof startMetrics>> | undefined
  try {
    metrics = config.metricsPort === undefined ? undefined : await startMetrics(app, { port: config.metricsPort, host: config.metricsHost })
  } catch (err) {
    await Promise.allSettled([app.close(), mock?.close()])
    throw err
  }
  if (metrics !== undefined) app.log.info(`metrics on ${metrics.url}`)
  // PUBLIC_URL (its port once known, for PORT=0) is the address to open: under another name of this machine a
  // sign-in cannot finish. Fastify's own line names the socket's address, and the address to open with it.
  const publicUrlAt = (port: number): string => config.port === 0 ? config.publicUrl.replace(/:\d+$/, `:${port}`) : config.publicUrl
  try {
    await app.listen({
      port: config.port,
      host: config.host,
      listenTextResolver: (address) => `Server listening at ${address}; open ${publicUrlAt(Number(/:(\d+)$/.exec(address)?.[1] ?? config.port))} (PUBLIC_URL)`
    })
  } catch (err) {
    await Promise.allSettled([metrics?.close(), app.close(), mock?.close()])
    throw listenError(err, { host: 'HOST', port: 'PORT' }, { host: config.host, port: config.port })
  }
  const address = app.server.address()
  const url = publicUrlAt(typeof address === 'object' && address !== null ? address.port : config.port)
  process.stdout.write(`listening on ${url}\n`)

  const close = async (): Promise<void> => {
    await metrics?.close()
    await app.close()
    await mock?.close()
  }
  return { close, url, keyPrefix: runPrefix.tokenStore?.keyPrefix }
}

const isEntry = process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)
if (isEntry) {
  main().then(({ close }) => {
    const stop = (): void => {
      close().then(() => process.exit(0), () => process.exit(1))
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  }, (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`)
    } else {
      process.stderr.write(`failed to start: ${(err as Error).message}\n`)
    }
    process.exit(1)
  })
}
