// Shared helpers of the benchmark: child processes, sign-in through a server's own
// login routes, load runs with exact latencies, percentiles.
import { fork } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url))

/** A free TCP port on 127.0.0.1 (the OS picks it; the child listens on it right after). */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Forks `bench/<script>` with `env` and waits for its `{ type: 'ready', url }` message.
 * Every child listens on 127.0.0.1 only and stops on `{ type: 'stop' }`.
 */
export function startChild (script, { env = {}, execArgv = [], readyTimeoutMs = 30_000 } = {}) {
  const child = fork(new URL(script, import.meta.url), [], {
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  let exited = false
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve({ code, signal }) }))
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within ${readyTimeoutMs} ms`)), readyTimeoutMs)
    child.on('message', (msg) => {
      if (msg?.type === 'ready') {
        clearTimeout(timer)
        resolve(msg)
      } else if (msg?.type === 'error') {
        clearTimeout(timer)
        reject(new Error(`${script}: ${msg.message}`))
      }
    })
    exit.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${script} exited before it was ready (code ${code}, signal ${signal})`))
    })
  })
  const handle = {
    child,
    url: undefined,
    info: undefined,
    /** Sends `{ type }` and resolves with the child's next message of that type. */
    ask (type) {
      return new Promise((resolve) => {
        const onMessage = (msg) => {
          if (msg?.type !== type) return
          child.off('message', onMessage)
          resolve(msg)
        }
        child.on('message', onMessage)
        child.send({ type })
      })
    },
    async stop () {
      if (exited) return
      child.send({ type: 'stop' })
      const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL') }, 10_000)
      await exit
      clearTimeout(timer)
    }
  }
  return ready.then((msg) => {
    handle.url = msg.url
    handle.info = msg
    return handle
  }, async (err) => {
    if (!exited) child.kill('SIGKILL')
    throw err
  })
}

/**
 * In a child: reports ready, and stops cleanly (so --cpu-prof writes its profile) on
 * `{ type: 'stop' }`, SIGTERM or SIGINT.
 */
export function serveUntilStopped (url, close, extra = {}) {
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    Promise.resolve(close()).then(() => process.exit(0), () => process.exit(1))
  }
  process.on('message', (msg) => {
    if (msg?.type === 'stop') stop()
    // CPU time of this process so far (µs, user + system): the parent takes differences around a run.
    else if (msg?.type === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send({ type: 'cpu', micros: user + system, user, system })
    } else if (msg?.type === 'memory') {
      // What lasts: after full collections when the child runs with --expose-gc. maxRSS: the peak so far (bytes).
      const collected = typeof globalThis.gc === 'function'
      if (collected) for (let i = 0; i < 3; i++) globalThis.gc()
      const { rss, heapUsed } = process.memoryUsage()
      process.send({ type: 'memory', rss, heapUsed, maxRss: process.resourceUsage().maxRSS * 1024, collected })
    }
  })
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  process.on('disconnect', stop)
  process.send({ type: 'ready', url, ...extra })
}

/** In a child: reports a start failure to the parent and exits. */
export function failStart (err) {
  process.send?.({ type: 'error', message: err?.message ?? String(err) })
  process.exitCode = 1
  setTimeout(() => process.exit(1), 100).unref()
}

/** A cookie jar for one client: name=value per origin, nothing else (all traffic is plain http on 127.0.0.1). */
class CookieJar {
  #byOrigin = new Map()

  store (url, response) {
    const origin = new URL(url).origin
    let jar = this.#byOrigin.get(origin)
    if (jar === undefined) this.#byOrigin.set(origin, (jar = new Map()))
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0]
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const expired = /;\s*(max-age=0|expires=thu, 01 jan 1970)/i.test(line) || value === ''
      if (expired) jar.delete(name)
      else jar.set(name, value)
    }
  }

  header (url) {
    const jar = this.#byOrigin.get(new URL(url).origin)
    if (jar === undefined) return ''
    return [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
  }
}

/**
 * Signs a new browser in through the server's own login route, following redirects by hand
 * (login → provider authorize → callback → app). Returns the app's Cookie header.
 */
export async function signIn (appUrl, loginPath) {
  const jar = new CookieJar()
  let url = new URL(loginPath, appUrl).href
  for (let hop = 0; hop < 6; hop++) {
    const cookie = jar.header(url)
    const res = await fetch(url, { redirect: 'manual', headers: cookie === '' ? {} : { cookie } })
    jar.store(url, res)
    await res.arrayBuffer()
    const location = res.headers.get('location')
    if (res.status < 300 || res.status >= 400 || location === null) {
      throw new Error(`sign-in at ${appUrl} stopped at ${new URL(url).pathname} with status ${res.status}`)
    }
    const next = new URL(location, url)
    if (next.origin === new URL(appUrl).origin && !next.pathname.startsWith('/auth') && !next.pathname.startsWith('/oauth')) {
      if (next.searchParams.has('error')) throw new Error(`sign-in at ${appUrl} failed: ${next.searchParams.get('error')}`)
      return jar.header(appUrl)
    }
    url = next.href
  }
  throw new Error(`sign-in at ${appUrl} did not finish within 6 redirects`)
}

/** The value at quantile q (0..1) of an ascending array, nearest rank. */
export function quantile (sorted, q) {
  if (sorted.length === 0) return NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

export function median (values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * One autocannon run against `url` + `path`, cycling through the signed-in sessions' cookies (none:
 * requests without a cookie). Latencies are kept exactly (autocannon's own histogram has 1 ms resolution)
 * for every answer; requests/s counts the answers `accept` takes (default 2xx) only.
 */
export async function runLoad ({ url, path, cookies, connections, duration, amount, headers = {}, accept = (status) => status >= 200 && status < 300 }) {
  const latencies = []
  let non2xx = 0
  const requests = cookies.length === 0
    ? [{ method: 'GET', path, headers }]
    : cookies.map((cookie) => ({ method: 'GET', path, headers: { ...headers, cookie } }))
  const opts = {
    url,
    connections,
    pipelining: 1,
    requests,
    timeout: 10,
    ...(amount === undefined ? { duration } : { amount })
  }
  const started = process.hrtime.bigint()
  const instance = autocannon(opts)
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (accept(statusCode)) latencies.push(responseTime)
    else non2xx++
  })
  const result = await instance
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  latencies.sort((a, b) => a - b)
  const ok = latencies.length
  return {
    requests: ok + non2xx,
    ok,
    non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: result.duration ?? seconds,
    rps: ok / (result.duration || seconds),
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99)
  }
}

export function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
