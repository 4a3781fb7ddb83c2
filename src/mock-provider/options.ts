import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { MockInvalidArgumentError, MockInvalidOptionError } from './errors.js'
import { firstOptionProblem } from './option-errors.js'

/** The provider endpoints that count calls and take latency and faults. */
export const MOCK_ENDPOINTS = ['authorize', 'token', 'userinfo', 'topup', 'oauth_apps'] as const
export type MockEndpoint = typeof MOCK_ENDPOINTS[number]

/** Fault switches; see the README for what each one answers. */
export const MOCK_FAULTS = [
  'http500', 'http503', 'http429', 'http401', 'invalid_client', 'non_json', 'truncated', 'wrong_types', 'oversize',
  'null_body', 'error_in_200', 'redirect', 'set_cookie', 'hang'
] as const
export type MockFault = typeof MOCK_FAULTS[number]

/** The scopes the provider knows, in the order it reports them. */
export const MOCK_SCOPES = ['profile', 'balance'] as const
export type MockScope = typeof MOCK_SCOPES[number]

/** The signed-in provider user (the mock's browser is always signed in at the provider). */
export interface MockUser {
  id: number
  username: string
  email: string
  /** Total quota, in the provider's units (1000 units = 1.00 of balance). */
  quota: number
  used_quota: number
  /** Unix time, seconds. */
  created_time: number
  status: number
}

export interface MockProviderOptions {
  /** Interface to listen on. Default `'127.0.0.1'`. */
  host?: string | undefined
  /** Port; `0` (the default) picks a free one. */
  port?: number | undefined
  /**
   * Marker inside every issued secret, so leak sweeps recognise them: `at_<prefix>_…`,
   * `rt_<prefix>_…`, `code_<prefix>_…`, `secret_<prefix>_…`. Default `'mock'`.
   */
  tokenPrefix?: string | undefined
  /** Access token life; sent as `expires_in`, so a whole number. Default 7200. */
  accessTokenTtlSeconds?: number | undefined
  /** Refresh token life (each rotation starts a new one). Default 30 days. */
  refreshTokenTtlSeconds?: number | undefined
  /** Authorization code life. Default 60. */
  codeTtlSeconds?: number | undefined
  /** A refresh answers a new refresh token and kills the one used. Default true. */
  rotateRefreshTokens?: boolean | undefined
  /** Reusing a rotated refresh token revokes its whole grant. Default true. */
  refreshReuseRevokes?: boolean | undefined
  /** Bearer tokens accepted by `POST /api/oauth_apps`. Default `['dev_<prefix>_token']`. */
  developerTokens?: string[] | undefined
  /** HTTP control API, off by default; `true` mounts it under `/__mock`. */
  controlApi?: boolean | { prefix?: string | undefined } | undefined
  /** Overrides of the default user (a field given as undefined keeps the default's). */
  user?: { [K in keyof MockUser]?: MockUser[K] | undefined } | undefined
  /** Wrap token, userinfo and topup answers in `{success, message, data}`. Default false. */
  envelope?: boolean | undefined
  /**
   * In envelope mode, whether an error answer carries an `error` code beside `message` (`{success: false, message,
   * error}`); false: `{success: false, message}` alone, the guide's envelope error. Default true.
   */
  envelopeErrorCodes?: boolean | undefined
  /**
   * Serve `POST /api/oauth2/revoke`, an RFC 7009 revocation endpoint, which the provider's guide does not document:
   * for testing a client's optional revocation (aihubmix-proxy's `revocationUrl`). Default false.
   */
  revocationEndpoint?: boolean | undefined
  /** Fastify request logging (query strings redacted, no headers). Default false. */
  logger?: boolean | undefined
}

export interface ResolvedMockProviderOptions {
  host: string
  port: number
  tokenPrefix: string
  accessTokenTtlSeconds: number
  refreshTokenTtlSeconds: number
  codeTtlSeconds: number
  rotateRefreshTokens: boolean
  refreshReuseRevokes: boolean
  developerTokens: string[]
  /** `null` when the control API is off. */
  controlApi: { prefix: string } | null
  user: MockUser
  envelope: boolean
  envelopeErrorCodes: boolean
  revocationEndpoint: boolean
  logger: boolean
}

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 0
export const DEFAULT_TOKEN_PREFIX = 'mock'
export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 7200
export const DEFAULT_REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 60 * 60
export const DEFAULT_CODE_TTL_SECONDS = 60
export const DEFAULT_ROTATE_REFRESH_TOKENS = true
export const DEFAULT_REFRESH_REUSE_REVOKES = true
export const DEFAULT_CONTROL_API_PREFIX = '/__mock'
export const DEFAULT_ENVELOPE = false
export const DEFAULT_ENVELOPE_ERROR_CODES = true
export const DEFAULT_LOGGER = false
export const DEFAULT_REVOCATION_ENDPOINT = false
export const DEFAULT_USER: Readonly<MockUser> = Object.freeze({
  id: 12345,
  username: 'user123',
  email: 'user@example.com',
  quota: 1000000,
  used_quota: 250000,
  created_time: 1640995200,
  status: 1
})
/** The developer token accepted when `developerTokens` is not given. */
export function defaultDeveloperToken (tokenPrefix: string): string {
  return `dev_${tokenPrefix}_token`
}

