// Micro-measure of what the diagnostics channels cost on the hot path (issue 19), in one process, no network:
// - the guard every publisher reads first (`hasSubscribers`), alone;
// - a refresh flight wrapped by token-store's traceRefresh with nobody listening, against calling it directly;
// - one provider call (aihubmix-proxy's client.userinfo) against an in-process dispatcher that answers at once,
//   so that what is timed is the client's own work: with nobody listening, with one no-op subscriber, and with
//   the metrics plugin counting it.
// Variants alternate over BENCH_MICRO_ROUNDS rounds of BENCH_MICRO_CALLS calls each; medians in ns per call.
// Prints one JSON line (run.mjs reads it); `node bench/diagnostics.mjs` after `npm install` (it reads dist/).
import dc from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import Fastify from 'fastify'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy, { UPSTREAM_CHANNEL } from '@fastify-aihubmix/aihubmix-proxy'
import aihubmixMetrics from '@fastify-aihubmix/metrics'
import { upstreamTraced } from '../src/aihubmix-proxy/dist/diagnostics.js'
import { traceRefresh } from '../src/token-store/dist/diagnostics.js'
import { median } from './lib.mjs'

const CALLS = Number(process.env.BENCH_MICRO_CALLS ?? 100_000)
const ROUNDS = Number(process.env.BENCH_MICRO_ROUNDS ?? 7)

const USERINFO = Buffer.from(JSON.stringify({
  id: 12345, username: 'user123', email: 'user@example.com', quota: 1000000, used_quota: 250000, balance_formatted: '750.00', created_time: 1640995200, status: 1
}))
const headers = { 'content-type': 'application/json', 'content-length': String(USERINFO.length) }
/** A dispatcher (undici's controller interface) that answers every request at once with the same userinfo. */
const controller = { aborted: false, paused: false, reason: null, abort () {}, pause () {}, resume () {} }
const dispatcher = {
  dispatch (_opts, handler) {
    handler.onRequestStart(controller, {})
    handler.onResponseStart(controller, 200, headers, 'OK')
    handler.onResponseData(controller, USERINFO)
    handler.onResponseEnd(controller, {})
    return true
  },
  close () { return Promise.resolve() }
}

async function app ({ metrics }) {
  const instance = Fastify({ logger: false })
  await instance.register(tokenStore, { encryptionKeys: 'hex:' + 'ab'.repeat(32) })
  await instance.register(aihubmixProxy, {
    baseUrl: 'http://127.0.0.1:9',
    clientId: 'client_bench',
    clientSecret: 'secret_bench',
    redirectUri: 'http://127.0.0.1:3000/auth/callback',
    routes: false,
    dispatcher
  })
  if (metrics) await instance.register(aihubmixMetrics, { defaultMetrics: false })
  await instance.ready()
  return instance
}

async function perCall (fn, calls = CALLS) {
  const started = performance.now()
  for (let i = 0; i < calls; i++) await fn()
  return (performance.now() - started) * 1e6 / calls
}

function perCallSync (fn, calls) {
  let sink = 0
  const started = performance.now()
  for (let i = 0; i < calls; i++) if (fn()) sink++
  const ns = (performance.now() - started) * 1e6 / calls
  return sink === -1 ? NaN : ns
}

async function main () {
  const plain = await app({ metrics: false })
  const userinfo = () => plain.aihubmix.userinfo('at_bench')
  const noop = () => {}
  const asyncEnd = dc.tracingChannel(UPSTREAM_CHANNEL).asyncEnd
  const set = { accessToken: 'at', tokenType: 'Bearer', expiresAt: Date.now() + 3600_000, scope: [], obtainedAt: Date.now() }
  const fly = () => Promise.resolve(set)
  const refresher = () => Promise.resolve(set)
  const store = plain.tokenStore

  const rounds = { guard: [], flightDirect: [], flightWrapped: [], nobody: [], noop: [], metrics: [] }
  // Warm-up: every path compiled before anything is timed.
  await perCall(userinfo, CALLS / 2)
  for (let r = 0; r < ROUNDS; r++) {
    rounds.guard.push(perCallSync(upstreamTraced, CALLS * 20))
    rounds.flightDirect.push(await perCall(() => fly(refresher)))
    rounds.flightWrapped.push(await perCall(() => traceRefresh(store, false, refresher, fly)))
    rounds.nobody.push(await perCall(userinfo))
    asyncEnd.subscribe(noop)
    rounds.noop.push(await perCall(userinfo))
    asyncEnd.unsubscribe(noop)
    const counted = await app({ metrics: true })
    await perCall(() => counted.aihubmix.userinfo('at_bench'), CALLS / 10)
    rounds.metrics.push(await perCall(() => counted.aihubmix.userinfo('at_bench')))
    await counted.close()
    if (dc.hasSubscribers(`tracing:${UPSTREAM_CHANNEL}:asyncEnd`)) throw new Error('a subscriber was left behind')
  }
  await plain.close()
  const result = Object.fromEntries(Object.entries(rounds).map(([k, v]) => [k, median(v)]))
  process.stdout.write(JSON.stringify({ calls: CALLS, rounds: ROUNDS, nsPerCall: result, perRound: rounds }) + '\n')
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`)
  process.exit(1)
})
