import t from 'tap'
import type { Redis } from 'ioredis'
import { createTokenStore, type SessionStoreLike } from '@fastify-aihubmix/token-store'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import { redisServerOrSkip, until } from '../helpers/redis-server.js'
import { RedisStore, type RedisClient } from '../../src/token-store/redis-store.js'
import { startStack } from '../helpers/stack.js'
import type { TestBrowser } from '../helpers/browser.js'
import { deferred, KEY_A, tokenSet } from '../helpers/token-store.js'

// The key layout puts a session's keys in one hash slot ({<sid>}) so that one MGET reads the
// session and its token set, one DEL ends both, and the Lua scripts touch one key each; lock
// releases go out with PUBLISH, which a Cluster broadcasts. Here it runs on a real Redis
// Cluster of three masters, started from the same redis-server binary as the other tests.

const CSRF = { 'x-csrf': '1' }

function sessionGet (store: SessionStoreLike, sid: string): Promise<Record<string, unknown> | null> {
  return new Promise((resolve, reject) => store.get(sid, (err, session) => err ? reject(err) : resolve(session ?? null)))
}
function sessionSet (store: SessionStoreLike, sid: string, session: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => store.set(sid, session, (err) => err ? reject(err) : resolve()))
}
function sessionDestroy (store: SessionStoreLike, sid: string): Promise<void> {
  return new Promise((resolve, reject) => store.destroy(sid, (err) => err ? reject(err) : resolve()))
}

