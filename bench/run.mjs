// `npm run bench`: the project's GET /api/user/info against a lean hand-written Fastify route
// and the provider guide's Express pattern, side by side on one fast local upstream; Redis
// round trips per request; a refresh storm over two instances sharing Redis; heap per
// 10,000 sessions; the project with its metrics listener on, and what publishing on the diagnostics
// channels costs per call. Everything on 127.0.0.1, bounded in time. Prints one table, writes
// bench/results/latest.json. Exit code 0 even when a goal is missed; 1 when something failed to run.
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants as fsConstants, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import fastifyCookie from '@fastify/cookie'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { createTokenStore } from '@fastify-aihubmix/token-store'
import { BENCH_DIR, freePort, median, quantile, runLoad, signIn, sleep, startChild } from './lib.mjs'

const env = process.env
function numberEnv (name, fallback, min = 1) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}`)
  return value
}

const SETTINGS = {
  duration: numberEnv('BENCH_DURATION', 5),
  rounds: numberEnv('BENCH_ROUNDS', 5),
  sideBySideRounds: numberEnv('BENCH_SIDE_ROUNDS', 8),
  warmup: numberEnv('BENCH_WARMUP', 2, 0),
  connections: numberEnv('BENCH_CONNECTIONS', 50),
  sessionsPerTarget: numberEnv('BENCH_SESSIONS', 16),
  redisCountRequests: numberEnv('BENCH_REDIS_REQUESTS', 5000),
  storm: numberEnv('BENCH_STORM', 500, 2),
  heapSessions: numberEnv('BENCH_HEAP_SESSIONS', 10_000),
  /** Comma-separated target ids to run under --cpu-prof (profiles in bench/results/profiles/<id>/). */
  profile: list(env.BENCH_PROFILE),
  /** Only these throughput targets (default: all): project-memory, project-metrics, project-redis, project-redis-cache, floor, lean, lean-redis, guide. */
  targets: list(env.BENCH_TARGETS),
  /** How often the metrics listener is scraped while the project-metrics target is under load, ms (0: never). */
  scrapeEveryMs: numberEnv('BENCH_SCRAPE_EVERY_MS', 1000, 0),
  /** Parts to leave out: throughput, side-by-side, storm, heap, flood, micro. */
  skip: list(env.BENCH_SKIP),
  /** Seconds of anonymous GET /auth/login per backend in the flood run. */
  floodDuration: numberEnv('BENCH_FLOOD_DURATION', 30),
  floodConnections: numberEnv('BENCH_FLOOD_CONNECTIONS', 50),
  /** A real sign-in every this many ms during the flood. */
  floodSignInEveryMs: numberEnv('BENCH_FLOOD_SIGNIN_EVERY_MS', 2000, 0),
  /** --cpu-prof-interval for profiled targets, µs. */
  profileInterval: numberEnv('BENCH_PROFILE_INTERVAL', 200)
}

function list (raw) {
  return (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)
}

const GOALS = {
  leanThroughput: 1.3,
  leanP99: 1.0,
  /** Issue 20: the project next to a bare forwarder of the same call (bench/floor-server.mjs). */
  floorThroughput: 0.85,
  floorP99: 1.2,
  guideThroughput: 2.5,
  redisVsMemory: 0.9,
  /** Issue 19: the project with its metrics on keeps at least this share of its requests per second. */
  metricsThroughput: 0.97,
  redisRoundTrips: 1,
  /** Issue 15: what a flood of anonymous sign-in starts may leave behind, and how slow a real sign-in may get. */
  floodAppBytes: 64e6,
  floodRedisBytes: 32e6,
  floodSignInMs: 2000
}

/** Where results (and profiles) go; BENCH_RESULTS_DIR moves them (the test suite's short runs write to a temporary directory). */
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR || join(BENCH_DIR, 'results')
const API_PATH = '/api/user/info'
const API_HEADERS = { 'x-csrf': '1', accept: 'application/json' }

function log (line) {
  process.stderr.write(`bench: ${line}\n`)
}

// ---------------------------------------------------------------- Redis

function parseCommandStats (info) {
  const calls = {}
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim())
    if (m) calls[m[1]] = Number(m[2])
  }
  return calls
}

async function redisReachable (url) {
  const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

/**
 * The Redis of the run: REDIS_URL when set; else a private redis-server on a free port (so that
 * its command statistics count this benchmark's commands only); else 127.0.0.1:6379; else none.
 */
async function setUpRedis () {
  if (env.REDIS_URL) {
    if (await redisReachable(env.REDIS_URL)) return { url: env.REDIS_URL, kind: 'REDIS_URL (shared: other clients\' commands would count too)', stop: async () => {} }
    return { url: undefined, why: 'REDIS_URL is not reachable' }
  }
  const binary = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => {
    try {
      accessSync(p, fsConstants.X_OK)
      return true
    } catch {
      return false
    }
  })
  if (binary !== undefined) {
    const port = await freePort()
    const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--logfile', ''], { stdio: 'ignore' })
    const url = `redis://127.0.0.1:${port}`
    const exited = new Promise((resolve) => child.once('exit', resolve))
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    }
    for (let i = 0; i < 100; i++) {
      if (await redisReachable(url)) return { url, kind: `private redis-server on port ${port}`, stop }
      await sleep(50)
    }
    await stop()
  }
  const fallback = 'redis://127.0.0.1:6379'
  if (await redisReachable(fallback)) return { url: fallback, kind: 'shared 127.0.0.1:6379 (other clients\' commands would count too)', stop: async () => {} }
  return { url: undefined, why: 'no redis-server binary and nothing answers on 127.0.0.1:6379' }
}

// ---------------------------------------------------------------- throughput