const userFields = {
  id: Type.Integer({ minimum: 1 }),
  username: Type.String(),
  email: Type.String(),
  quota: Type.Integer(),
  used_quota: Type.Integer(),
  created_time: Type.Integer({ minimum: 0 }),
  status: Type.Integer()
}

/** A partial user, as `setUser()` and the `user` option take it. */
export const MockUserPatchSchema = Type.Partial(Type.Object(userFields), { additionalProperties: false })

export const MockProviderOptionsSchema = Type.Object({
  host: Type.Optional(Type.String({ minLength: 1 })),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  tokenPrefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9]{1,32}$', expected: '1 to 32 letters or digits' })),
  accessTokenTtlSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
  refreshTokenTtlSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  codeTtlSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  rotateRefreshTokens: Type.Optional(Type.Boolean()),
  refreshReuseRevokes: Type.Optional(Type.Boolean()),
  // RFC 6750 b64token: what a Bearer header can carry
  developerTokens: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9\\-._~+/]+=*$', expected: 'a bearer token (letters, digits and -._~+/, then = padding)' }), { minItems: 1 })),
  controlApi: Type.Optional(Type.Union([
    Type.Boolean(),
    Type.Object({
      // an absolute path without a trailing slash, query or fragment
      prefix: Type.Optional(Type.String({ pattern: '^(/[A-Za-z0-9._~-]+)+$', expected: 'a path prefix like /__mock, without a trailing /' }))
    }, { additionalProperties: false })
  ])),
  user: Type.Optional(MockUserPatchSchema),
  envelope: Type.Optional(Type.Boolean()),
  envelopeErrorCodes: Type.Optional(Type.Boolean()),
  revocationEndpoint: Type.Optional(Type.Boolean()),
  logger: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

const checkOptions = TypeCompiler.Compile(MockProviderOptionsSchema)
const checkUserPatch = TypeCompiler.Compile(MockUserPatchSchema)

/** The first schema violation as `[path, message]`, the path dotted under `root`. */
function firstProblem<T extends TSchema> (check: TypeCheck<T>, value: unknown, root: string): [string, string] | null {
  if (check.Check(value)) return null
  return firstOptionProblem(check.Errors(value), root) ?? [root, 'is invalid']
}

/**
 * Validates `startMockProvider()` options once and returns a new, complete object (the caller's
 * is never mutated). Throws `MockInvalidOptionError` naming the bad option path.
 */
export function resolveOptions (opts: MockProviderOptions = {}): ResolvedMockProviderOptions {
  const problem = firstProblem(checkOptions, opts, 'options')
  if (problem !== null) throw new MockInvalidOptionError(...problem)
  const tokenPrefix = opts.tokenPrefix ?? DEFAULT_TOKEN_PREFIX
  const controlApi = opts.controlApi === undefined || opts.controlApi === false
    ? null
    : { prefix: (opts.controlApi === true ? undefined : opts.controlApi.prefix) ?? DEFAULT_CONTROL_API_PREFIX }
  return {
    host: opts.host ?? DEFAULT_HOST,
    port: opts.port ?? DEFAULT_PORT,
    tokenPrefix,
    accessTokenTtlSeconds: opts.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
    codeTtlSeconds: opts.codeTtlSeconds ?? DEFAULT_CODE_TTL_SECONDS,
    rotateRefreshTokens: opts.rotateRefreshTokens ?? DEFAULT_ROTATE_REFRESH_TOKENS,
    refreshReuseRevokes: opts.refreshReuseRevokes ?? DEFAULT_REFRESH_REUSE_REVOKES,
    developerTokens: [...(opts.developerTokens ?? [defaultDeveloperToken(tokenPrefix)])],
    controlApi,
    // a field given as undefined is one left out
    user: { ...DEFAULT_USER, ...Object.fromEntries(Object.entries(opts.user ?? {}).filter(([, value]) => value !== undefined)) },
    envelope: opts.envelope ?? DEFAULT_ENVELOPE,
    envelopeErrorCodes: opts.envelopeErrorCodes ?? DEFAULT_ENVELOPE_ERROR_CODES,
    revocationEndpoint: opts.revocationEndpoint ?? DEFAULT_REVOCATION_ENDPOINT,
    logger: opts.logger ?? DEFAULT_LOGGER
  }
}

/** Validates a user patch (`setUser()`); throws `MockInvalidArgumentError` naming the field. */
export function checkUserPatchArgument (patch: unknown): asserts patch is Partial<MockUser> {
  const problem = firstProblem(checkUserPatch, patch, 'user')
  if (problem !== null) throw new MockInvalidArgumentError(...problem)
}
