// `npm run chaos`: the project's fault-injection run (issue 14).
//
// Its own redis-server (append-only file, appendfsync always) on a free port; two instances of the example server
// (example/dist/server.js, each its own process, so SIGKILL is real) sharing it; the mock provider in this process,
// with short access tokens, rotating refresh tokens, and a reused refresh token refused (the grant revoked). Users
// sign in through the real login flow over HTTP and keep calling GET /api/user/info, alternating between the two
// instances, while faults come one after another. Prints a table per fault window and the goals, writes
// bench/results/chaos-latest.json (and the instances' log lines next to it), and exits 1 when a goal is missed.
//
// Everything listens on and talks to 127.0.0.1 only. Bounded: a fixed number of users, fixed windows, and a
// deadline after which everything is stopped and the run fails.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { BENCH_DIR, freePort } from './lib.mjs'

const env = process.env
function numberEnv (name, fallback, min) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}`)
  return value
}

const SETTINGS = {
  users: numberEnv('CHAOS_USERS', 20, 1),
  tokenSeconds: numberEnv('CHAOS_TOKEN_SECONDS', 30, 4),
  baselineSeconds: numberEnv('CHAOS_BASELINE_SECONDS', 10, 1),
  /** How long the token endpoint and userinfo fail, and how long Redis is stalled. */
  faultSeconds: numberEnv('CHAOS_FAULT_SECONDS', 3, 1),
  /** Observation after each fault, before the next one. */
  settleSeconds: numberEnv('CHAOS_SETTLE_SECONDS', 20, 5),
  /** How long the killed instance stays down before it is started again. */
  killSeconds: numberEnv('CHAOS_KILL_SECONDS', 3, 0),
  /** How long Redis stays down after its SHUTDOWN before it is started again. */
  redisDownSeconds: numberEnv('CHAOS_REDIS_DOWN_SECONDS', 1, 0),
  /** Each user's pause between two requests. */
  pauseMs: numberEnv('CHAOS_PAUSE_MS', 100, 0),
  /** Which instance runs with REDIS_CLIENT_CACHE=on: a, b, both or none. */
  clientCache: (env.CHAOS_CLIENT_CACHE ?? 'b').toLowerCase()
}
if (!['a', 'b', 'both', 'none'].includes(SETTINGS.clientCache)) throw new Error('CHAOS_CLIENT_CACHE must be a, b, both or none')

const GOALS = { recoveryMs: 4000, refreshFactor: 1.5 }
const EXAMPLE_SERVER = fileURLToPath(new URL('../example/dist/server.js', import.meta.url))
/** Where results (and profiles) go; BENCH_RESULTS_DIR moves them (the test suite's short runs write to a temporary directory). */
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR || join(BENCH_DIR, 'results')
const CSRF = { 'x-csrf': '1', accept: 'application/json' }

function log (line) {
  process.stderr.write(`chaos: ${line}\n`)
}

const clock = { zero: performance.now() }
const now = () => performance.now() - clock.zero

// ---------------------------------------------------------------- processes

/** Everything started here, stopped on any exit. */
const cleanups = []
async function cleanup () {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()
    try { await fn() } catch {}
  }
}

function redisBinary () {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' })
  const path = found.stdout.trim()
  return found.status === 0 && path !== '' ? path : undefined
}

function ping (port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let answer = ''
    socket.setTimeout(500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => {
      answer += d.toString()
      if (answer.includes('\r\n')) { socket.destroy(); resolve(answer.startsWith('+PONG')) }
    })
    socket.on('error', () => resolve(false))
    socket.on('timeout', () => { socket.destroy(); resolve(false) })
  })
}

async function waitFor (check, what, timeoutMs = 15_000, everyMs = 25) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(everyMs)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A private redis-server that persists to an append-only file, fsynced on every write. */
async function startRedis (binary) {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'aihubmix-chaos-redis-'))
  let child
  const start = async () => {
    child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'always', '--dir', dir, '--logfile', ''], { stdio: 'ignore' })
    await waitFor(() => ping(port), `redis-server on port ${port}`)
  }
  await start()
  const server = {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    /** SHUTDOWN (Redis fsyncs its append-only file first), and waits for the process to end. */
    async shutdown () {
      const c = child
      const exited = new Promise((resolve) => c.once('exit', resolve))
      const client = new Redis(server.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
      client.on('error', () => {})
      await client.connect()
      await client.call('SHUTDOWN').catch(() => {}) // the connection closes instead of an answer
      client.disconnect()
      await exited
    },
    async close () {
      if (child !== undefined && child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
  cleanups.push(() => server.close())
  return server
}

/** One example server process; its log lines are kept in `lines`. */
function exampleInstance (name, port, baseEnv) {
  const url = `http://127.0.0.1:${port}`
  const lines = []
  let child
  const instance = {
    name,
    url,
    lines,
    async start () {
      child = spawn(process.execPath, [EXAMPLE_SERVER], {
        env: { ...baseEnv, PORT: String(port), REDIS_CLIENT_CACHE: cacheFor(name) },
        stdio: ['ignore', 'pipe', 'pipe']
      })
      let ready
      const listening = new Promise((resolve) => { ready = resolve })
      for (const stream of [child.stdout, child.stderr]) {
        let rest = ''
        stream.setEncoding('utf8')
        stream.on('data', (chunk) => {
          const parts = (rest + chunk).split('\n')
          rest = parts.pop()
          for (const line of parts) {
            if (line.startsWith('listening on ')) ready()
            else if (line.trim() !== '') lines.push(line)
          }
        })
      }
      const me = child
      // An instance that ends without being stopped or killed here says so at once, with its last lines: the final
      // check would otherwise only meet a refused connection.
      me.once('exit', (code, signal) => {
        if (me.deliberate !== true) log(`${name} exited on its own (code ${code}, signal ${signal}): ${lines.slice(-3).join(' | ')}`)
      })
      const exited = new Promise((resolve, reject) => child.once('exit', (code, signal) => reject(new Error(`${name} exited (code ${code}, signal ${signal}): ${lines.slice(-3).join(' | ')}`))))
      await Promise.race([listening, exited, sleep(20_000).then(() => { throw new Error(`${name} did not start within 20 s`) })])
    },
    /** True while the instance's process runs (not killed, stopped or ended on its own). */
    alive () {
      return child !== undefined && child.exitCode === null && child.signalCode === null
    },
    async kill () {
      const c = child
      const exited = new Promise((resolve) => c.once('exit', resolve))
      c.deliberate = true
      c.kill('SIGKILL')
      await exited
    },
    async stop () {
      const c = child
      if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise((resolve) => c.once('exit', resolve))
      c.deliberate = true
      c.kill('SIGTERM')
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
  }
  cleanups.push(() => instance.stop())
  return instance
}

