/**
 * An optional option given as an explicit `undefined` (`scope: env.AIHUBMIX_SCOPE?.split(' ')`, `cookieName:
 * env.COOKIE`) is the option left out: typed so under `exactOptionalPropertyTypes` (test/tsconfig.json has it on, as
 * TypeScript 7's `tsc --init` does; `npx tsc -p test/tsconfig.json` checks this file), and so at run time: every
 * package's options resolve exactly as without the key, for every optional key of its schema, nested ones too.
 * test/types/consumers.test.ts compiles the same from the built declaration files.
 */
import t from 'tap'
import type { TObject, TSchema } from '@sinclair/typebox'
import type { CreateTokenStoreExtras, TokenStoreOptions } from '@fastify-aihubmix/token-store'
import type { AihubmixProxyOptions, AuthorizeUrlParams } from '@fastify-aihubmix/aihubmix-proxy'
import type { OAuthRoutesOptions } from '@fastify-aihubmix/oauth-routes'
import type { MetricsOptions } from '@fastify-aihubmix/metrics'
import type { MockProviderOptions } from '@fastify-aihubmix/mock-provider'
import type { CreateAppOptions, DoctorOptions, UpdateEnvFileOptions } from 'aihubmix-oauth'
import { resolveOptions as resolveProxy, ProxyOptionsSchema } from '../../src/aihubmix-proxy/options.js'
import { resolveOptions as resolveRoutes, OAuthRoutesOptionsSchema } from '../../src/oauth-routes/options.js'
import { resolveOptions as resolveMetrics, resolveRouteOptions, MetricsOptionsSchema, MetricsRouteOptionsSchema } from '../../src/metrics/options.js'
import { resolveOptions as resolveMock, MockProviderOptionsSchema } from '../../src/mock-provider/options.js'
import { resolveCreateAppOptions, resolveDoctorOptions, CreateAppOptionsSchema, DoctorOptionsSchema } from '../../src/cli/options.js'
import { resolveOptions as resolveStore } from '../../src/token-store/options.js'
import type { AihubmixMetrics } from '@fastify-aihubmix/metrics'

const env: Record<string, string | undefined> = {}

// The types: each optional option takes undefined (at the top and nested); a required one does not.
const proxy: AihubmixProxyOptions = {
  baseUrl: 'https://aihubmix.example',
  clientId: 'client_x',
  clientSecret: 'secret_x',
  redirectUri: 'https://app.example/auth/callback',
  scope: env.AIHUBMIX_SCOPE?.split(' '),
  timeoutMs: undefined,
  revocationUrl: env.REVOCATION_URL,
  routes: { userInfo: env.USER_INFO_ROUTE, topup: undefined },
  dispatcher: undefined
}
// @ts-expect-error clientSecret is required
const proxyNoSecret: AihubmixProxyOptions = { ...proxy, clientSecret: undefined }
const routes: OAuthRoutesOptions = {
  publicUrl: 'https://app.example',
  cookieName: env.COOKIE,
  issuer: env.ISSUER,
  routes: { login: env.LOGIN_ROUTE, sessions: undefined },
  onLogin: undefined
}
// @ts-expect-error publicUrl is required
const routesNoUrl: OAuthRoutesOptions = { publicUrl: env.PUBLIC_URL }
const store: TokenStoreOptions = { encryptionKeys: ['hex:' + 'a1'.repeat(32)], keyPrefix: env.KEY_PREFIX }
const metrics: MetricsOptions = { defaultMetrics: undefined, lockWaitBuckets: undefined }
const mock: MockProviderOptions = { port: undefined, controlApi: { prefix: env.MOCK_PREFIX }, user: { email: env.EMAIL } }
const createApp: CreateAppOptions = { developerToken: 't', name: 'n', redirectUri: 'https://app.example/cb', description: env.DESCRIPTION, dispatcher: undefined }
const doctor: DoctorOptions = { env, envFile: env.ENV_FILE, cwd: undefined, dispatcher: undefined }
// @ts-expect-error name is required
const createAppNoName: CreateAppOptions = { ...createApp, name: env.NAME }
// The smaller parameter objects of the public API take undefined too.
const extras: CreateTokenStoreExtras = { logger: undefined }
const envFileOptions: UpdateEnvFileOptions = { force: env.FORCE === undefined ? undefined : true, comment: env.COMMENT }
const authorize: AuthorizeUrlParams = { state: 's', codeChallenge: 'c', autoAuthorize: undefined }
t.ok([proxyNoSecret, routesNoUrl, createAppNoName, store, metrics, mock, doctor, routes, extras, envFileOptions, authorize], 'the typed options')

/**
 * `options` with every optional key of `schema` (and of the objects it nests) that `options` leaves out set to
 * undefined. A union's object branch counts when `options` has an object there.
 */
