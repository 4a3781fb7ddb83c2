// The lean route a user would write by hand: Fastify, @fastify/cookie, @fastify/session
// (its defaults, its in-memory store) and one undici Pool to the provider. Tokens live in
// the session in plain text, no validation of the provider's answer, no refresh, no CSRF
// check, no response schema: the least a working proxy does.
//
// env: BENCH_PORT, BENCH_UPSTREAM, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SESSION_SECRET
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { Pool } from 'undici'
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
  await app.register(fastifySession, { secret: env.BENCH_SESSION_SECRET, cookie: { secure: false } })
  app.addHook('onClose', () => pool.close())

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

main().catch(failStart)