function cacheFor (name) {
  const c = SETTINGS.clientCache
  return c === 'both' || c === name.toLowerCase() ? 'on' : 'off'
}

// ---------------------------------------------------------------- users

/** Cookies by host name, as a browser keeps them (a cookie of 127.0.0.1 goes to every port of it). */
class Jar {
  #cookies = new Map()
  store (res) {
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0]
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      if (/;\s*max-age=0/i.test(line) || /expires=thu, 01 jan 1970/i.test(line) || value === '') this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
  }

  header () {
    return [...this.#cookies].map(([n, v]) => `${n}=${v}`).join('; ')
  }
}

/** Signs a new user in: GET <app>/auth/login, then every redirect by hand, until back on a page of an app. */
async function signIn (appUrl, appOrigins) {
  const jar = new Jar()
  let url = `${appUrl}/auth/login`
  for (let hop = 0; hop < 8; hop++) {
    const cookie = jar.header()
    const res = await fetch(url, { redirect: 'manual', headers: cookie === '' ? {} : { cookie } })
    jar.store(res)
    await res.arrayBuffer()
    const location = res.headers.get('location')
    if (res.status < 300 || res.status >= 400 || location === null) throw new Error(`sign-in stopped at ${new URL(url).pathname} with ${res.status}`)
    const next = new URL(location, url)
    if (appOrigins.includes(next.origin) && !next.pathname.startsWith('/auth/')) {
      if (next.searchParams.has('error')) throw new Error(`sign-in failed: ${next.searchParams.get('error')}`)
      return jar.header()
    }
    url = next.href
  }
  throw new Error('sign-in did not finish within 8 redirects')
}

