import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// The long runs in short: `npm run bench` and `npm run chaos` in tiny configurations, so that the suite sees them
// start, run every part and print their tables. No timing is asserted (the numbers of a one-second run mean
// nothing); what is asserted is that they complete, print the ratio and goal lines, and the outcomes that are
// counts: one upstream call per request, nobody logged out, no refresh token used twice.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/**
 * Runs `npm run <script>` with only PATH and HOME of this process' environment: not tap's NODE_OPTIONS (its
 * loaders) and coverage variables, which would load the runs' dozen processes with the test runner's machinery,
 * and not a REDIS_URL (both runs start a private redis-server).
 */
function npmRun (script: string, env: Record<string, string>): Promise<Run> {
  const base: Record<string, string> = {}
  for (const name of ['PATH', 'HOME']) {
    const value = process.env[name]
    if (value !== undefined) base[name] = value
  }
  return new Promise((resolve, reject) => {
    // Through `env -i`: tap's process tracker rewrites the environment of every child this file spawns (it adds its
    // NODE_OPTIONS and coverage variables whatever `env` says), so the clean environment is set one process later.
    const vars = Object.entries({ ...base, ...env }).map(([name, value]) => `${name}=${value}`)
    const child = spawn('env', ['-i', ...vars, 'npm', 'run', '--silent', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

function row (stdout: string, measure: string): string[] | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(`| ${measure} `))
  return line?.split('|').slice(1, -1).map((cell) => cell.trim())
}

/** Connections of the tiny bench run (two per side when a pair is loaded side by side). */
const CONNECTIONS = 4
// Both start at once (about 40 s each on an idle 2-core machine, mostly processes starting and the chaos run's
// fixed timeline): together they take the time of the longer one.
const benchDir = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
const chaosDir = mkdtempSync(join(tmpdir(), 'chaos-smoke-'))
t.teardown(() => {
  rmSync(benchDir, { recursive: true, force: true })
  rmSync(chaosDir, { recursive: true, force: true })
})
const benchRun = npmRun('bench', {
  BENCH_RESULTS_DIR: benchDir,
  BENCH_TARGETS: 'project-memory,project-redis,floor,lean',
  BENCH_SKIP: 'storm,heap,flood,micro',
  BENCH_ROUNDS: '2',
  BENCH_SIDE_ROUNDS: '2',
  BENCH_DURATION: '1',
  BENCH_WARMUP: '0',
  BENCH_SESSIONS: '2',
  BENCH_CONNECTIONS: String(CONNECTIONS),
  BENCH_REDIS_REQUESTS: '100'
})
const chaosRun = npmRun('chaos', {
  BENCH_RESULTS_DIR: chaosDir,
  CHAOS_USERS: '4',
  CHAOS_TOKEN_SECONDS: '4',
  CHAOS_BASELINE_SECONDS: '1',
  CHAOS_FAULT_SECONDS: '1',
  CHAOS_SETTLE_SECONDS: '5',
  CHAOS_KILL_SECONDS: '1',
  CHAOS_REDIS_DOWN_SECONDS: '0'
})

t.test('npm run bench, tiny: every target runs, the ratio lines and their goals are printed', async (t) => {
  const dir = benchDir
  const run = await benchRun
  t.equal(run.code, 0, `exit code (stderr: ${run.stderr.slice(-1500)})`)
  for (const [measure, goal] of [
    ['project ÷ floor: req/s, side by side', '≥ 0.85×'],
    ['project ÷ floor: p99, side by side', '≤ 1.2×'],
    ['project ÷ lean: req/s, side by side', '≥ 1.3×'],
    ['project ÷ lean: p99, side by side', '≤ 1.0×'],
    ['Redis stores ÷ memory stores: req/s, side by side', '≥ 0.9×']
  ] as const) {
    const cells = row(run.stdout, measure)
    t.ok(cells, `${measure}: printed`)
    t.match(cells?.[1], /^\d+\.\d\d×$/, `${measure}: a ratio`)
    t.equal(cells?.[2], goal, `${measure}: its goal`)
    t.match(cells?.[3], /^[✓✗]$/, `${measure}: met or not`)
  }
  for (const measure of [
    'project ÷ floor: req/s side by side, each round',
    'project ÷ floor: p99 side by side, each round',
    'project ÷ floor: req/s one after the other, each round',
    'project ÷ floor: p99 one after the other, each round',
    'project ÷ lean: req/s side by side, each round',
    'project ÷ lean: req/s one after the other, each round',
    'Redis stores ÷ memory stores: req/s side by side, each round',
    'Redis stores ÷ memory stores: req/s one after the other, each round'
  ]) {
    t.match(row(run.stdout, measure)?.[1], /^\d+\.\d\d×, \d+\.\d\d×$/, `${measure}: one ratio per round`)
  }
  const result = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as {
    throughput: Record<string, { non2xx: number, errors: number, rounds: Array<{ requests: number, upstreamCalls: number }> }>
    redisRoundTrips: { perRequest: number, non2xx: number }
  }
  t.same(Object.keys(result.throughput).sort(), ['floor', 'lean', 'project-memory', 'project-redis'])
  for (const [id, s] of Object.entries(result.throughput)) {
    t.equal(s.rounds.length, 2, `${id}: two rounds`)
    t.equal(s.non2xx, 0, `${id}: every answer 2xx`)
    for (const [i, round] of s.rounds.entries()) {
      // The upstream's count over the round: every answered request made its call (nothing cached), and at most one
      // more per connection for requests cut short at the round's end, and as many for the previous target's cut
      // requests arriving late. (A ratio bound instead failed on a loaded machine, where a 1 s round of the slowest
      // target answered only a few requests.)
      const calls = round.upstreamCalls
      t.ok(calls >= round.requests && calls <= round.requests + 2 * CONNECTIONS,
        `${id}, round ${i + 1}: one upstream call per request (${calls} calls, ${round.requests} requests)`)
    }
    t.ok(s.rounds.reduce((n, round) => n + round.requests, 0) > 0, `${id}: answered requests`)
  }
  // Side by side: both loaded at once, each with half the connections, every answer 2xx.
  const side = (result as unknown as { sideBySide: Record<string, { measured: string, reference: string, connectionsEach: number, failed: number, rounds: unknown[], redisCpuMicrosPerRequest?: number }> }).sideBySide
  t.same(Object.keys(side), ['project-memory/floor', 'project-memory/lean', 'floor/lean', 'project-redis/project-memory'],
    'the project measured side by side with the floor and the lean route, the floor with the lean route, the Redis stores with the memory stores')
  for (const [key, pair] of Object.entries(side)) {
    t.equal(`${pair.measured}/${pair.reference}`, key)
    t.equal(pair.connectionsEach, CONNECTIONS / 2, `${key}: half the connections each`)
    t.equal(pair.rounds.length, 2, `${key}: two rounds`)
    t.equal(pair.failed, 0, `${key}: every answer 2xx`)
  }
  // The Redis server's own CPU, measured for the pair whose measured target uses Redis (INFO cpu around each round).
  const redisCpu = side['project-redis/project-memory']?.redisCpuMicrosPerRequest
  t.ok(typeof redisCpu === 'number' && Number.isFinite(redisCpu) && redisCpu > 0, `the Redis server's CPU per request of the Redis target (${redisCpu} µs)`)
  t.equal(side['project-memory/floor']?.redisCpuMicrosPerRequest, undefined, 'and only for that pair')
  t.match(row(run.stdout, "Redis stores ÷ memory stores: the Redis server's CPU per request, side by side")?.[1], /^\d[\d,]* µs \(the app's own: \d[\d,]* µs\); CPU per request with it: \d+\.\d\d×$/)
  // The floor against the lean route: printed as a reference, with no goal.
  const floorLean = row(run.stdout, 'floor ÷ lean (no goal; a proxy with no check): req/s, CPU per request, p99, side by side')
  t.match(floorLean?.[1], /^\d+\.\d\d×, \d+\.\d\d×, \d+\.\d\d×$/, 'floor ÷ lean: three ratios')
  t.equal(floorLean?.[2], '', 'floor ÷ lean: no goal')
  t.equal(floorLean?.[3], '', 'floor ÷ lean: neither met nor missed')
  t.match(row(run.stdout, 'floor ÷ lean: req/s side by side, each round')?.[1], /^\d+\.\d\d×, \d+\.\d\d×$/)
  t.equal(result.redisRoundTrips.non2xx, 0)
  t.ok(result.redisRoundTrips.perRequest <= 1, 'at most one Redis command per request')
})

t.test('npm run chaos, short: every fault window runs and every goal is met', async (t) => {
  const dir = chaosDir
  const run = await chaosRun
  t.equal(run.code, 0, `exit code: every goal met (stderr: ${run.stderr.slice(-1500)})`)
  for (const window of ['baseline', '1', '2', '3', '4', '5']) t.ok(row(run.stdout, window), `window ${window} printed`)
  t.same(row(run.stdout, 'users logged out (401 answers)')?.slice(1), ['0', '0', '✓'], 'nobody logged out')
  t.same(row(run.stdout, 'refresh tokens used twice (the provider\'s count)')?.slice(1), ['0', '0', '✓'], 'no refresh token used twice')
  t.same(row(run.stdout, 'users still signed in on both instances at the end')?.slice(1), ['4 of 4', '4', '✓'])
  t.same(row(run.stdout, 'instance log lines holding a token or secret')?.slice(1), ['0', '0', '✓'])
  const result = JSON.parse(readFileSync(join(dir, 'chaos-latest.json'), 'utf8')) as { goals: Array<{ met: boolean }> }
  t.ok(result.goals.length >= 9 && result.goals.every((g) => g.met), 'every goal met in the JSON too')
})
