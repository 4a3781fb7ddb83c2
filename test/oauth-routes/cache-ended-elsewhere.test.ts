import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'
import { startStack } from '../helpers/stack.js'
import { CSRF, list, signIn } from '../helpers/user-sessions-stack.js'

// With the client-side cache on two instances: a session ended through A (DELETE /auth/sessions/:id answered 204)
// is refused by B on the very next request, without waiting for anything (no sync()): the fence's promise.
t.test('ended on A, refused on B at once (client cache, no sync)', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('fr-cache')
  cleanupPrefix(t, redis, prefix)
  const stack = await startStack({ instances: 2, redis, tokenStore: { keyPrefix: prefix, redisClientCache: true } })
  t.teardown(() => stack.close())
  const [a, b] = stack.peers as unknown as [{ url: string }, { url: string }]
  for (let round = 0; round < 10; round++) {
    const laptop = await signIn(stack, 'laptop', stack.browser(), a.url)
    const phone = await signIn(stack, 'phone', stack.browser(), a.url)
    const phoneCookie = phone.cookieHeader(a.url) as string
    // keep B's cache warm with the phone's values
    for (let i = 0; i < 5; i++) await phone.get(`${b.url}/api/user/info`, { ...CSRF, cookie: phoneCookie })
    const other = (await list(stack, laptop, a.url)).find((s) => !s.current)
    const ended = await laptop.delete(`${a.url}/auth/sessions/${other!.id}`, CSRF)
    t.equal(ended.status, 204)
    const after = await phone.get(`${b.url}/api/user/info`, { ...CSRF, cookie: phoneCookie })
    t.equal(after.status, 401, `round ${round}: refused by B at once`)
    await sleep(20)
  }
})