// ---------------------------------------------------------------- the run

async function main () {
  const started = Date.now()
  const binary = redisBinary()
  if (binary === undefined) throw new Error('redis-server is not installed (the chaos run starts its own)')
  if (!existsSync(EXAMPLE_SERVER)) throw new Error('example/dist/server.js is missing: run npm install (or npm run build) first')
  const plannedSeconds = SETTINGS.baselineSeconds + 5 * SETTINGS.settleSeconds + 3 * SETTINGS.faultSeconds + SETTINGS.killSeconds + SETTINGS.redisDownSeconds + 10
  const deadline = setTimeout(() => {
    log(`still running ${plannedSeconds + 240} s after the start: stopping everything`)
    cleanup().finally(() => process.exit(1))
  }, (plannedSeconds + 240) * 1000)
  deadline.unref()

  const redis = await startRedis(binary)
  log(`redis-server on port ${redis.port} (appendonly yes, appendfsync always)`)
  const admin = new Redis(redis.url, { retryStrategy: () => 100, maxRetriesPerRequest: 1 })
  admin.on('error', () => {})
  cleanups.push(async () => admin.disconnect())

  const mock = await startMockProvider({
    tokenPrefix: 'chaos',
    accessTokenTtlSeconds: SETTINGS.tokenSeconds,
    rotateRefreshTokens: true,
    refreshReuseRevokes: true
  })
  cleanups.push(() => mock.close())
  const [portA, portB] = [await freePort(), await freePort()]
  // One redirect URI, registered with the provider: instance A's callback. A sign-in started on B comes back
  // there; its login cookies are for 127.0.0.1, which A is too.
  const redirectUri = `http://127.0.0.1:${portA}/auth/callback`
  const app = mock.createApp({ name: 'chaos', redirectUri })
  const sessionSecret = randomBytes(32).toString('base64url')
  const baseEnv = {
    PATH: env.PATH ?? '',
    ENV_FILE: join(tmpdir(), `aihubmix-chaos-no-env-${process.pid}`),
    HOST: '127.0.0.1',
    AIHUBMIX_BASE_URL: mock.url,
    AIHUBMIX_CLIENT_ID: app.clientId,
    AIHUBMIX_CLIENT_SECRET: app.clientSecret,
    AIHUBMIX_REDIRECT_URI: redirectUri,
    // Both instances serve one public origin, as behind a load balancer: oauth-routes refuses to start when the
    // redirect URI is not its own callback route on PUBLIC_URL.
    PUBLIC_URL: `http://127.0.0.1:${portA}`,
    SESSION_SECRET: sessionSecret,
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn'
  }
  const instances = [exampleInstance('A', portA, baseEnv), exampleInstance('B', portB, baseEnv)]
  await Promise.all(instances.map((i) => i.start()))
  log(`instances A ${instances[0].url} (client cache ${cacheFor('A')}), B ${instances[1].url} (client cache ${cacheFor('B')}); mock provider ${mock.url}, ${SETTINGS.tokenSeconds}-second access tokens`)

  const cookies = []
  const origins = instances.map((i) => i.url)
  for (let u = 0; u < SETTINGS.users; u++) cookies.push(await signIn(instances[u % 2].url, origins))
  log(`${SETTINGS.users} users signed in (half on each instance)`)
  mock.resetCounts()

  // Load: every user in a loop, alternating between the instances.
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 })
  cleanups.push(() => agent.close())
  const records = []
  const load = { running: true }
  async function user (u) {
    for (let n = 0; load.running; n++) {
      const i = (u + n) % 2
      const t0 = now()
      let status
      let error
      try {
        const res = await request(`${instances[i].url}/api/user/info`, {
          headers: { ...CSRF, cookie: cookies[u] }, dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000
        })
        const body = await res.body.text()
        status = res.statusCode
        if (status !== 200) {
          try { error = JSON.parse(body).error } catch { error = 'non-json' }
        }
      } catch (err) {
        status = 'conn'
        error = err.code ?? err.name
      }
      records.push({ u, i, t0, t1: now(), status, error })
      if (SETTINGS.pauseMs > 0) await sleep(SETTINGS.pauseMs)
    }
  }
  clock.zero = performance.now()
  const loops = Array.from({ length: SETTINGS.users }, (_, u) => user(u))
  const windows = [{ name: 'baseline', fault: 'none', start: 0, end: 0 }]
  let forced = 0
  /** Token calls that had reached the provider when Redis was shut down (the window is about refreshes in flight). */
  let refreshesAtShutdown = 0
  log(`load started; baseline ${SETTINGS.baselineSeconds} s`)
  await sleep(SETTINGS.baselineSeconds * 1000)

  const F = SETTINGS.faultSeconds * 1000
  const faults = [
    {
      name: 'token endpoint 503 while every access token dies',
      async run () {
        const start = now()
        mock.setFault('token', 'http503')
        mock.expireAccessTokens()
        forced++
        await sleep(F)
        mock.setFault('token', null)
        return { start, end: now() }
      }
    },
    {
      name: 'userinfo 500',
      async run () {
        const start = now()
        mock.setFault('userinfo', 'http500')
        await sleep(F)
        mock.setFault('userinfo', null)
        return { start, end: now() }
      }
    },
    {
      name: `Redis stalled ${SETTINGS.faultSeconds} s (CLIENT PAUSE ALL)`,
      async run () {
        const start = now()
        await admin.call('CLIENT', 'PAUSE', String(F), 'ALL')
        await sleep(Math.max(0, start + F - now()))
        return { start, end: start + F }
      }
    },
    {
      name: `Redis SHUTDOWN, started again with its data ${SETTINGS.redisDownSeconds} s later; every access token dies just before (refreshes in flight)`,
      async run () {
        const start = now()
        // Every user's next request refreshes (after the provider's 401); the provider takes 300 ms to answer,
        // and Redis goes down before it does: the rotated sets cannot be stored when the answers come.
        mock.setLatency('token', 300)
        const before = mock.counts().token
        mock.expireAccessTokens()
        forced++
        // Without refreshes in flight this window would not test what it says: said in the log and the results.
        await waitFor(async () => mock.counts().token - before >= Math.ceil(SETTINGS.users / 2), 'refreshes to reach the provider', 5000, 5)
          .catch(() => log('warning: fewer than half the users\' refreshes reached the provider before Redis was shut down'))
        refreshesAtShutdown = mock.counts().token - before
        await redis.shutdown()
        await sleep(SETTINGS.redisDownSeconds * 1000)
        await redis.start()
        const end = now()
        mock.setLatency('token', 0)
        return { start, end }
      }
    },
    {
      name: `instance B killed (SIGKILL), started again ${SETTINGS.killSeconds} s later`,
      killed: 1,
      async run () {
        const start = now()
        await instances[1].kill()
        await sleep(SETTINGS.killSeconds * 1000)
        await instances[1].start()
        return { start, end: now() }
      }
    }
  ]
  for (const fault of faults) {
    log(`fault: ${fault.name}`)
    const { start, end } = await fault.run()
    windows.at(-1).end = start
    windows.push({ name: `${windows.length}`, fault: fault.name, start, faultEnd: end, end: 0, killed: fault.killed })
    await sleep(SETTINGS.settleSeconds * 1000)
  }
  load.running = false
  await Promise.all(loops)
  const loadEnd = now()
  windows.at(-1).end = loadEnd
  log('load stopped; checking every user on both instances')

  // Every user still signed in, on both instances.
  let signedIn = 0
  const stillOut = []
  for (let u = 0; u < SETTINGS.users; u++) {
    let ok = true
    for (const instance of instances) {
      const info = await finalRequest(agent, instance, '/api/user/info', { ...CSRF, cookie: cookies[u] })
      await info.body.dump()
      const session = await finalRequest(agent, instance, '/auth/session', { cookie: cookies[u] })
      const body = await session.body.json()
      if (info.statusCode !== 200 || body.authenticated !== true) {
        ok = false
        stillOut.push(`user ${u} on ${instance.name}: ${info.statusCode}`)
      }
    }
    if (ok) signedIn++
  }

  const counts = mock.counts()
  const issued = mock.issued()
  const secrets = [...issued.accessTokens, ...issued.refreshTokens, ...issued.codes, ...issued.clientSecrets, sessionSecret]
  const allLines = instances.flatMap((i) => i.lines.map((line) => ({ instance: i.name, line })))
  const leaks = allLines.filter(({ line }) => secrets.some((s) => line.includes(s)))
  const kept = allLines.filter(({ line }) => line.includes('could not be stored yet')).length
  const dropped = allLines.filter(({ line }) => line.includes('dropped a refreshed token set')).length

  // ------------------------------------------------------------ analysis
  const rows = []
  let worstRecovery = 0
  let unexpectedStatuses = 0
  let liveConnectionFailures = 0
  let baselineBad = 0
  const recoveries = []
  for (const w of windows) {
    const inWindow = records.filter((r) => r.t1 >= w.start && r.t1 < w.end)
    // A refusal by the killed instance counts as expected when its request was sent while the instance was down
    // (t0): its error can arrive just after the restart completed (seen once: one ECONNREFUSED ending after it).
    const refused = inWindow.filter((r) => r.status === 'conn' && w.killed === r.i && r.t0 <= w.faultEnd)
    const bad = inWindow.filter((r) => r.status !== 200 && !refused.includes(r))
    const byStatus = new Map()
    for (const r of bad) {
      const key = r.status === 'conn' ? `conn ${r.error}` : `${r.status} ${r.error}`
      byStatus.set(key, (byStatus.get(key) ?? 0) + 1)
    }
    unexpectedStatuses += bad.filter((r) => r.status !== 'conn' && ![502, 503, 504].includes(r.status)).length
    liveConnectionFailures += bad.filter((r) => r.status === 'conn').length
    let recovery = ''
    if (w.faultEnd === undefined) {
      baselineBad += bad.length
    } else {
      const lastBad = bad.reduce((latest, r) => Math.max(latest, r.t1), -Infinity)
      const ms = Math.max(0, lastBad - w.faultEnd)
      worstRecovery = Math.max(worstRecovery, ms)
      recoveries.push({ fault: w.fault, ms })
      recovery = bad.length === 0 ? 'no error' : fmtS(ms)
    }
    rows.push([
      w.name,
      w.fault,
      w.faultEnd === undefined ? fmtS(w.end - w.start) : fmtS(w.faultEnd - w.start),
      fmtInt(inWindow.length),
      fmtInt(bad.length),
      [...byStatus].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ×${v}`).join(', '),
      refused.length === 0 ? '' : fmtInt(refused.length),
      recovery
    ])
  }
  const answers401 = records.filter((r) => r.status === 401).length
  const durationS = loadEnd / 1000
  const halfLife = SETTINGS.tokenSeconds / 2
  const bound = GOALS.refreshFactor * SETTINGS.users * (durationS / halfLife + forced)
  const refreshCalls = counts.grants.refresh_token

  const goals = []
  const goal = (name, measured, target, met) => goals.push({ name, measured, target, met })
  goal('users logged out (401 answers)', fmtInt(answers401), '0', answers401 === 0)
  goal('refresh tokens used twice (the provider\'s count)', fmtInt(counts.refreshTokenReuses), '0', counts.refreshTokenReuses === 0)
  goal('answers other than 200, 502, 503, 504', fmtInt(unexpectedStatuses), '0', unexpectedStatuses === 0)
  goal('failed connections, except to the killed instance while it was down', fmtInt(liveConnectionFailures), '0', liveConnectionFailures === 0)
  goal('baseline (before any fault): answers other than 200', fmtInt(baselineBad), '0', baselineBad === 0)
  goal('every answer 200 again after each fault ends (worst)', fmtS(worstRecovery), `≤ ${fmtS(GOALS.recoveryMs)}`, worstRecovery <= GOALS.recoveryMs)
  goal(`refresh calls (${SETTINGS.users} users, ${durationS.toFixed(0)} s, ${forced} times every token killed)`, fmtInt(refreshCalls),
    `≤ ${GOALS.refreshFactor} × ${SETTINGS.users} × (${durationS.toFixed(0)} s ÷ ${halfLife} s + ${forced}) = ${Math.floor(bound)}`, refreshCalls <= bound)
  goal('users still signed in on both instances at the end', `${signedIn} of ${SETTINGS.users}`, `${SETTINGS.users}`, signedIn === SETTINGS.users)
  goal('instance log lines holding a token or secret', fmtInt(leaks.length), '0', leaks.length === 0)
  goal('refreshes at the provider when Redis was shut down', fmtInt(refreshesAtShutdown), '≥ 1', refreshesAtShutdown >= 1)

  const header = `${SETTINGS.users} users, ${SETTINGS.tokenSeconds}-second access tokens (rotating refresh tokens, reuse revokes), 2 instances (client cache: A ${cacheFor('A')}, B ${cacheFor('B')}), ` +
    `redis-server with appendfsync always; each user pauses ${SETTINGS.pauseMs} ms between requests; faults ${SETTINGS.faultSeconds} s, ${SETTINGS.settleSeconds} s after each; ` +
    `load ${durationS.toFixed(0)} s, whole run ${((Date.now() - started) / 1000).toFixed(0)} s; ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)}`
  const out = [
    header,
    '',
    table(['window', 'fault', 'lasted', 'answers', 'not 200', 'which', 'refused (killed)', 'all 200 again after'], rows),
    '',
    `refresh calls ${fmtInt(refreshCalls)} (${fmtInt(counts.grants.refresh_token)} refresh_token grants at the provider); rotated sets kept through a store failure: ${kept}, dropped: ${dropped}`,
    '',
    table(['goal', 'measured', 'target', 'met'], goals.map((g) => [g.name, g.measured, g.target, g.met ? '✓' : '✗'])),
    ''
  ]
  if (stillOut.length > 0) out.push(`signed out: ${stillOut.join('; ')}`)
  process.stdout.write(out.join('\n') + '\n')

  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(join(RESULTS_DIR, 'chaos-latest.json'), JSON.stringify({ settings: SETTINGS, windows, recoveries, goals, counts, kept, dropped, durationS }, null, 2))
  for (const instance of instances) writeFileSync(join(RESULTS_DIR, `chaos-${instance.name}.log`), instance.lines.join('\n') + '\n')
  clearTimeout(deadline)
  return goals.every((g) => g.met)
}

// ---------------------------------------------------------------- formatting

function fmtInt (n) {
  return Number(n).toLocaleString('en-US')
}

/**
 * A request of the final check. A refused connection is retried for up to 5 s while the instance's process still
 * runs (and said so on stderr); an instance whose process has ended is a failure of the run, named as such.
 */
async function finalRequest (agent, instance, path, headers) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await request(`${instance.url}${path}`, { headers, dispatcher: agent })
    } catch (err) {
      if (err?.code !== 'ECONNREFUSED') throw err
      if (!instance.alive()) throw new Error(`${instance.name} has ended: its connection was refused in the final check`)
      if (attempt === 25) throw err
      if (attempt === 0) log(`${instance.name} refused a connection in the final check while running; retrying`)
      await sleep(200)
    }
  }
}

function fmtS (ms) {
  return `${(ms / 1000).toFixed(1)} s`
}

function table (head, rows) {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c]).length)))
  const line = (cells) => `| ${cells.map((cell, c) => String(cell).padEnd(widths[c])).join(' | ')} |`
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

process.once('SIGINT', () => { cleanup().finally(() => process.exit(130)) })
main().then(async (met) => {
  await cleanup()
  process.exit(met ? 0 : 1)
}, async (err) => {
  log(`failed: ${err?.stack ?? err}`)
  await cleanup()
  process.exit(1)
})
