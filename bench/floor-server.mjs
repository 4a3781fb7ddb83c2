// The floor: the least any proxy of GET /api/user/info can do. A bare Fastify route that
// forwards to the provider's userinfo on one keep-alive undici Pool with a fixed token and
// streams nothing but the answer back: no session, no cookie, no CSRF check, no refresh, no
// validation, no response schema. Whatever the project costs above this is what its checks cost.
//
// It has no login of its own: /auth/login sets a cookie shaped like a signed session id (never
// read) and redirects to /, so that the bench's sign-in helper finishes at once and the load
// generator sends requests of the same size as to the other targets.
//
// env: BENCH_PORT, BENCH_UPSTREAM
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Pool } from 'undici'
import { failStart, serveUntilStopped } from './lib.mjs'

async function main () {
  const env = process.env
  const port = Number(env.BENCH_PORT)
  const publicUrl = `http://127.0.0.1:${port}`
  const pool = new Pool(env.BENCH_UPSTREAM)
  // A fixed token: the upstream only checks that a Bearer token is there.
  const headers = { authorization: 'Bearer bench_floor_fixed_token' }

  const app = Fastify()
  app.addHook('onClose', async () => { await pool.close() })

  app.get('/auth/login', async (_request, reply) => {
    const value = `${randomBytes(24).toString('base64url')}.${randomBytes(32).toString('base64url')}`
    return reply.header('set-cookie', `sid=${value}; Path=/; HttpOnly; SameSite=Lax`).redirect('/')
  })

  app.get('/api/user/info', async (_request, reply) => {
    const { statusCode, body } = await pool.request({ path: '/api/oauth2/userinfo', method: 'GET', headers })
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
