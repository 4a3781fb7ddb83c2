import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import { ReplyError, type Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { KEY_A, buildApp, deferred, sid, sleep, tokenSet, type T } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, redisUrl, uniquePrefix } from '../helpers/redis.js'
import { RedisStore, type RedisClient } from '../../src/token-store/redis-store.js'
import { MemoryStore } from '../../src/token-store/memory-store.js'
import { TokenStoreCore } from '../../src/token-store/token-store.js'
import { resolveOptions } from '../../src/token-store/options.js'
import { SOURCE_NODE_ARGS } from '../helpers/source-node-args.js'

// The times instances compare (a refresh's presented mark, a forced refresh's time) were written and read by each
// machine's own clock. With instance B's clock 50 s ahead of A's, A's mark looked 50 s old to B: with A stalled past
// its lease while at the provider, B took the lock, found the mark "over" and presented the same refresh token (the
// provider counted a reuse, revoked the grant, and the user was signed out). Those times are now on the store's
// clock: Redis's, measured with TIME by each instance (RedisStore.now()).

const CHILD = fileURLToPath(new URL('../helpers/skewed-instance.ts', import.meta.url))
const SHIFTED_CLOCK = pathToFileURL(fileURLToPath(new URL('../helpers/shifted-clock.mjs', import.meta.url))).href

interface ChildAnswer { accessToken?: string, code?: string, presented: string[], warnings: string[] }

/** Runs test/helpers/skewed-instance.ts in a process whose clock is `offsetMs` ahead of this one's. */
async function skewedInstance (t: T, offsetMs: number, job: Record<string, unknown>): Promise<ChildAnswer> {
  const child = spawn(process.execPath, [...SOURCE_NODE_ARGS, `--import=${SHIFTED_CLOCK}`, CHILD, redisUrl(), JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CLOCK_OFFSET_MS: String(offsetMs) }
  })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
  t.teardown(() => { clearTimeout(timer); if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => { out += chunk })
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  t.equal(code, 0, 'the other instance ran to its end')
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as ChildAnswer
}

/** A logger that keeps its warn and debug lines' messages. */
function capture (): { log: FastifyBaseLogger, warnings: string[], debug: string[] } {
  const warnings: string[] = []
  const debug: string[] = []
  const noop = (): void => {}
  const message = (args: unknown[]): string => String(args.find((a) => typeof a === 'string'))
  const log = {
    level: 'debug',
    fatal: noop,
    error: noop,
    warn: (...args: unknown[]) => { warnings.push(message(args)) },
    info: noop,
    debug: (...args: unknown[]) => { debug.push(message(args)) },
    trace: noop,
    silent: noop,
    child: () => log
  } as unknown as FastifyBaseLogger
  return { log, warnings, debug }
}

async function redisTime (client: Redis): Promise<number> {
  const [seconds, micros] = await client.call('TIME') as [string, string]
  return Number(seconds) * 1000 + Number(micros) / 1000
}

/** Makes `Date.now()` of this process run `shift()` ms off until the test ends. */
function shiftClock (t: T, shift: () => number): void {
  const real = Date.now
  Date.now = () => real() + shift()
  t.teardown(() => { Date.now = real })
}

t.test('RedisStore.now() is Redis\'s clock whatever this machine\'s says, measured again at each reconnection; one warning', async t => {
  const client = await connectRedis(t, { retryStrategy: () => 50 })
  if (client === undefined) return
  const admin = await connectRedis(t)
  if (admin === undefined) return
  let shift = 50_000
  shiftClock(t, () => shift)
  const { log, warnings } = capture()
  const store = new RedisStore({ client, lockChannel: uniquePrefix('clock') + 'lock-released', commandTimeoutMs: 5000, log })
  t.teardown(() => store.close())
  await store.get('test:clock:nothing') // answered after the TIME the store sent when it was made
  let off = store.now() - await redisTime(admin)
  t.ok(Math.abs(off) < 5000, `within a few seconds (not 50) of Redis's TIME with this machine 50 s ahead (${off.toFixed(0)} ms)`)
  t.equal(warnings.length, 1, 'one warning')
  t.match(warnings[0], /^token-store: this machine's clock is 50\.\d s ahead of Redis's; refresh fences use Redis's clock, but token expiry is judged by each machine's own: keep clocks in sync \(NTP\)$/)

  // The machine's clock is stepped (NTP): the next connection measures again.
  shift = -20_000
  client.disconnect(true)
  await once(client, 'ready')
  await store.get('test:clock:nothing')
  off = store.now() - await redisTime(admin)
  t.ok(Math.abs(off) < 5000, `measured again after the reconnection, 20 s behind now (${off.toFixed(0)} ms)`)
  t.equal(warnings.length, 1, 'still one warning per store')
})

