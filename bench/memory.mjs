// Heap per 10,000 stored sessions (run with --expose-gc). The project's memory store: through
// its public API, a session record (what @fastify/session hands the store after a sign-in) and a
// sealed token set per session. For reference, the guide's express-session MemoryStore with the
// same session and the tokens in it (in plain text, as the guide keeps them).
//
// env: BENCH_SESSIONS (default 10000). Answers { type: 'ready', results } and exits.
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { createTokenStore } from '@fastify-aihubmix/token-store'
import expressSession from 'express-session'
import { failStart } from './lib.mjs'

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 10_000)
const WEEK_MS = 7 * 24 * 3600 * 1000

function heapUsed () {
  for (let i = 0; i < 4; i++) globalThis.gc()
  return process.memoryUsage().heapUsed
}

/** A session id as @fastify/session makes them (32 url-safe characters). */
function sessionId () {
  return randomBytes(24).toString('base64url')
}

function sessionRecord () {
  const expires = new Date(Date.now() + WEEK_MS).toISOString()
  return {
    cookie: { expires, originalMaxAge: WEEK_MS, originalExpires: expires, sameSite: 'lax', secure: false, path: '/', httpOnly: true },
    aihubmixAuth: { at: Date.now() }
  }
}

function tokenSet () {
  const now = Date.now()
  return {
    accessToken: 'bench_at_' + randomBytes(24).toString('base64url'),
    tokenType: 'Bearer',
    expiresAt: now + 7200 * 1000,
    refreshToken: 'bench_rt_' + randomBytes(24).toString('base64url'),
    scope: ['profile', 'balance'],
    obtainedAt: now
  }
}

async function measure (fill) {
  const before = heapUsed()
  const keep = await fill()
  const after = heapUsed()
  // `keep` holds the store until after the second measurement.
  if (keep === undefined) throw new Error('nothing kept')
  return after - before
}

async function projectStore () {
  return await measure(async () => {
    const store = createTokenStore({ encryptionKeys: randomBytes(32).toString('base64url') })
    const setSession = promisify(store.sessionStore.set.bind(store.sessionStore))
    for (let i = 0; i < SESSIONS; i++) {
      const sid = sessionId()
      await setSession(sid, sessionRecord())
      await store.save(sid, tokenSet())
    }
    return store
  })
}

async function guideStore () {
  return await measure(async () => {
    const store = new expressSession.MemoryStore()
    const set = promisify(store.set.bind(store))
    for (let i = 0; i < SESSIONS; i++) {
      const set0 = tokenSet()
      const record = sessionRecord()
      delete record.aihubmixAuth
      await set(sessionId(), {
        ...record,
        access_token: set0.accessToken,
        refresh_token: set0.refreshToken,
        token_expires_at: set0.expiresAt
      })
    }
    return store
  })
}

async function main () {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc')
  // Warm up the code paths (and their one-time allocations) before measuring.
  const warm = createTokenStore({ encryptionKeys: randomBytes(32).toString('base64url') })
  for (let i = 0; i < 200; i++) await warm.save(sessionId(), tokenSet())
  await warm.close()

  const project = await projectStore()
  const guide = await guideStore()
  process.send({ type: 'ready', url: null, results: { sessions: SESSIONS, projectBytes: project, guideBytes: guide } })
  setTimeout(() => process.exit(0), 50)
}

main().catch(failStart)
