/**
 * Shared by the tests of a user's sessions (test/oauth-routes): the example app on the memory store
 * or on Redis, a whole sign-in, and the store's internals.
 */
import type { Test } from 'tap'
import type { KeyLayout } from '../../src/token-store/keys.js'
import type { KVStore } from '../../src/token-store/kv-store.js'
import { startStack, type Stack, type StackOptions } from './stack.js'
import { TestBrowser } from './browser.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from './redis.js'

export const CSRF = { 'x-csrf': '1' }

export interface Listed { id: string, current: boolean, createdAt: string, lastSeenAt: string, userAgent: string }

export async function stackOn (t: Test, backend: 'memory' | 'redis', opts: StackOptions = {}): Promise<Stack | undefined> {
  let stack: Stack
  if (backend === 'redis') {
    const redis = await connectRedis(t)
    if (redis === undefined) return undefined
    const prefix = uniquePrefix('us-routes')
    cleanupPrefix(t, redis, prefix)
    stack = await startStack({ ...opts, redis, tokenStore: { keyPrefix: prefix, ...opts.tokenStore } })
  } else {
    stack = await startStack(opts)
  }
  t.teardown(() => stack.close())
  return stack
}

/** A whole redirect-mode sign-in; resolves with the browser once the callback answered. */
export async function signIn (stack: Stack, userAgent: string, browser: TestBrowser = stack.browser(), url = stack.url): Promise<TestBrowser> {
  const ua = { 'user-agent': userAgent }
  const start = await browser.get(`${url}/auth/login`, ua)
  const authorize = await browser.get(TestBrowser.location(start), ua)
  const back = await browser.get(TestBrowser.location(authorize), ua)
  if (back.headers.location !== '/') throw new Error(`the sign-in failed: ${back.status} ${String(back.headers.location)}`)
  return browser
}

export async function apiStatus (stack: Stack, browser: TestBrowser, url = stack.url): Promise<number> {
  return (await browser.get(`${url}/api/user/info`, CSRF)).status
}

export async function list (stack: Stack, browser: TestBrowser, url = stack.url): Promise<Listed[]> {
  const res = await browser.get(`${url}/auth/sessions`)
  if (res.status !== 200) throw new Error(`GET /auth/sessions: ${res.status} ${res.body}`)
  return (JSON.parse(res.body) as { sessions: Listed[] }).sessions
}

export function internals (stack: Stack, i = 0): { kv: KVStore, keys: KeyLayout } {
  const peer = stack.peers[i] ?? stack.peers[0]
  return (peer as { app: Stack['app'] }).app.tokenStore as unknown as { kv: KVStore, keys: KeyLayout }
}

export function deferred<V = void> (): { promise: Promise<V>, resolve: (v: V) => void } {
  let resolve!: (v: V) => void
  const promise = new Promise<V>((_resolve) => { resolve = _resolve })
  return { promise, resolve }
}

/** The session of `browser` as one signed in before sessions were indexed: its link and its index entry removed. */
export async function unindex (stack: Stack, browser: TestBrowser): Promise<void> {
  const { kv, keys } = internals(stack)
  const sid = stack.sessionIdOf(browser)
  const owner = await stack.app.tokenStore.sessionOwner(sid)
  if (owner === null) throw new Error('the session is not indexed')
  await kv.delete(keys.userLink(sid))
  await kv.hashDelete(keys.userSessions(owner.userId), [owner.id])
}
