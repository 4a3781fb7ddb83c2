import t from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import { useLazyRequestLoggers } from '../../example/request-logger.js'
import { loggerOptions } from '../../example/app.js'

// The example's request loggers are made only when a line is written at an enabled level: the lines are the
// same as with Fastify's own per-request child (the request id bound, the redaction applied), and a level that
// is off writes nothing.

function app (level: string): { lines: Array<Record<string, unknown>>, app: ReturnType<typeof Fastify> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      callback()
    }
  })
  const fastify = Fastify({ logger: { ...loggerOptions(level), stream } })
  useLazyRequestLoggers(fastify)
  fastify.get('/quiet', async () => ({ ok: true }))
  fastify.get('/warns', async (request) => {
    request.log.info('an info line')
    request.log.warn({ headers: { cookie: 'sid=secret-cookie-value' } }, 'a warning')
    return { ok: true }
  })
  fastify.get('/child', async (request) => {
    request.log.child({ part: 'inner' }).warn('from a child')
    const log = request.log as typeof request.log & { isLevelEnabled: (level: string) => boolean, bindings: () => Record<string, unknown> }
    return { level: request.log.level, info: log.isLevelEnabled('info'), warn: log.isLevelEnabled('warn'), reqId: typeof log.bindings().reqId }
  })
  return { lines, app: fastify }
}

t.test('at warn: no request lines, a warning carries the request id and is redacted', async (t) => {
  const { lines, app: fastify } = app('warn')
  t.teardown(() => fastify.close())
  t.equal((await fastify.inject('/quiet')).statusCode, 200)
  t.same(lines, [], 'nothing logged for a quiet request')
  const res = await fastify.inject('/warns')
  t.equal(res.statusCode, 200)
  t.equal(lines.length, 1, 'the warning only')
  const line = lines[0] as Record<string, unknown>
  t.equal(line.msg, 'a warning')
  t.equal(line.level, 40)
  t.equal(typeof line.reqId, 'string', 'bound to the request')
  t.notMatch(JSON.stringify(line), /secret-cookie-value/, 'cookies redacted')
  const child = await fastify.inject('/child')
  t.same(child.json(), { level: 'warn', info: false, warn: true, reqId: 'string' })
  t.match(lines.at(-1), { msg: 'from a child', part: 'inner', reqId: String })
})

t.test('at info: Fastify\'s request lines and the route\'s lines, all with the same request id', async (t) => {
  const { lines, app: fastify } = app('info')
  t.teardown(() => fastify.close())
  await fastify.inject('/warns')
  const messages = lines.map((l) => l.msg)
  t.same(messages, ['incoming request', 'an info line', 'a warning', 'request completed'])
  t.equal(new Set(lines.map((l) => l.reqId)).size, 1, 'one request id')
  t.match(lines[0], { req: { method: 'GET', url: '/warns' } }, 'the request serialised as without the lazy logger')
})