t.test('RedisStore: within 5 s of Redis no warning; a TIME Redis refuses keeps the last offset, said once', async t => {
  const client = await connectRedis(t, { retryStrategy: () => 50 })
  if (client === undefined) return
  const admin = await connectRedis(t)
  if (admin === undefined) return
  let shift = 3000
  shiftClock(t, () => shift)
  let refuse = false
  // An ACL user without TIME, as Redis answers it.
  const wrapped = timeThrough(client, { before: () => { if (refuse) throw refusal() } })
  const { log, warnings } = capture()
  const store = new RedisStore({ client: wrapped, lockChannel: uniquePrefix('clock') + 'lock-released', commandTimeoutMs: 5000, log })
  t.teardown(() => store.close())
  await store.get('test:clock:nothing')
  t.ok(Math.abs(store.now() - await redisTime(admin)) < 1000, 'Redis\'s clock')
  t.same(warnings, [], 'no warning for 3 s')

  refuse = true
  shift = 9000
  for (let i = 0; i < 2; i++) {
    client.disconnect(true)
    await once(client, 'ready')
    await store.get('test:clock:nothing')
  }
  // The wall clock stepped from +3 s to +9 s meanwhile, and no reading since could tell Redis's: the last reading,
  // moved on by the monotonic clock, is still Redis's time.
  const off = store.now() - await redisTime(admin)
  t.ok(Math.abs(off) < 3000, `the reading taken before is kept, and the wall clock's step does not move it (${off.toFixed(0)} ms)`)
  t.equal(warnings.length, 1, 'one line for two refusals')
  t.match(warnings[0], /Redis refused TIME/)
})