async function startTarget (target, common) {
  const port = await freePort()
  const execArgv = []
  if (SETTINGS.profile.includes(target.id)) {
    const dir = join(RESULTS_DIR, 'profiles', target.id)
    mkdirSync(dir, { recursive: true })
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${SETTINGS.profileInterval}`)
  }
  const handle = await startChild(target.script, { env: { ...common, ...target.env, BENCH_PORT: String(port) }, execArgv })
  const cookies = []
  // A few at a time: each sign-in is three requests.
  for (let i = 0; i < SETTINGS.sessionsPerTarget; i++) cookies.push(await signIn(handle.url, target.loginPath))
  // Sanity: every session answers the user's info, through the upstream.
  for (const cookie of cookies) {
    const res = await fetch(handle.url + API_PATH, { headers: { ...API_HEADERS, cookie } })
    const body = await res.json()
    if (res.status !== 200 || body.username !== 'user123') {
      throw new Error(`${target.id}: ${API_PATH} answered ${res.status} ${JSON.stringify(body).slice(0, 80)}`)
    }
  }
  return { ...target, handle, cookies }
}

/** `GET /api/user/info` on a target, through its signed-in sessions. */
function loadTarget (t, { connections, duration }) {
  return runLoad({ url: t.handle.url, path: API_PATH, cookies: t.cookies, connections, headers: API_HEADERS, duration })
}

/**
 * Scrapes a target's metrics listener while it is under load, as Prometheus would, only far more often: the
 * scrapes' cost is part of the target's. undefined for a target without one (or BENCH_SCRAPE_EVERY_MS=0).
 */
function startScraper (t) {
  const metricsUrl = t.handle.info.metricsUrl
  if (metricsUrl === undefined || SETTINGS.scrapeEveryMs === 0) return undefined
  return setInterval(() => { fetch(metricsUrl).then((res) => res.arrayBuffer()).catch(() => {}) }, SETTINGS.scrapeEveryMs)
}

async function throughput (targets, upstream) {
  const rounds = new Map(targets.map((t) => [t.id, []]))
  const load = (t, extra) => loadTarget(t, { connections: SETTINGS.connections, ...extra })
  if (SETTINGS.warmup > 0) {
    for (const t of targets) {
      log(`warm-up ${t.id} (${SETTINGS.warmup} s)`)
      await load(t, { duration: SETTINGS.warmup })
    }
  }
  for (let r = 0; r < SETTINGS.rounds; r++) {
    // Rotate the order each round so no target always runs first or last.
    const order = targets.map((_, i) => targets[(i + r) % targets.length])
    for (const t of order) {
      const before = (await upstream.ask('counts')).userinfo
      const metricsUrl = t.handle.info.metricsUrl
      const countedBefore = metricsUrl === undefined ? undefined : await countedUserinfo(metricsUrl)
      const cpu0 = await t.handle.ask('cpu')
      const scraper = startScraper(t)
      const run = await load(t, { duration: SETTINGS.duration })
      clearInterval(scraper)
      await sleep(100)
      const cpu1 = await t.handle.ask('cpu')
      const cpuBefore = cpu0.micros
      const cpuAfter = cpu1.micros
      run.cpuSystemShare = (cpu1.system - cpu0.system) / (cpuAfter - cpuBefore)
      const after = (await upstream.ask('counts')).userinfo
      run.upstreamCalls = after - before
      run.upstreamCallsPerRequest = run.requests === 0 ? NaN : run.upstreamCalls / run.requests
      // The metrics must count every provider call of the round, exactly.
      if (countedBefore !== undefined) run.counted = { metrics: (await countedUserinfo(metricsUrl)) - countedBefore, upstream: after - before }
      // The server's own CPU time per answered request: less sensitive than req/s to what else runs on the machine.
      run.cpuMicrosPerRequest = run.requests === 0 ? NaN : (cpuAfter - cpuBefore) / run.requests
      run.loadavg = loadavg()[0]
      rounds.get(t.id).push(run)
      log(`round ${r + 1}/${SETTINGS.rounds} ${t.id}: ${Math.round(run.rps)} req/s, p50 ${run.p50.toFixed(2)} ms, p99 ${run.p99.toFixed(2)} ms, ${Math.round(run.cpuMicrosPerRequest)} µs CPU/req (${Math.round(100 * run.cpuSystemShare)}% system), non-2xx ${run.non2xx}, errors ${run.errors}`)
      await sleep(250)
    }
  }
  const summary = {}
  for (const t of targets) {
    const runs = rounds.get(t.id)
    summary[t.id] = {
      label: t.label,
      rps: median(runs.map((x) => x.rps)),
      p50: median(runs.map((x) => x.p50)),
      p99: median(runs.map((x) => x.p99)),
      non2xx: runs.reduce((n, x) => n + x.non2xx, 0),
      errors: runs.reduce((n, x) => n + x.errors + x.timeouts, 0),
      upstreamCallsPerRequest: median(runs.map((x) => x.upstreamCallsPerRequest)),
      counted: runs.every((x) => x.counted === undefined) ? undefined : runs.map((x) => x.counted),
      cpuMicrosPerRequest: median(runs.map((x) => x.cpuMicrosPerRequest)),
      rounds: runs
    }
  }
  return summary
}

/**
 * `aihubmix_upstream_requests_total{endpoint="userinfo"}`, every status (the calls cut short when the load
 * generator hangs up at the end of a round count as `aborted`), as the metrics listener serves it.
 */
async function countedUserinfo (metricsUrl) {
  const text = await (await fetch(metricsUrl)).text()
  let total = 0
  for (const m of text.matchAll(/^aihubmix_upstream_requests_total\{endpoint="userinfo",status="[^"]+"\} (\d+)$/gm)) total += Number(m[1])
  return total
}

// ---------------------------------------------------------------- side by side

/**
 * The pairs whose ratio is a goal of a few percent, each `[measured, reference]`. One after the other, a round of
 * each runs seconds apart, and on a shared machine the same server's speed moves by more than the difference
 * measured (its CPU per request went from 180 to 90 µs within one minute of a run here). Side by side, both are
 * loaded at the same moment, half the connections each, so whatever else the machine does falls on both alike.
 */
const SIDE_BY_SIDE_PAIRS = [
  ['project-memory', 'floor'],
  ['project-memory', 'lean'],
  // No goal: a proxy with no check at all against the lean route, side by side. How this way of measuring treats a
  // pair whose CPU per request is this far apart, next to project ÷ lean.
  ['floor', 'lean'],
  ['project-metrics', 'project-memory'],
  ['project-redis', 'project-memory'],
  ['project-redis-cache', 'project-memory']
]

/** The key of a pair in `result.sideBySide`. */
const pairKey = (measuredId, referenceId) => `${measuredId}/${referenceId}`

/** The Redis server's own CPU time so far, in µs (INFO cpu: user + system, of every thread). */
async function redisCpuMicros (client) {
  const info = await client.info('cpu')
  const field = (name) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN)
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
}

async function sideBySide (targets, redisUrl) {
  const out = {}
  const connections = Math.max(1, Math.floor(SETTINGS.connections / 2))
  // The Redis server shares the machine: for a pair whose measured target uses Redis, its CPU per request of that
  // target is measured too (the memory target sends it nothing).
  const redisClient = redisUrl === undefined ? undefined : new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    for (const [measuredId, referenceId] of SIDE_BY_SIDE_PAIRS) {
      const measured = targets.find((x) => x.id === measuredId)
      const reference = targets.find((x) => x.id === referenceId)
      if (measured === undefined || reference === undefined) continue
      const rounds = []
      const withRedis = redisClient !== undefined && measuredId.startsWith('project-redis')
      // Both warmed up together first, not counted: a target idle for minutes (while other pairs ran) answered its
      // first side-by-side round at about 0.7× of the rounds after it.
      if (SETTINGS.warmup > 0) {
        log(`side by side, warm-up ${measuredId} and ${referenceId} (${SETTINGS.warmup} s)`)
        await Promise.all([measured, reference].map((t) => loadTarget(t, { connections, duration: SETTINGS.warmup })))
      }
      for (let r = 0; r < SETTINGS.sideBySideRounds; r++) {
        const pair = [measured, reference]
        const cpu0 = await Promise.all(pair.map((t) => t.handle.ask('cpu')))
        const redis0 = withRedis ? await redisCpuMicros(redisClient) : undefined
        const scrapers = pair.map(startScraper)
        // Which of the two starts its load first alternates from round to round.
        const load = (t) => loadTarget(t, { connections, duration: SETTINGS.duration })
        const runs = r % 2 === 0
          ? await Promise.all([load(measured), load(reference)])
          : (await Promise.all([load(reference), load(measured)])).reverse()
        for (const scraper of scrapers) clearInterval(scraper)
        await sleep(100)
        const cpu1 = await Promise.all(pair.map((t) => t.handle.ask('cpu')))
        const redis1 = withRedis ? await redisCpuMicros(redisClient) : undefined
        const side = runs.map((run, i) => ({
          rps: run.rps,
          p99: run.p99,
          failed: run.non2xx + run.errors + run.timeouts,
          cpuMicrosPerRequest: run.requests === 0 ? NaN : (cpu1[i].micros - cpu0[i].micros) / run.requests
        }))
        const round = {
          measured: side[0],
          reference: side[1],
          rps: side[0].rps / side[1].rps,
          p99: side[0].p99 / side[1].p99,
          cpu: side[0].cpuMicrosPerRequest / side[1].cpuMicrosPerRequest
        }
        if (redis0 !== undefined && redis1 !== undefined) {
          round.redisCpuMicrosPerRequest = runs[0].requests === 0 ? NaN : (redis1 - redis0) / runs[0].requests
          round.cpuWithRedis = (side[0].cpuMicrosPerRequest + round.redisCpuMicrosPerRequest) / side[1].cpuMicrosPerRequest
        }
        rounds.push(round)
        log(`side by side ${r + 1}/${SETTINGS.sideBySideRounds} ${measuredId} ÷ ${referenceId}: ${Math.round(side[0].rps)} ÷ ${Math.round(side[1].rps)} req/s = ${round.rps.toFixed(3)}×, CPU/req ${round.cpu.toFixed(3)}×, p99 ${round.p99.toFixed(2)}×`)
        await sleep(250)
      }
      out[pairKey(measuredId, referenceId)] = {
        measured: measuredId,
        reference: referenceId,
        connectionsEach: connections,
        rps: median(rounds.map((x) => x.rps)),
        p99: median(rounds.map((x) => x.p99)),
        cpu: median(rounds.map((x) => x.cpu)),
        ...(withRedis
          ? {
              redisCpuMicrosPerRequest: median(rounds.map((x) => x.redisCpuMicrosPerRequest)),
              measuredCpuMicrosPerRequest: median(rounds.map((x) => x.measured.cpuMicrosPerRequest)),
              cpuWithRedis: median(rounds.map((x) => x.cpuWithRedis))
            }
          : {}),
        failed: rounds.reduce((n, x) => n + x.measured.failed + x.reference.failed, 0),
        rounds
      }
    }
  } finally {
    redisClient?.disconnect()
  }
  return out
}

// ---------------------------------------------------------------- diagnostics channels, micro

/** bench/diagnostics.mjs in a child of its own: ns per call of the publishing paths (see that file). */
function micro () {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(BENCH_DIR, 'diagnostics.mjs')], { maxBuffer: 1 << 20, timeout: 600_000 }, (err, stdout) => {
      if (err) reject(err)
      else resolve(JSON.parse(stdout.trim().split('\n').pop()))
    })
  })
}

/** Redis commands per request of the Redis-store target: exactly N requests, INFO commandstats around them. */
async function redisRoundTrips (target, redisUrl) {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    await sleep(200)
    const before = parseCommandStats(await client.info('commandstats'))
    const run = await runLoad({
      url: target.handle.url,
      path: API_PATH,
      cookies: target.cookies,
      connections: SETTINGS.connections,
      headers: API_HEADERS,
      amount: SETTINGS.redisCountRequests
    })
    await sleep(200)
    const after = parseCommandStats(await client.info('commandstats'))
    const perCommand = {}
    let total = 0
    for (const [name, calls] of Object.entries(after)) {
      if (name === 'info') continue
      const delta = calls - (before[name] ?? 0)
      if (delta > 0) {
        perCommand[name] = delta / run.requests
        total += delta
      }
    }
    return { requests: run.requests, non2xx: run.non2xx, commands: total, perRequest: total / run.requests, perCommand }
  } finally {
    client.disconnect()
  }
}

// ---------------------------------------------------------------- refresh storm

async function refreshStorm (redisUrl) {
  const secret = randomBytes(32).toString('base64url')
  const keyPrefix = `bench-storm-${randomBytes(4).toString('hex')}:`
  const mock = await startMockProvider({ rotateRefreshTokens: true, refreshReuseRevokes: true })
  const children = []
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  const agent = new Agent({ connections: null, pipelining: 1 })
  let store
  try {
    const ports = [await freePort(), await freePort()]
    const publicUrl = `http://127.0.0.1:${ports[0]}`
    const demo = mock.createApp({ name: 'bench storm', redirectUri: `${publicUrl}/auth/callback` })
    const common = {
      BENCH_UPSTREAM: mock.url,
      BENCH_CLIENT_ID: demo.clientId,
      BENCH_CLIENT_SECRET: demo.clientSecret,
      BENCH_SESSION_SECRET: secret,
      BENCH_KEY_PREFIX: keyPrefix,
      BENCH_REDIS_URL: redisUrl,
      BENCH_PUBLIC_URL: publicUrl
    }
    for (const port of ports) {
      children.push(await startChild('project-server.mjs', { env: { ...common, BENCH_PORT: String(port) } }))
    }
    const urls = children.map((c) => c.url)
    const cookie = await signIn(urls[0], '/auth/login')

    // Expire the session's token set through the token store's public API (same Redis, prefix
    // and key as the instances), and make the provider refuse the old access token too.
    const raw = /(?:^|;\s*)sid=([^;]+)/.exec(cookie)?.[1]
    const unsigned = raw === undefined ? undefined : fastifyCookie.unsign(decodeURIComponent(raw), secret)
    if (unsigned?.valid !== true) throw new Error('storm: no signed session cookie after sign-in')
    store = createTokenStore({ backend: 'redis', redis: client, keyPrefix, encryptionKeys: [secret] })
    const set = await store.get(unsigned.value)
    if (set === null) throw new Error('storm: no token set after sign-in')
    await store.save(unsigned.value, { ...set, expiresAt: Date.now() - 60_000 })
    mock.expireAccessTokens()
    mock.resetCounts()

    const statuses = new Map()
    const latencies = []
    let failures = 0
    const one = async (i) => {
      const started = performance.now()
      try {
        const res = await request(urls[i % urls.length] + API_PATH, { dispatcher: agent, headers: { ...API_HEADERS, cookie } })
        await res.body.dump()
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        if (res.statusCode !== 200) failures++
      } catch (err) {
        failures++
        statuses.set(err.code ?? 'error', (statuses.get(err.code ?? 'error') ?? 0) + 1)
      }
      latencies.push(performance.now() - started)
    }
    const t0 = performance.now()
    await Promise.all(Array.from({ length: SETTINGS.storm }, (_, i) => one(i)))
    const wall = performance.now() - t0
    const counts = mock.counts()
    latencies.sort((a, b) => a - b)

    // Afterwards the rotated set is in Redis: both instances answer without another refresh.
    let after = 0
    for (const url of urls) {
      const res = await request(url + API_PATH, { dispatcher: agent, headers: { ...API_HEADERS, cookie } })
      await res.body.dump()
      if (res.statusCode === 200) after++
    }
    return {
      requests: SETTINGS.storm,
      instances: urls.length,
      refreshCalls: counts.grants.refresh_token,
      refreshCallsAfter: mock.counts().grants.refresh_token - counts.grants.refresh_token,
      userinfoCalls: counts.userinfo,
      failures,
      statuses: Object.fromEntries(statuses),
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: latencies[latencies.length - 1],
      wallMs: wall,
      followUpOk: after === urls.length
    }
  } finally {
    await agent.close()
    for (const c of children) await c.stop()
    if (store !== undefined) await store.close()
    // Clean up the run's keys.
    const keys = await client.keys(`${keyPrefix}*`).catch(() => [])
    if (keys.length > 0) await client.del(...keys).catch(() => {})
    client.disconnect()
    await mock.close()
  }
}

