import t from 'tap'
import fastifyCookie from '@fastify/cookie'
import type { FastifyRequest } from 'fastify'
import { TestBrowser } from '../helpers/browser.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { composeReadmeApp, providerForPort } from '../helpers/readme-composition.js'

// token-store's README: a check's touch is "written back with compare-and-set, so a concurrent change wins" (the
// cookie path). On @fastify/session's routes oauth-routes writes the same "last seen" stamp with session.save(): a
// plain SET. A session ended elsewhere (a logout or "end this session" on another instance, sign out everywhere)
// between @fastify/session's read and oauth-routes' preHandler was written back. Now token-store's session store
// writes a session it read only while its record is there (SET XX).

const SECRET = 's'.repeat(40)

t.test('a due "last seen" stamp on a @fastify/session route does not bring back a session ended meanwhile', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const keyPrefix = uniquePrefix('touch')
  cleanupPrefix(t, redis, keyPrefix)
  const { port, url, provider } = await providerForPort(t, 'touch')
  // Stands for the other instance: the session is ended after this request read it, before its preHandler.
  const endFirst = async (request: FastifyRequest): Promise<void> => {
    if (request.headers['x-end-elsewhere'] !== '1') return
    const sid = (request.session as { sessionId?: string } | null)?.sessionId
    if (sid !== undefined) await app.tokenStore.endSession(sid)
  }
  const app = await composeReadmeApp({
    port,
    provider,
    secret: SECRET,
    redis,
    keyPrefix,
    root: (root) => { root.addHook('preValidation', endFirst) }
  })
  t.teardown(() => app.close())

  const browser = new TestBrowser()
  const start = await browser.get(`${url}/auth/login`)
  const back = await browser.get(TestBrowser.location(start))
  t.equal((await browser.get(TestBrowser.location(back))).status, 302, 'signed in')
  const sid = fastifyCookie.unsign(decodeURIComponent(browser.cookies.get(url)?.get('sid') ?? ''), SECRET).value as string
  const sessKey = `${keyPrefix}{${sid}}:sess`
  const tokKey = `${keyPrefix}{${sid}}:tok`

  // Last seen three hours ago (idle timeout 24 h: the stamp is due every 2.4 h).
  const record = JSON.parse(await redis.get(sessKey) as string)
  record.aihubmixAuth.seen = Date.now() - 3 * 3600_000
  await redis.set(sessKey, JSON.stringify(record), 'PX', 3600_000)

  const answer = await browser.get(`${url}/auth/session`, { 'x-end-elsewhere': '1' })
  t.equal(answer.status, 200)
  t.equal(await redis.exists(tokKey), 0, 'the token set is gone')
  t.equal(await redis.exists(sessKey), 0, 'the ended session\'s record stays deleted (not written back by the stamp)')
  t.comment(`record now: ${await redis.get(sessKey)}, TTL ${await redis.pttl(sessKey)} ms`)
})