t.test('RedisStore: a first reading of Redis\'s clock over a slow round trip (over 1 s) is taken', async t => {
  const client = await connectRedis(t)
  if (client === undefined) return
  const admin = await connectRedis(t)
  if (admin === undefined) return
  shiftClock(t, () => 50_000)
  // Redis answering TIME slowly (a busy server, a long network): its reply arrives 1.2 s after Redis read its clock.
  const wrapped = timeThrough(client, { after: async () => { await sleep(1200) } })
  const { log } = capture()
  const store = new RedisStore({ client: wrapped, lockChannel: uniquePrefix('clock') + 'lock-released', commandTimeoutMs: 5000, log })
  t.teardown(() => store.close())
  t.ok(Math.abs(store.now() - Date.now()) < 1000, 'before any reading: this machine\'s clock')
  // Until the reading lands (bounded: the store's own command timeout is 5 s).
  for (let waited = 0; Math.abs(store.now() - Date.now()) < 10_000 && waited < 5000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // Off by up to half the round trip (600 ms; plus this check's own round trip on a busy machine), not by the
  // machine's 50 s: before, such a reading was thrown away.
  const off = store.now() - await redisTime(admin)
  t.ok(Math.abs(off) < 5000, `the slow reading is taken (${off.toFixed(0)} ms off Redis's clock)`)
})

// An NTP step of the wall clock (the monotonic clock does not move), then a slow TIME (Redis busy before it reads its
// clock): the slow reading replaced the good one, 2 s off. And with TIME refused after a step, every look at the
// clock sent a TIME.
t.test('RedisStore after a wall-clock step: a slow reading that agrees keeps the good one; a refused TIME is not asked at every look', async t => {
  const client = await connectRedis(t)
  if (client === undefined) return
  const admin = await connectRedis(t)
  if (admin === undefined) return
  let delayMs = 0
  let refuse = false
  let times = 0
  let answered = 0
  const wrapped = timeThrough(client, {
    before: async () => {
      times++
      if (refuse) throw refusal()
      // Redis busy: the command waits before Redis reads its clock.
      if (delayMs > 0) await sleep(delayMs)
    },
    // The first reply read 200 ms late (a busy event loop): that reading is off by up to half its round trip too,
    // which the agreement below must allow for (a loaded CI run took the NTP step for a stopped clock).
    after: async () => {
      if (answered === 0) await sleep(200)
      answered++
    }
  })
  const { log } = capture()
  const store = new RedisStore({ client: wrapped, lockChannel: uniquePrefix('clock') + 'lock-released', commandTimeoutMs: 10_000, log })
  t.teardown(() => store.close())
  // Until the first reading has landed (a GET is no sign: on a loaded machine it can be answered first, and before
  // any reading the store's clock is this machine's, which no step moves).
  const landed = (): boolean => answered > 0
  for (let waited = 0; !landed() && waited < 5000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.equal(answered, 1, 'the first reading landed')
  t.ok(Math.abs(store.now() - await redisTime(admin)) < 1000, 'a good reading')

  let shift = 5000
  shiftClock(t, () => shift)
  // Taken, this reading would be off by half its round trip: 3 s.
  delayMs = 6000
  const asked = times
  store.now() // sees the step, reads TIME again
  t.equal(times, asked + 1, 'the step has TIME read again')
  await new Promise((resolve) => setTimeout(resolve, 6500))
  const off = store.now() - await redisTime(admin)
  t.ok(Math.abs(off) < 1500, `the slow reading agreed with the held one moved on: still Redis's clock (${off.toFixed(0)} ms off)`)
  t.equal(times, asked + 1, 'and the step, anchored anew, is not asked about again')

  delayMs = 0
  refuse = true
  shift = 15_000
  const before = times
  // Looks a few ms apart, each after the last one's refusal came back, for 300 ms: under the second between readings.
  let looks = 0
  for (const start = performance.now(); performance.now() - start < 300; looks++) {
    store.now()
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  t.ok(looks >= 2, `several looks (${looks})`)
  t.equal(times - before, 1, 'a new step with TIME refused: one TIME for all those looks at the clock')
})

/**
 * `client` whose TIME commands go through `before` (which may wait, or throw as Redis refusing it would) before they
 * are sent, and through `after` once answered; every other command as it is.
 */
function timeThrough (client: Redis, hooks: { before?: () => void | Promise<void>, after?: () => Promise<void> }): RedisClient {
  return new Proxy(client, {
    get (target, prop) {
      if (prop === 'call') {
        return async (command: string, args: unknown[]) => {
          // Sent at once unless `before` waits: the store's first TIME goes out before the commands after it.
          const waiting = command === 'TIME' ? hooks.before?.() : undefined
          if (waiting !== undefined) await waiting
          const reply: unknown = await target.call(command, ...args as string[])
          if (command === 'TIME') await hooks.after?.()
          return reply
        }
      }
      const value = Reflect.get(target, prop, target) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    }
  }) as unknown as RedisClient
}

/** What Redis answers a client whose ACL user may not run TIME. */
function refusal (): Error {
  return new ReplyError('NOPERM User app has no permissions to run the \'time\' command')
}

t.test('the memory store has no clock of its own', async t => {
  t.equal((new MemoryStore() as { now?: unknown }).now, undefined)
})

/** A: this process (its clock right), on its own connection; `admin`: the test's. */
async function instanceA (t: T, options: Record<string, number>): Promise<{ a: Awaited<ReturnType<typeof buildApp>>, admin: Redis, prefix: string } | undefined> {
  const admin = await connectRedis(t)
  if (admin === undefined) return undefined
  const prefix = uniquePrefix('skew')
  cleanupPrefix(t, admin, prefix)
  const a = await buildApp(t, { redis: await connectRedis(t) as Redis, keyPrefix: prefix, ...options })
  return { a, admin, prefix }
}

/**
 * A at the provider with a session's refresh token; then its lease runs out (a long GC pause, a SIGSTOP; or Redis away
 * for everyone): the lock is gone, A's refresh is not. Then B, whose clock is `offsetMs` off (and steps by `jumpMs`
 * after its store read Redis's clock), asks for the same session's set. A fence far shorter than the skew: by B's own
 * clock, A's mark (stamped anew every 1.7 s) would look 50 s old or more.
 */
async function bWhileAAtProvider (t: T, offsetMs: number, jumpMs = 0): Promise<void> {
  const options = { lockLeaseMs: 60_000, refreshFenceMs: 5000 }
  const setup = await instanceA(t, options)
  if (setup === undefined) return
  const { a, admin, prefix } = setup
  const id = sid()
  const old = tokenSet({ expiresInMs: -60_000 })
  await a.tokenStore.save(id, old)
  const presentedByA: string[] = []
  const atProvider = deferred()
  const answer = deferred()
  const next = tokenSet()
  const onA = a.tokenStore.getFresh(id, async (refreshToken) => {
    presentedByA.push(refreshToken)
    atProvider.resolve()
    await answer.promise
    return next
  }).catch((err: unknown) => err)
  await atProvider.promise
  await admin.del(`${prefix}{${id}}:lock`)

  const b = await skewedInstance(t, offsetMs, { keyPrefix: prefix, sid: id, options: { ...options, lockWaitMs: 3000 }, jumpMs })
  answer.resolve()
  t.same(b.presented, [], 'B did not present the refresh token A is presenting')
  t.same(presentedByA, [old.refreshToken])
  if (old.expiresAt > Date.now() + offsetMs + jumpMs) {
    // Expiry is judged by each machine's own clock: by B's, 90 s behind, the set has 30 s to live.
    t.equal(b.accessToken, old.accessToken, 'B answered with the set, unexpired by its clock')
  } else {
    t.equal(b.code, 'FST_AIHUBMIX_REFRESH_BUSY', 'B answered 503 refresh_busy (its set has expired)')
  }
  t.same(await onA, next, 'A stored and answered its refreshed set')
  t.same(await a.tokenStore.get(id), next, 'the user is still signed in')
  const off = offsetMs + jumpMs
  const skew = new RegExp(`clock is ${Math.abs(off / 1000)}\\.\\d s ${off > 0 ? 'ahead of' : 'behind'} Redis's`)
  t.equal(b.warnings.filter((w) => skew.test(w)).length, 1, `B warned once about its clock (${b.warnings.join(' | ')})`)
}

t.test('B\'s clock 50 s ahead of A\'s; A\'s lease ran out while A was at the provider: B does not present the refresh token again', async t => {
  await bWhileAAtProvider(t, 50_000)
})

// A step of B's wall clock after its store read Redis's (NTP, an operator): Redis's clock goes on by B's monotonic one,
// and the step has it read again at once.
for (const jumpMs of [90_000, -90_000]) {
  t.test(`B's clock steps by ${jumpMs / 1000} s after its store read Redis's; A at the provider, its lease over: B does not present the token`, async t => {
    await bWhileAAtProvider(t, 0, jumpMs)
  })
}

t.test('B\'s clock 50 s ahead of A\'s: a set A\'s forced refresh stored a moment ago is not refreshed again by B after a 401', async t => {
  const setup = await instanceA(t, { forcedRefreshIntervalMs: 30_000 })
  if (setup === undefined) return
  const { a } = setup
  const id = sid()
  const x = tokenSet()
  await a.tokenStore.save(id, x)
  const y = tokenSet()
  t.same(await a.tokenStore.getFresh(id, async () => y, { force: true, staleAccessToken: x.accessToken }), y, 'A\'s forced refresh after a 401')

  // The provider refuses y's access token too (a resource server behind its token service): B hears it.
  const b = await skewedInstance(t, 50_000, { keyPrefix: setup.prefix, sid: id, options: { forcedRefreshIntervalMs: 30_000 }, force: true, staleAccessToken: y.accessToken })
  t.same(b.presented, [], 'B did not refresh a set a forced refresh stored a moment ago')
  t.equal(b.accessToken, y.accessToken, 'B answered with the set as it is')
  t.same(await a.tokenStore.get(id), y, 'the user is still signed in')
})

// A mark whose time is far ahead of the store's clock (written on another clock: a failover to a Redis whose clock is
// behind the old primary's, or an instance whose Redis refused TIME) is counted either way: more than refreshFenceMs
// off, it is over, and does not hold the session's refreshes until that time comes.
t.test('a presented mark 10 minutes ahead of the store\'s clock does not block the refresh', async t => {
  const silent = { level: 'silent', fatal () {}, error () {}, warn () {}, info () {}, debug () {}, trace () {}, silent () {}, child () { return silent } }
  const options = resolveOptions({ encryptionKeys: KEY_A, refreshBackoffMs: 0 })
  const inner = new MemoryStore() // no clock of its own: the store's clock is this machine's
  const core = new TokenStoreCore({ kv: inner, options, log: silent as never })
  t.teardown(() => core.close())
  const id = sid()
  await core.save(id, tokenSet({ expiresInMs: -60_000 }))
  const set = await core.get(id)
  const marked = options.keyRing.seal(JSON.stringify({ ...set, refreshPresented: { at: Date.now() + 600_000, by: 'peer-on-a-clock-ahead' } }), `tok:${id}`)
  await inner.set(core.keys.tokens(id), marked, 3_600_000)
  t.equal((await core.open(id, marked))?.presented?.by, 'peer-on-a-clock-ahead', 'the set as stored carries the peer\'s mark')
  const fresh = tokenSet()
  const outcome = await core.getFresh(id, async () => fresh).then((s) => s.accessToken, (err: unknown) => (err as { code?: string }).code)
  t.equal(outcome, fresh.accessToken, 'refreshed (not refresh_busy)')
})
