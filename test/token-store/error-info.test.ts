import t from 'tap'
import { ReauthRequiredError, errorInfo } from '@fastify-aihubmix/token-store'

// Where code needs an unknown error's code or message (to classify it, or for a log line), it asks errorInfo(),
// which reads those two and nothing else: ioredis attaches the command (keys, sealed values) to its errors.

t.test('errorInfo reads a code and a message from anything thrown, and nothing else', async (t) => {
  const redisError = Object.assign(new Error('READONLY'), { code: 'ERR', command: { name: 'set', args: ['aihubmix:sess:secret'] } })
  t.same(errorInfo(redisError), { code: 'ERR', message: 'READONLY' }, 'not the command it carries')
  t.same(errorInfo(new ReauthRequiredError()), { code: 'FST_AIHUBMIX_REAUTH_REQUIRED', message: 'The refresh token was rejected: the user must sign in again' })
  t.same(errorInfo(Object.assign(new Error('exit'), { code: 2 })), { code: undefined, message: 'exit' }, 'a code that is not a string is none')
  t.same(errorInfo('a string'), { code: undefined, message: 'a string' })
  t.same(errorInfo(undefined), { code: undefined, message: 'undefined' })
  t.same(errorInfo({ code: 'ECONNRESET' }), { code: 'ECONNRESET', message: '[object Object]' })
})
