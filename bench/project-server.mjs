// The project as a user deploys it: the example app (example/dist/app.js) built from its
// configuration exactly as `npm start` does, against the upstream given by the parent.
// Memory stores by default; Redis stores when REDIS_URL is given (the app registers
// its own ioredis client for REDIS_URL, as in production).
//
// env: BENCH_PORT, BENCH_PUBLIC_URL (default http://127.0.0.1:BENCH_PORT), BENCH_UPSTREAM,
//      BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SESSION_SECRET, BENCH_KEY_PREFIX,
//      BENCH_REDIS_URL (optional), BENCH_REDIS_CLIENT_CACHE (optional, on/off), BENCH_LOG_LEVEL (default warn),
//      BENCH_METRICS (optional, on: the metrics listener of METRICS_PORT, on a free port, as `npm start` starts it)
import { readConfig } from 'aihubmix-oauth'
import { buildApp } from '../example/dist/app.js'
import { startMetrics } from '../example/dist/metrics.js'
import { failStart, serveUntilStopped } from './lib.mjs'

async function main () {
  const env = process.env
  const port = Number(env.BENCH_PORT)
  const config = readConfig({
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: env.BENCH_PUBLIC_URL ?? `http://127.0.0.1:${port}`,
    SESSION_SECRET: env.BENCH_SESSION_SECRET,
    LOG_LEVEL: env.BENCH_LOG_LEVEL ?? 'warn',
    ...(env.BENCH_REDIS_URL ? { REDIS_URL: env.BENCH_REDIS_URL } : {}),
    ...(env.BENCH_REDIS_CLIENT_CACHE ? { REDIS_CLIENT_CACHE: env.BENCH_REDIS_CLIENT_CACHE } : {})
  })
  const app = await buildApp({
    config,
    provider: { baseUrl: env.BENCH_UPSTREAM, clientId: env.BENCH_CLIENT_ID, clientSecret: env.BENCH_CLIENT_SECRET },
    // BENCH_LOGGER=off: no logger at all (to measure what the per-request child logger costs).
    ...(env.BENCH_LOGGER === 'off' ? { logger: false } : {}),
    tokenStore: env.BENCH_KEY_PREFIX ? { keyPrefix: env.BENCH_KEY_PREFIX } : {}
  })
  const metrics = env.BENCH_METRICS === 'on' ? await startMetrics(app, { port: 0, host: '127.0.0.1' }) : undefined
  await app.listen({ port, host: '127.0.0.1' })
  const close = async () => {
    await metrics?.close()
    await app.close()
  }
  serveUntilStopped(`http://127.0.0.1:${port}`, close, { redis: config.redisUrl !== undefined, metricsUrl: metrics?.url })
}

main().catch(failStart)