const binary = redisServerOrSkip(t, 'Redis Cluster tests')
if (binary !== undefined) {
  let cluster: RedisCluster
  t.before(async () => { cluster = await startRedisCluster(binary) })
  t.teardown(async () => { await cluster?.close() })

  t.test('token sets, sessions and login records on a Cluster, spread over its nodes', async (t) => {
    const store = createTokenStore({ encryptionKeys: KEY_A, redis: await cluster.client(), keyPrefix: 'c1:' })
    t.teardown(() => store.close())
    const sids = Array.from({ length: 12 }, (_, i) => `cluster-session-${i}-${Math.random().toString(36).slice(2)}`)
    const nodes = new Set<number>()
    for (const sid of sids) {
      const set = tokenSet()
      await store.save(sid, set)
      await sessionSet(store.sessionStore, sid, { cookie: { expires: new Date(Date.now() + 60_000).toISOString() }, user: sid })
      const session = await sessionGet(store.sessionStore, sid)
      t.equal(session?.user, sid, 'the session, read with its token set in one MGET')
      t.equal((await store.get(sid))?.accessToken, set.accessToken)
      nodes.add(await cluster.nodeOf(`c1:{${sid}}:tok`))
    }
    t.ok(nodes.size >= 2, `the sessions live on ${nodes.size} of 3 nodes`)
    // Concurrent reads of sessions in different slots: never merged into one (cross-slot) command.
    const all = await Promise.all(sids.map((sid) => sessionGet(store.sessionStore, sid)))
    t.same(all.map((session) => session?.user), sids, 'concurrent reads across the nodes each get their own session')

    await store.putRecord('login:abc', { v: 1 }, 60_000)
    const takes = await Promise.all([store.takeRecord('login:abc'), store.takeRecord('login:abc')])
    t.same(takes.filter((x) => x !== null), [{ v: 1 }], 'a record is taken exactly once')

    await sessionDestroy(store.sessionStore, sids[0] as string)
    t.equal(await sessionGet(store.sessionStore, sids[0] as string), null, 'destroyed: the session')
    t.equal(await store.get(sids[0] as string), null, 'and its token set, in the same DEL')
  })

  t.test('one refresh for two instances on a Cluster; the waiting instance gets its result', async (t) => {
    const a = createTokenStore({ encryptionKeys: KEY_A, redis: await cluster.client(), keyPrefix: 'c2:', lockWaitMs: 10_000 })
    const b = createTokenStore({ encryptionKeys: KEY_A, redis: await cluster.client(), keyPrefix: 'c2:', lockWaitMs: 10_000 })
    t.teardown(async () => { await a.close(); await b.close() })
    const sid = `storm-${Math.random().toString(36).slice(2)}`
    await a.save(sid, tokenSet({ expiresInMs: -1000 }))
    const gate = deferred<void>()
    let calls = 0
    const refresh = async (): Promise<ReturnType<typeof tokenSet>> => {
      calls++
      await gate.promise
      return tokenSet({ expiresInMs: 3_600_000 })
    }
    const pending = [
      ...Array.from({ length: 10 }, () => a.getFresh(sid, refresh)),
      ...Array.from({ length: 10 }, () => b.getFresh(sid, refresh))
    ]
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(calls, 1, 'one instance holds the lock and refreshes; the other waits')
    gate.resolve()
    // A waiter that timed out would reject (RefreshBusyError) and fail this.
    const results = await Promise.all(pending)
    t.equal(calls, 1, 'still one refresh when everyone has an answer')
    t.equal(new Set(results.map((r) => r.accessToken)).size, 1, 'all twenty got the same new token')
  })

  t.test('the example app on a Cluster: sign in, the proxy, logout', async (t) => {
    const client = await cluster.client()
    const stack = await startStack({ redis: client as unknown as Redis, tokenStore: { keyPrefix: 'c3:' } })
    t.teardown(() => stack.close())
    const { browser } = await stack.login()
    const info = await browser.get(`${stack.url}/api/user/info`, CSRF)
    t.equal(info.status, 200)
    t.ok(JSON.parse(info.body).username, 'the user\'s profile, through the proxy')
    const sid = stack.sessionIdOf(browser)
    t.not(await stack.app.tokenStore.get(sid), null, 'the token set is in the Cluster')
    const out = await browser.post(`${stack.url}/auth/logout`, CSRF)
    t.equal(out.status, 204)
    t.equal(await stack.app.tokenStore.get(sid), null, 'logout deleted it')
    t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 401)
  })

  t.test('the store\'s clock on a Cluster: TIME answered by any node (they share this machine\'s clock)', async (t) => {
    const client = await cluster.client()
    const real = Date.now
    Date.now = () => real() + 30_000
    t.teardown(() => { Date.now = real })
    const store = new RedisStore({ client: client as unknown as RedisClient, lockChannel: 'c5:lock-released', commandTimeoutMs: 5000 })
    t.teardown(() => store.close())
    await until(async () => Math.abs(store.now() - real()) < 1000, 'the offset measured')
    const off = store.now() - real()
    t.ok(Math.abs(off) < 1000, `this machine 30 s ahead: the store's clock is the nodes' (${off.toFixed(0)} ms off)`)
  })

  t.test('the example app on a Cluster: a user\'s sessions listed, one ended from another, then everywhere', async (t) => {
    const client = await cluster.client()
    const stack = await startStack({ redis: client as unknown as Redis, tokenStore: { keyPrefix: 'c4:' } })
    t.teardown(() => stack.close())
    const browsers = []
    for (let i = 0; i < 4; i++) browsers.push((await stack.login()).browser)
    const [here, other, ...rest] = browsers as [TestBrowser, TestBrowser, ...TestBrowser[]]
    const listed = JSON.parse((await here.get(`${stack.url}/auth/sessions`)).body).sessions as Array<{ id: string, current: boolean }>
    t.equal(listed.length, 4, 'sessions spread over the nodes, one index')
    const others = listed.filter((s) => !s.current)
    const otherSid = stack.sessionIdOf(other)
    const otherHandle = (JSON.parse((await other.get(`${stack.url}/auth/sessions`)).body).sessions as Array<{ id: string, current: boolean }>).find((s) => s.current)?.id
    t.equal((await here.delete(`${stack.url}/auth/sessions/${otherHandle as string}`, CSRF)).status, 204)
    t.equal(await stack.app.tokenStore.get(otherSid), null, 'ended')
    t.equal(others.length, 3)
    t.equal((await here.post(`${stack.url}/auth/logout?everywhere=1`, CSRF)).status, 204)
    for (const browser of [here, ...rest]) t.equal((await browser.get(`${stack.url}/api/user/info`, CSRF)).status, 401)
  })
}