// ---------------------------------------------------------------- flood

function usedMemory (info) {
  const m = /^used_memory:(\d+)/m.exec(info)
  return m === null ? NaN : Number(m[1])
}

async function countKeys (client, prefix) {
  let cursor = '0'
  let n = 0
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    n += keys.length
  } while (cursor !== '0')
  return n
}

/**
 * Issue 15: anonymous GET /auth/login (no cookie) at full speed for floodDuration seconds against the example
 * app (memory or Redis stores), while a real browser signs in every floodSignInEveryMs. Before and after: the
 * app's RSS and heap after full collections (what lasts), Redis' used_memory and the run's keys.
 */
async function flood (backend, common, redisUrl) {
  const port = await freePort()
  const prefix = `bench-flood-${randomBytes(4).toString('hex')}:`
  const handle = await startChild('project-server.mjs', {
    env: { ...common, BENCH_PORT: String(port), BENCH_KEY_PREFIX: prefix, ...(backend === 'redis' ? { BENCH_REDIS_URL: redisUrl } : {}) },
    execArgv: ['--expose-gc']
  })
  const client = backend === 'redis' ? new Redis(redisUrl, { maxRetriesPerRequest: 1 }) : undefined
  try {
    // Warm the code paths (a sign-in, a short burst) so that what is measured is what lasts, not first-use setup.
    await signIn(handle.url, '/auth/login')
    await runLoad({ url: handle.url, path: '/auth/login', cookies: [], connections: SETTINGS.floodConnections, duration: 2, accept: (s) => s === 302 })
    await sleep(200)
    const before = await handle.ask('memory')
    const redisBefore = client === undefined ? undefined : { used: usedMemory(await client.info('memory')), keys: await countKeys(client, prefix) }

    const signIns = []
    let signInFailures = 0
    const flooding = { on: true }
    const signer = (async () => {
      await sleep(Math.min(1000, SETTINGS.floodDuration * 250))
      while (flooding.on) {
        const started = performance.now()
        try {
          await signIn(handle.url, '/auth/login')
          signIns.push(performance.now() - started)
        } catch {
          signInFailures++
        }
        if (SETTINGS.floodSignInEveryMs > 0) await sleep(SETTINGS.floodSignInEveryMs)
      }
    })()
    const run = await runLoad({
      url: handle.url,
      path: '/auth/login',
      cookies: [],
      connections: SETTINGS.floodConnections,
      duration: SETTINGS.floodDuration,
      accept: (status) => status === 302
    })
    flooding.on = false
    await signer
    await sleep(200)
    const after = await handle.ask('memory')
    const redisAfter = client === undefined ? undefined : { used: usedMemory(await client.info('memory')), keys: await countKeys(client, prefix) }
    signIns.sort((a, b) => a - b)
    return {
      backend,
      seconds: run.seconds,
      requests: run.requests,
      redirects: run.ok,
      other: run.non2xx + run.errors + run.timeouts,
      rps: run.rps,
      p99: run.p99,
      before,
      after,
      redisBefore,
      redisAfter,
      signIns: signIns.length,
      signInFailures,
      signInP50: quantile(signIns, 0.5),
      signInMax: signIns[signIns.length - 1] ?? NaN
    }
  } finally {
    await handle.stop()
    if (client !== undefined) {
      let cursor = '0'
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000).catch(() => ['0', []])
        cursor = next
        if (keys.length > 0) await client.del(...keys).catch(() => {})
      } while (cursor !== '0')
      client.disconnect()
    }
  }
}

