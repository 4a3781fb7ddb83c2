import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'

/**
 * Schemas of everything the provider answers. Compiled once, at module load.
 * Provider JSON is checked as it is: no coercion, no defaults filled in (one exception: a token answer's
 * `expires_in`, below).
 * Each answer may come bare or inside the `{success, message, data}` envelope
 * that the provider's app-creation API uses (the provider's documentation does not say which).
 */

/**
 * A token answer's `expires_in` as the proxy reads it: a number, or a string holding one (`"3600"`). The provider
 * documents a number (`expires_in: 7200`).
 */
export const ExpiresInSchema = Type.Union([
  Type.Number(),
  Type.String({ pattern: '^-?[0-9]{1,15}(\\.[0-9]{1,9})?$' })
])

/**
 * The token endpoint's answer (`{access_token, token_type: "Bearer", expires_in: 7200, refresh_token, scope}` in the
 * provider's documentation). Only what the set cannot do without is checked strictly (`access_token`, `token_type`,
 * and a `refresh_token` that is there at all). By the time the answer comes the provider has already rotated the
 * refresh token, so refusing it for an odd detail would throw the only refresh token that still works away and sign
 * the user out at the next refresh. So `expires_in` never refuses an answer (`0`, `-30`, `"3600"`: client.ts reads it
 * through ExpiresInSchema and bounds it, EXPIRES_IN_* there), and neither does `scope` (anything but a string of
 * scopes reads as the scopes asked for). A `null` or empty `refresh_token` (a backend's nil: no rotation this time)
 * is one not sent: the set keeps the one it had.
 */
export const TokenResponseSchema = Type.Object({
  access_token: Type.String({ minLength: 1, maxLength: 8192 }),
  token_type: Type.String({ minLength: 1, maxLength: 64 }),
  expires_in: Type.Optional(Type.Unknown()),
  refresh_token: Type.Optional(Type.Union([Type.String({ maxLength: 8192 }), Type.Null()])),
  scope: Type.Optional(Type.Unknown())
})
export type TokenResponse = Static<typeof TokenResponseSchema>

/** Fields as the provider's guide lists them; which ones come depends on the granted scopes. */
export const UserInfoSchema = Type.Object({
  id: Type.Union([Type.Integer(), Type.String({ minLength: 1, maxLength: 128 })]),
  username: Type.Optional(Type.String({ maxLength: 512 })),
  email: Type.Optional(Type.String({ maxLength: 512 })),
  quota: Type.Optional(Type.Number()),
  used_quota: Type.Optional(Type.Number()),
  balance_formatted: Type.Optional(Type.String({ maxLength: 64 })),
  created_time: Type.Optional(Type.Integer()),
  status: Type.Optional(Type.Integer())
})
export type UserInfo = Static<typeof UserInfoSchema>

export const TopupSchema = Type.Object({
  topup_url: Type.String({ minLength: 1, maxLength: 4096 })
})
export type Topup = Static<typeof TopupSchema>

/** RFC 6749 section 5.2 error body. */
export const OAuthErrorSchema = Type.Object({
  error: Type.String({ minLength: 1, maxLength: 256 }),
  error_description: Type.Optional(Type.String())
})

/** The provider's envelope: `{success, message, data}`. */
export const EnvelopeSchema = Type.Object({
  success: Type.Boolean(),
  message: Type.Optional(Type.String()),
  data: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.String())
})

export interface Checker<T extends TSchema> {
  name: string
  check: TypeCheck<T>
}

function checker<T extends TSchema> (name: string, schema: T): Checker<T> {
  return { name, check: TypeCompiler.Compile(schema) }
}

export const checkTokenResponse = checker('token response', TokenResponseSchema)
/** A token answer's `scope` the proxy reads: a space-separated list (RFC 6749 section 3.3). */
export const checkScope = TypeCompiler.Compile(Type.String({ maxLength: 1024 }))
export const checkUserInfo = checker('userinfo response', UserInfoSchema)
export const checkTopup = checker('top-up response', TopupSchema)
export const checkOAuthError = TypeCompiler.Compile(OAuthErrorSchema)
export const checkExpiresIn = TypeCompiler.Compile(ExpiresInSchema)
export const checkEnvelope = TypeCompiler.Compile(EnvelopeSchema)

/** What the proxy routes send to the browser: the same shapes, used as response schemas
 * (fast serialisation, and no field the schema does not name gets out). */
export const UserInfoReplySchema = UserInfoSchema

export const TopupReplySchema = TopupSchema

export const ErrorReplySchema = Type.Object({
  error: Type.String(),
  message: Type.String()
})
