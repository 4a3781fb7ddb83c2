// The lean route a user would write by hand: Fastify, @fastify/cookie, @fastify/session
// (its defaults, its in-memory store) and one undici Pool to the provider. Tokens live in
// the session in plain text, no validation of the provider's answer, no refresh, no CSRF
// check, no response schema: the least a working proxy does.
//
// With BENCH_REDIS_URL the sessions live in Redis instead, through the few lines of store a
// user would write for @fastify/session (JSON under a key with the cookie's TTL; @fastify/session
// saves the session on every request by default, so that is a GET and a SET per request).
//
// env: BENCH_PORT, BENCH_UPSTREAM, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SESSION_SECRET,
//      BENCH_REDIS_URL (optional), BENCH_KEY_PREFIX (with Redis)
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { Pool } from 'undici'
import { Redis } from 'ioredis'
import { failStart, serveUntilStopped } from './lib.mjs'

async function main () {
  const env = process.env
  const port = Number(env.BENCH_PORT)
  const publicUrl = `http://127.0.0.1:${port}`
  const redirectUri = `${publicUrl}/auth/callback`
  const upstream = env.BENCH_UPSTREAM
  const pool = new Pool(upstream)

  const app = Fastify()
  await app.register(fastifyCookie)
  const redis = env.BENCH_REDIS_URL ? new Redis(env.BENCH_REDIS_URL) : undefined
  await app.register(fastifySession, {
    secret: env.BENCH_SESSION_SECRET,
    cookie: { secure: false },
    ...(redis === undefined ? {} : { store: redisStore(redis, env.BENCH_KEY_PREFIX ?? 'lean:') })
  })
  app.addHook('onClose', async () => {
    await pool.close()
    redis?.disconnect()
  })

  app.get('/auth/login', async (request, reply) => {
    const state = randomBytes(16).toString('base64url')
    request.session.set('state', state)
    const url = new URL('/api/oauth2/authorize', upstream)
    url.search = new URLSearchParams({
      client_id: env.BENCH_CLIENT_ID,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'profile balance',
      state,
      auto_authorize: 'true'
    }).toString()
    return reply.redirect(url.href)
  })

  app.get('/auth/callback', async (request, reply) => {
    const { code, state } = request.query
    if (!code || !state || state !== request.session.get('state')) return reply.redirect('/?error=invalid_state')
    const { statusCode, body } = await pool.request({
      path: '/api/oauth2/token',
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirectUri,
        client_id: env.BENCH_CLIENT_ID,
        client_secret: env.BENCH_CLIENT_SECRET
      }).toString()
    })
    const tokens = await body.json()
    if (statusCode !== 200) return reply.redirect('/?error=token_exchange_failed')
    await request.session.regenerate()
    request.session.set('accessToken', tokens.access_token)
    request.session.set('refreshToken', tokens.refresh_token)
    request.session.set('expiresAt', Date.now() + tokens.expires_in * 1000)
    return reply.redirect('/')
  })

  app.get('/api/user/info', async (request, reply) => {
    const accessToken = request.session.get('accessToken')
    if (!accessToken) return reply.code(401).send({ error: 'unauthenticated' })
    const { statusCode, body } = await pool.request({
      path: '/api/oauth2/userinfo',
      method: 'GET',
      headers: { authorization: `Bearer ${accessToken}` }
    })
    if (statusCode !== 200) {
      await body.dump()
      return reply.code(502).send({ error: 'bad_gateway' })
    }
    return body.json()
  })

  await app.listen({ port, host: '127.0.0.1' })
  serveUntilStopped(publicUrl, () => app.close())
}

function redisStore (redis, prefix) {
  return {
    get (sid, callback) {
      redis.get(prefix + sid).then((json) => callback(null, json === null ? null : JSON.parse(json)), callback)
    },
    set (sid, session, callback) {
      const ttl = session.cookie?.maxAge ?? 86_400_000
      redis.set(prefix + sid, JSON.stringify(session), 'PX', Math.max(1, Math.round(ttl))).then(() => callback(), callback)
    },
    destroy (sid, callback) {
      redis.del(prefix + sid).then(() => callback(), callback)
    }
  }
}

main().catch(failStart)
