import t from 'tap'
import {
  DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
  DEFAULT_CODE_TTL_SECONDS,
  DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
  DEFAULT_USER,
  MockInvalidOptionError,
  startMockProvider,
  type MockProviderOptions
} from '@fastify-aihubmix/mock-provider'
import { resolveOptions } from '../../src/mock-provider/options.js'
import { login, startProvider, userinfo } from '../helpers/mock-client.js'

t.test('defaults', async (t) => {
  t.same(resolveOptions(), {
    host: '127.0.0.1',
    port: 0,
    tokenPrefix: 'mock',
    accessTokenTtlSeconds: 7200,
    refreshTokenTtlSeconds: 30 * 24 * 3600,
    codeTtlSeconds: 60,
    rotateRefreshTokens: true,
    refreshReuseRevokes: true,
    developerTokens: ['dev_mock_token'],
    controlApi: null,
    user: DEFAULT_USER,
    envelope: false,
    envelopeErrorCodes: true,
    revocationEndpoint: false,
    logger: false
  })
  t.equal(DEFAULT_ACCESS_TOKEN_TTL_SECONDS, 7200)
  t.equal(DEFAULT_REFRESH_TOKEN_TTL_SECONDS, 2592000)
  t.equal(DEFAULT_CODE_TTL_SECONDS, 60)
  t.same(resolveOptions({ tokenPrefix: 'abc' }).developerTokens, ['dev_abc_token'])
  t.same(resolveOptions({ controlApi: true }).controlApi, { prefix: '/__mock' })
  t.same(resolveOptions({ controlApi: {} }).controlApi, { prefix: '/__mock' })
  t.same(resolveOptions({ controlApi: { prefix: '/x/y' } }).controlApi, { prefix: '/x/y' })
  t.same(resolveOptions({ user: { quota: 1 } }).user, { ...DEFAULT_USER, quota: 1 })
})

t.test('resolveOptions returns a new object and never mutates the caller\'s', async (t) => {
  const opts: MockProviderOptions = { developerTokens: ['a'], user: { quota: 5 } }
  const frozen = structuredClone(opts)
  const resolved = resolveOptions(opts)
  resolved.developerTokens.push('b')
  resolved.user.quota = 6
  t.same(opts, frozen)
})

t.test('a bad option fails with a typed error naming its path', async (t) => {
  const cases: Array<[unknown, string]> = [
    [{ port: -1 }, 'options.port'],
    [{ port: 70000 }, 'options.port'],
    [{ port: '80' }, 'options.port'],
    [{ host: '' }, 'options.host'],
    [{ tokenPrefix: 'has_underscore' }, 'options.tokenPrefix'],
    [{ accessTokenTtlSeconds: 0.5 }, 'options.accessTokenTtlSeconds'],
    [{ refreshTokenTtlSeconds: 0 }, 'options.refreshTokenTtlSeconds'],
    [{ codeTtlSeconds: -1 }, 'options.codeTtlSeconds'],
    [{ rotateRefreshTokens: 'yes' }, 'options.rotateRefreshTokens'],
    [{ developerTokens: [] }, 'options.developerTokens'],
    [{ developerTokens: ['with space'] }, 'options.developerTokens[0]'],
    [{ controlApi: { prefix: 'no-slash' } }, 'options.controlApi.prefix'],
    [{ controlApi: { prefix: '/trailing/' } }, 'options.controlApi.prefix'],
    [{ controlApi: 'yes' }, 'options.controlApi'],
    [{ user: { quota: 'lots' } }, 'options.user.quota'],
    [{ user: { nickname: 'x' } }, 'options.user.nickname'],
    [{ envelop: true }, 'options.envelop'],
    ['not an object', 'options']
  ]
  for (const [opts, path] of cases) {
    t.throws(() => resolveOptions(opts as never), { code: 'FST_AIHUBMIX_MOCK_INVALID_OPTION', message: new RegExp(`^Invalid mock provider option "${path.replace(/[.[\]]/g, '\\$&')}": `) }, path)
  }
  await t.rejects(startMockProvider({ port: -1 }), MockInvalidOptionError)
})

t.test('every provider is independent: no state shared between instances', async (t) => {
  const a = await startProvider(t)
  const b = await startProvider(t)
  t.not(a.provider.url, b.provider.url)
  const tokens = await login(a.provider, a.app)
  t.equal((await userinfo(b.provider, tokens.access_token)).status, 401, 'a token of one is unknown to the other')
  a.provider.setFault('userinfo', 'http500')
  a.provider.setUser({ username: 'other' })
  const other = await login(b.provider, b.app)
  const info = await userinfo(b.provider, other.access_token)
  t.equal(info.status, 200)
  t.equal(info.json().username, 'user123')
  t.equal(b.provider.counts().userinfo, 2)
  t.equal(a.provider.counts().userinfo, 0)
})

t.test('close() is idempotent and frees the port', async (t) => {
  const provider = await startMockProvider()
  const port = Number(new URL(provider.url).port)
  await Promise.all([provider.close(), provider.close()])
  await provider.close()
  const again = await startMockProvider({ port })
  t.equal(again.url, `http://127.0.0.1:${port}`)
  await again.close()
  await t.rejects(startMockProvider({ port: Number(new URL((await startProvider(t)).provider.url).port) }), { code: 'EADDRINUSE' }, 'a port in use is an error')
})