// ---------------------------------------------------------------- heap

async function heapPerSessions () {
  const handle = await startChild('memory.mjs', {
    env: { BENCH_SESSIONS: String(SETTINGS.heapSessions) },
    execArgv: ['--expose-gc'],
    readyTimeoutMs: 120_000
  })
  await handle.stop()
  return handle.info.results
}

// ---------------------------------------------------------------- report

function machine () {
  const model = cpus()[0]?.model ?? 'unknown CPU'
  return {
    cores: cpus().length,
    cpu: model.replace(/\s+/g, ' ').trim(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`
  }
}

const fmtInt = (n) => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a'
const fmtMs = (n) => Number.isFinite(n) ? `${n.toFixed(n < 10 ? 2 : 1)} ms` : 'n/a'
const fmtX = (n) => Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a'
/** a ÷ b in requests/s within each round (run minutes apart at most): how much the machine moved. */
const perRound = (a, b) => a.rounds.map((run, i) => fmtX(run.rps / b.rounds[i]?.rps)).join(', ')
const perRoundP99 = (a, b) => a.rounds.map((run, i) => fmtX(run.p99 / b.rounds[i]?.p99)).join(', ')
const fmtMB = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`
const mark = (ok) => ok === undefined ? '' : ok ? '✓' : '✗'

function buildReport (result) {
  const rows = []
  const goals = []
  const t = result.throughput ?? {}
  const { project, projectMetrics, projectRedis, projectCached, floor, lean, leanRedis, guide } = {
    project: t['project-memory'],
    floor: t.floor,
    projectMetrics: t['project-metrics'],
    projectRedis: t['project-redis'],
    projectCached: t['project-redis-cache'],
    lean: t.lean,
    leanRedis: t['lean-redis'],
    guide: t.guide
  }
  const line = (s) => `${fmtInt(s.rps)} req/s · p50 ${fmtMs(s.p50)} · p99 ${fmtMs(s.p99)} · ${fmtInt(s.cpuMicrosPerRequest)} µs CPU/req` +
    (s.non2xx + s.errors > 0 ? ` · ${s.non2xx + s.errors} failed` : '')
  for (const s of [project, projectMetrics, projectRedis, projectCached, floor, lean, leanRedis, guide]) {
    if (s !== undefined) rows.push([s.label, line(s), '', ''])
  }
  if (projectRedis === undefined) {
    rows.push(['project, Redis stores', `skipped: ${result.redis.why ?? (SETTINGS.skip.includes('throughput') ? 'BENCH_SKIP=throughput' : 'not in BENCH_TARGETS')}`, '', ''])
  }
  const goal = (name, value, text, ok, target) => {
    rows.push([name, value, text, mark(ok)])
    goals.push({ name, value: target, goal: text, ok })
  }
  const pairs = result.sideBySide ?? {}
  /**
   * A goal between two targets: checked on the side-by-side rounds when they ran (both loaded at the same moment),
   * else on the rounds one after the other; both are printed. `maxP99`: a goal for the p99 ratio too.
   */
  const pairGoal = (name, measured, reference, min, maxP99) => {
    const side = pairs[pairKey(measured.id, reference.id)]
    const apart = measured.summary.rps / reference.summary.rps
    const apartP99 = measured.summary.p99 / reference.summary.p99
    const minText = `≥ ${min.toFixed(2).replace(/0$/, '')}×`
    const p99Text = maxP99 === undefined ? '' : `≤ ${maxP99.toFixed(1)}×`
    if (side !== undefined) {
      goal(`${name}: req/s, side by side`, fmtX(side.rps), minText, side.rps >= min && side.failed === 0, side.rps)
      if (maxP99 !== undefined) goal(`${name}: p99, side by side`, fmtX(side.p99), p99Text, side.p99 <= maxP99 && side.failed === 0, side.p99)
      rows.push([`${name}: req/s side by side, each round`, side.rounds.map((x) => fmtX(x.rps)).join(', '), '', ''])
      rows.push([`${name}: p99 side by side, each round`, side.rounds.map((x) => fmtX(x.p99)).join(', '), '', ''])
      rows.push([`${name}: CPU per request, p99, side by side`, `${fmtX(side.cpu)}, ${fmtX(side.p99)}`, '', ''])
      if (side.redisCpuMicrosPerRequest !== undefined) {
        rows.push([`${name}: the Redis server's CPU per request, side by side`,
          `${fmtInt(side.redisCpuMicrosPerRequest)} µs (the app's own: ${fmtInt(side.measuredCpuMicrosPerRequest)} µs); CPU per request with it: ${fmtX(side.cpuWithRedis)}`, '', ''])
      }
      rows.push([`${name}: req/s, p99, one after the other`, `${fmtX(apart)}, ${fmtX(apartP99)}`, '', ''])
    } else {
      goal(`${name}: req/s, one after the other`, fmtX(apart), minText, apart >= min, apart)
      if (maxP99 !== undefined) goal(`${name}: p99, one after the other`, fmtX(apartP99), p99Text, apartP99 <= maxP99, apartP99)
    }
    rows.push([`${name}: req/s one after the other, each round`, perRound(measured.summary, reference.summary), '', ''])
    if (maxP99 !== undefined) rows.push([`${name}: p99 one after the other, each round`, perRoundP99(measured.summary, reference.summary), '', ''])
    rows.push([`${name}: CPU per request, one after the other`, fmtX(measured.summary.cpuMicrosPerRequest / reference.summary.cpuMicrosPerRequest), '', ''])
  }
  const memory = project && { id: 'project-memory', summary: project }
  if (project && floor) {
    pairGoal('project ÷ floor', memory, { id: 'floor', summary: floor }, GOALS.floorThroughput, GOALS.floorP99)
    if (projectRedis) rows.push(['project (Redis) ÷ floor: req/s, p99, one after the other', `${fmtX(projectRedis.rps / floor.rps)}, ${fmtX(projectRedis.p99 / floor.p99)}`, '', ''])
  }
  if (project && lean) {
    pairGoal('project ÷ lean', memory, { id: 'lean', summary: lean }, GOALS.leanThroughput, GOALS.leanP99)
  }
  const floorLean = pairs[pairKey('floor', 'lean')]
  if (floorLean !== undefined) {
    rows.push(['floor ÷ lean (no goal; a proxy with no check): req/s, CPU per request, p99, side by side',
      `${fmtX(floorLean.rps)}, ${fmtX(floorLean.cpu)}, ${fmtX(floorLean.p99)}`, '', ''])
    rows.push(['floor ÷ lean: req/s side by side, each round', floorLean.rounds.map((x) => fmtX(x.rps)).join(', '), '', ''])
  }
  if (project && guide) {
    const x = project.rps / guide.rps
    goal('project ÷ guide: req/s', fmtX(x), `≥ ${GOALS.guideThroughput.toFixed(1)}×`, x >= GOALS.guideThroughput, x)
    const y = project.p99 / guide.p99
    rows.push(['project ÷ guide: p99', fmtX(y), '', ''])
  }
  if (project && lean && guide) {
    rows.push(['server CPU per request: project ÷ lean, project ÷ guide',
      `${fmtX(project.cpuMicrosPerRequest / lean.cpuMicrosPerRequest)}, ${fmtX(project.cpuMicrosPerRequest / guide.cpuMicrosPerRequest)}`, '', ''])
  }
  if (projectMetrics && project) {
    pairGoal('project with metrics ÷ project', { id: 'project-metrics', summary: projectMetrics }, memory, GOALS.metricsThroughput)
    const counted = projectMetrics.counted ?? []
    goal('metrics: userinfo calls counted, upstream calls seen, each round', counted.map((c) => `${fmtInt(c.metrics)}/${fmtInt(c.upstream)}`).join(', '), 'equal',
      counted.length > 0 && counted.every((c) => c.metrics === c.upstream), counted.reduce((n, c) => n + Math.abs(c.metrics - c.upstream), 0))
  }
  if (projectRedis && project) {
    pairGoal('Redis stores ÷ memory stores', { id: 'project-redis', summary: projectRedis }, memory, GOALS.redisVsMemory)
    if (leanRedis) rows.push(['project (Redis) ÷ lean (Redis): req/s, p99', `${fmtX(projectRedis.rps / leanRedis.rps)}, ${fmtX(projectRedis.p99 / leanRedis.p99)}`, '', ''])
    if (guide) rows.push(['project (Redis) ÷ guide: req/s', fmtX(projectRedis.rps / guide.rps), '', ''])
  }
  if (projectCached && project) {
    pairGoal('Redis stores + client cache ÷ memory stores', { id: 'project-redis-cache', summary: projectCached }, memory, GOALS.redisVsMemory)
  }
  if (result.redisRoundTrips) {
    const r = result.redisRoundTrips
    const detail = Object.entries(r.perCommand).map(([c, n]) => `${c.toUpperCase()} ${n.toFixed(2)}`).join(', ')
    // Met only when every request was answered 2xx: a request refused before it reached Redis counts no command.
    goal('Redis round trips per steady-state request', `${r.perRequest.toFixed(2)} (${detail || 'none'}; ${fmtInt(r.requests)} requests${r.non2xx > 0 ? `, ${fmtInt(r.non2xx)} not 2xx` : ''})`,
      `≤ ${GOALS.redisRoundTrips}`, r.non2xx === 0 && r.perRequest <= GOALS.redisRoundTrips + 1e-9, r.perRequest)
  } else {
    rows.push(['Redis round trips per steady-state request', `skipped: ${result.redis.why ?? 'not measured'}`, '', ''])
  }
  if (result.redisRoundTripsCached) {
    const r = result.redisRoundTripsCached
    const detail = Object.entries(r.perCommand).map(([c, n]) => `${c.toUpperCase()} ${n.toFixed(2)}`).join(', ')
    // Met only when every request was answered 2xx: a request refused before it reached Redis counts no command.
    goal('Redis round trips per steady-state request, client cache', `${r.perRequest.toFixed(2)} (${detail || 'none'}; ${fmtInt(r.requests)} requests${r.non2xx > 0 ? `, ${fmtInt(r.non2xx)} not 2xx` : ''})`,
      `≤ ${GOALS.redisRoundTrips}`, r.non2xx === 0 && r.perRequest <= GOALS.redisRoundTrips + 1e-9, r.perRequest)
  }
  if (result.storm) {
    const s = result.storm
    goal(`refresh storm (${s.requests} concurrent, ${s.instances} instances, Redis): refresh calls`, String(s.refreshCalls), '= 1', s.refreshCalls === 1, s.refreshCalls)
    goal('refresh storm: failures', `${s.failures} of ${s.requests}`, '= 0', s.failures === 0, s.failures)
    goal('refresh storm: afterwards, both instances answer 200 with no other refresh', `${s.followUpOk ? 'yes' : 'no'}, ${s.refreshCallsAfter} refresh calls`,
      '200, 0', s.followUpOk === true && s.refreshCallsAfter === 0, s.refreshCallsAfter)
    rows.push(['refresh storm: p50, p99', `${fmtMs(s.p50)}, ${fmtMs(s.p99)}`, '', ''])
  } else {
    rows.push(['refresh storm', `skipped: ${result.redis.why ?? 'not run'}`, '', ''])
  }
  for (const f of result.flood ?? []) {
    const name = `flood, ${f.backend === 'redis' ? 'Redis' : 'memory'} stores`
    rows.push([`${name}: anonymous GET /auth/login, ${SETTINGS.floodConnections} connections`,
      `${fmtInt(f.requests)} requests in ${f.seconds.toFixed(0)} s (${fmtInt(f.rps)} req/s, p99 ${fmtMs(f.p99)}), ${fmtInt(f.other)} not 302`, '', ''])
    const rss = f.after.rss - f.before.rss
    goal(`${name}: app memory growth (RSS after GC)`, `${fmtMB(rss)} (${fmtMB(f.before.rss)} → ${fmtMB(f.after.rss)}; heap ${fmtMB(f.before.heapUsed)} → ${fmtMB(f.after.heapUsed)}; peak RSS ${fmtMB(f.after.maxRss)})`,
      `≤ ${fmtMB(GOALS.floodAppBytes)}`, rss <= GOALS.floodAppBytes, rss)
    if (f.redisBefore !== undefined) {
      const used = f.redisAfter.used - f.redisBefore.used
      goal(`${name}: Redis used_memory growth`, `${fmtMB(used)} (${fmtMB(f.redisBefore.used)} → ${fmtMB(f.redisAfter.used)}; keys ${f.redisBefore.keys} → ${f.redisAfter.keys})`,
        `≤ ${fmtMB(GOALS.floodRedisBytes)}`, used <= GOALS.floodRedisBytes, used)
    }
    goal(`${name}: a real sign-in during the flood`, `${f.signIns} sign-ins, p50 ${fmtMs(f.signInP50)}, max ${fmtMs(f.signInMax)}, ${f.signInFailures} failed`,
      `≤ ${GOALS.floodSignInMs} ms, 0 failed`, f.signIns > 0 && f.signInFailures === 0 && f.signInMax <= GOALS.floodSignInMs, f.signInMax)
  }
  if (result.micro) {
    const n = result.micro.nsPerCall
    const ns = (v) => Number.isFinite(v) ? `${v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} ns` : 'n/a'
    rows.push(['publishing, nobody listening: the hasSubscribers guard, per call', ns(n.guard), '', ''])
    rows.push(['publishing, nobody listening: a refresh flight through traceRefresh ÷ called directly', `${ns(n.flightWrapped)} ÷ ${ns(n.flightDirect)}`, '', ''])
    rows.push(['one provider call in process (userinfo, instant dispatcher): nobody listening, a no-op subscriber, the metrics plugin',
      `${ns(n.nobody)}, ${ns(n.noop)}, ${ns(n.metrics)}`, '', ''])
  }
  if (result.heap) {
    const h = result.heap
    const per10k = (b) => b * 10_000 / h.sessions
    rows.push(['heap per 10,000 sessions (memory store, session + sealed token set)',
      `${fmtMB(per10k(h.projectBytes))} (guide's express-session store: ${fmtMB(per10k(h.guideBytes))})`, '', ''])
  }
  return { rows, goals }
}

function renderTable (rows) {
  const header = ['measure', 'result', 'goal', 'met']
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((r) => [...r[i]].length)))
  const fmt = (r) => '| ' + r.map((c, i) => c + ' '.repeat(widths[i] - [...c].length)).join(' | ') + ' |'
  return [fmt(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(fmt)].join('\n')
}

// ---------------------------------------------------------------- main

async function main () {
  const started = Date.now()
  const result = { date: new Date().toISOString(), machine: machine(), settings: SETTINGS, goals: GOALS }
  const stops = []
  let failed = false
  try {
    result.loadavgAtStart = loadavg()[0]
    log(`${result.machine.cores} cores, ${result.machine.cpu}, Node ${result.machine.node}, load average ${result.loadavgAtStart.toFixed(1)}`)
    if (result.loadavgAtStart > result.machine.cores) log('WARNING: the machine is busy with other work; req/s and latencies will be noisy (CPU per request much less so)')
    const redis = await setUpRedis()
    stops.push(() => redis.stop?.())
    result.redis = { kind: redis.kind, why: redis.why }
    if (redis.url === undefined) log(`Redis rows SKIPPED: ${redis.why}`)
    else log(`Redis: ${redis.kind}`)

    const upstream = await startChild('upstream.mjs')
    stops.push(() => upstream.stop())
    const secret = randomBytes(32).toString('base64url')
    const common = {
      BENCH_UPSTREAM: upstream.url,
      BENCH_CLIENT_ID: 'client_bench',
      BENCH_CLIENT_SECRET: 'secret_bench_' + randomBytes(16).toString('hex'),
      BENCH_SESSION_SECRET: secret
    }
    const prefix = `bench-${randomBytes(4).toString('hex')}:`
    const defs = [
      { id: 'project-memory', label: 'project GET /api/user/info, memory stores', script: 'project-server.mjs', loginPath: '/auth/login', env: { BENCH_KEY_PREFIX: prefix } },
      { id: 'project-metrics', label: 'project GET /api/user/info, memory stores, with metrics (METRICS_PORT, scraped every second)', script: 'project-server.mjs', loginPath: '/auth/login', env: { BENCH_KEY_PREFIX: prefix + 'm:', BENCH_METRICS: 'on' } },
      ...(redis.url === undefined
        ? []
        : [
            { id: 'project-redis', label: 'project GET /api/user/info, Redis stores', script: 'project-server.mjs', loginPath: '/auth/login', env: { BENCH_KEY_PREFIX: prefix, BENCH_REDIS_URL: redis.url } },
            { id: 'project-redis-cache', label: 'project GET /api/user/info, Redis stores + client cache', script: 'project-server.mjs', loginPath: '/auth/login', env: { BENCH_KEY_PREFIX: prefix + 'cc:', BENCH_REDIS_URL: redis.url, BENCH_REDIS_CLIENT_CACHE: 'on' } }
          ]),
      { id: 'floor', label: 'floor: bare Fastify forwarder (undici Pool, fixed token, no checks)', script: 'floor-server.mjs', loginPath: '/auth/login', env: {} },
      { id: 'lean', label: 'lean Fastify route (@fastify/session + undici Pool)', script: 'lean-server.mjs', loginPath: '/auth/login', env: {} },
      ...(redis.url === undefined
        ? []
        : [{ id: 'lean-redis', label: 'lean Fastify route, sessions in Redis', script: 'lean-server.mjs', loginPath: '/auth/login', env: { BENCH_KEY_PREFIX: prefix + 'lean:', BENCH_REDIS_URL: redis.url } }]),
      { id: 'guide', label: 'guide pattern (Express + express-session + fetch)', script: 'guide-server.mjs', loginPath: '/auth/oauth/start', env: {} }
    ]
    const targets = []
    for (const def of defs) {
      if (SETTINGS.skip.includes('throughput')) break
      if (SETTINGS.targets.length > 0 && !SETTINGS.targets.includes(def.id)) continue
      log(`starting ${def.id} and signing in ${SETTINGS.sessionsPerTarget} sessions`)
      const target = await startTarget(def, common)
      stops.push(() => target.handle.stop())
      targets.push(target)
    }
    result.throughput = await throughput(targets, upstream)
    if (!SETTINGS.skip.includes('side-by-side')) result.sideBySide = await sideBySide(targets, redis.url)

    const redisTarget = targets.find((x) => x.id === 'project-redis')
    if (redisTarget !== undefined) {
      log(`Redis round trips: ${SETTINGS.redisCountRequests} requests`)
      result.redisRoundTrips = await redisRoundTrips(redisTarget, redis.url)
    }
    const cachedTarget = targets.find((x) => x.id === 'project-redis-cache')
    if (cachedTarget !== undefined) {
      log(`Redis round trips with the client cache: ${SETTINGS.redisCountRequests} requests`)
      result.redisRoundTripsCached = await redisRoundTrips(cachedTarget, redis.url)
    }
    if (redis.url !== undefined) {
      const client = new Redis(redis.url)
      const keys = await client.keys(`${prefix}*`)
      if (keys.length > 0) await client.del(...keys)
      client.disconnect()
    }
    // Free the cores for what follows.
    for (const target of targets) await target.handle.stop()

    if (redis.url !== undefined && !SETTINGS.skip.includes('storm')) {
      log(`refresh storm: ${SETTINGS.storm} concurrent requests over 2 instances`)
      result.storm = await refreshStorm(redis.url)
    }
    if (!SETTINGS.skip.includes('micro')) {
      log('diagnostics channels: what publishing costs per call (bench/diagnostics.mjs)')
      result.micro = await micro()
    }
    if (!SETTINGS.skip.includes('heap')) {
      log(`heap per ${SETTINGS.heapSessions} sessions`)
      result.heap = await heapPerSessions()
    }
    if (!SETTINGS.skip.includes('flood')) {
      result.flood = []
      for (const backend of redis.url === undefined ? ['memory'] : ['memory', 'redis']) {
        log(`flood, ${backend} stores: ${SETTINGS.floodDuration} s of anonymous GET /auth/login, a sign-in every ${SETTINGS.floodSignInEveryMs} ms`)
        result.flood.push(await flood(backend, common, redis.url))
      }
    }
  } catch (err) {
    failed = true
    result.error = err?.stack ?? String(err)
    log(`FAILED: ${err?.message ?? err}`)
  } finally {
    for (const stop of stops.reverse()) {
      try {
        await stop()
      } catch {}
    }
  }
  result.seconds = (Date.now() - started) / 1000
  result.loadavgAtEnd = loadavg()[0]
  const { rows, goals } = buildReport(result)
  result.goalChecks = goals
  const m = result.machine
  const out = [
    '',
    `fastify-aihubmix benchmarks, ${result.date.slice(0, 10)}: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`,
    `${SETTINGS.connections} connections, ${SETTINGS.rounds} alternating rounds × ${SETTINGS.duration} s per target after ${SETTINGS.warmup} s warm-up (medians), ` +
      `${SETTINGS.sessionsPerTarget} signed-in sessions per target, one local upstream; Redis: ${result.redis?.kind ?? 'skipped'}; ` +
      `load average ${result.loadavgAtStart?.toFixed(1)} at start, ${result.loadavgAtEnd.toFixed(1)} at end`,
    '',
    renderTable(rows),
    '',
    `upstream calls per request: ${Object.entries(result.throughput ?? {}).map(([id, s]) => `${id} ${s.upstreamCallsPerRequest.toFixed(2)}`).join(', ')}`,
    `goals met: ${goals.filter((g) => g.ok).length} of ${goals.length}; ran in ${result.seconds.toFixed(0)} s; JSON: ${relative(process.cwd(), join(RESULTS_DIR, 'latest.json'))}`,
    ''
  ]
  process.stdout.write(out.join('\n'))
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(join(RESULTS_DIR, 'latest.json'), JSON.stringify(result, null, 2) + '\n')
  if (failed) {
    process.stderr.write(result.error + '\n')
    process.exitCode = 1
  }
}

main()