function withUndefined (schema: TSchema, options: Record<string, unknown>): Record<string, unknown> {
  const object = schema as TObject
  const out: Record<string, unknown> = { ...options }
  for (const [key, property] of Object.entries(object.properties ?? {})) {
    const required = (object.required ?? []).includes(key)
    const value = out[key]
    const branches: TSchema[] = (property as { anyOf?: TSchema[] }).anyOf ?? [property]
    const nested = branches.find((b) => (b as TObject).type === 'object' && (b as TObject).properties !== undefined)
    if (value === undefined && !required) out[key] = undefined
    else if (nested !== undefined && typeof value === 'object' && value !== null) out[key] = withUndefined(nested, value as Record<string, unknown>)
  }
  return out
}

/** The option keys given as undefined, for the test's name. */
function undefinedKeys (options: Record<string, unknown>, path = ''): string[] {
  return Object.entries(options).flatMap(([key, value]) => value === undefined
    ? [path + key]
    : typeof value === 'object' && value !== null && !Array.isArray(value) ? undefinedKeys(value as Record<string, unknown>, `${path}${key}.`) : [])
}

t.test('every optional option given as undefined resolves as if it were left out', async (t) => {
  const metricsDecorator = { scrape: async () => '', contentType: 'text/plain' } as unknown as AihubmixMetrics
  const cases: Array<{ name: string, schema: TSchema, options: Record<string, unknown>, resolve: (o: never) => unknown }> = [
    { name: 'aihubmix-proxy', schema: ProxyOptionsSchema, options: { baseUrl: proxy.baseUrl, clientId: 'c', clientSecret: 's', redirectUri: proxy.redirectUri, routes: {} }, resolve: resolveProxy },
    { name: 'oauth-routes', schema: OAuthRoutesOptionsSchema, options: { publicUrl: 'https://app.example', routes: {} }, resolve: resolveRoutes },
    { name: 'metrics', schema: MetricsOptionsSchema, options: {}, resolve: resolveMetrics },
    { name: 'metrics route', schema: MetricsRouteOptionsSchema, options: { metrics: metricsDecorator }, resolve: resolveRouteOptions },
    { name: 'mock-provider', schema: MockProviderOptionsSchema, options: { controlApi: {}, user: {} }, resolve: resolveMock },
    { name: 'mock-provider, user', schema: MockProviderOptionsSchema, options: { user: { id: 7, username: 'ada', email: 'ada@example.com', quota: 1, used_quota: 0, created_time: 0, status: 1 } }, resolve: resolveMock },
    { name: 'aihubmix-oauth createApp', schema: CreateAppOptionsSchema, options: { developerToken: 't', name: 'n', redirectUri: 'https://app.example/cb' }, resolve: resolveCreateAppOptions },
    { name: 'aihubmix-oauth doctor', schema: DoctorOptionsSchema, options: { env: {} }, resolve: resolveDoctorOptions }
  ]
  for (const { name, schema, options, resolve } of cases) {
    const given = withUndefined(schema, options)
    const keys = undefinedKeys(given)
    t.ok(keys.length > 0, `${name}: some keys are undefined`)
    t.same(resolve(given as never), resolve(options as never), `${name}: ${keys.join(', ')} undefined resolve as left out`)
  }
  // The mock's user patch: a field given as undefined keeps the default user's.
  const user = { id: 7, username: undefined, email: undefined }
  t.same(resolveMock({ user }).user, resolveMock({ user: { id: 7 } }).user, 'mock-provider: user.username, user.email undefined keep the defaults')
  // token-store (its types have said `| undefined` all along): the optional keys a minimal configuration leaves out.
  const minimal = { encryptionKeys: store.encryptionKeys }
  const storeKeys = ['backend', 'redis', 'keyPrefix', 'refreshSkewMs', 'refreshTokenTtlMs', 'sessionTtlMs', 'lockLeaseMs', 'lockWaitMs',
    'refreshBackoffMs', 'refreshBackoffMaxMs', 'redisCommandTimeoutMs', 'openedCacheSize', 'redisClientCache', 'sessionCookie',
    'maxSessionsPerUser', 'endUserSessionsOnRevoked', 'hooks']
  const { warnings, ...resolved } = resolveStore({ ...minimal, ...Object.fromEntries(storeKeys.map((k) => [k, undefined])) })
  const { warnings: none, ...leftOut } = resolveStore(minimal)
  t.same(resolved, leftOut, `token-store: ${storeKeys.join(', ')} undefined resolve as left out`)
  // Said, not different: `redis: env.REDIS_URL` with the variable unset is most often a Redis meant and missing.
  t.same([warnings.length, none.length], [1, 0], 'token-store: redis given as undefined is one warning at start')
  t.match(warnings[0], /^token-store: the redis option is given as undefined/)
})
