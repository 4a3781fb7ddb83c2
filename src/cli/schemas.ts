import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

/**
 * The answers of `POST /api/oauth_apps`, compiled once. No coercion: a field
 * of the wrong JSON type fails. Unknown extra fields are allowed (the provider
 * may add some). Credentials end up in an env file, so they must be printable
 * ASCII without spaces or line breaks.
 */
const Credential = Type.String({ pattern: '^[\\x21-\\x7e]{1,512}$' })

/** The app as the provider describes it: the envelope's `data`, or the whole bare answer. */
export const OAuthAppSchema = Type.Object({
  id: Type.Union([Type.Integer(), Type.String({ pattern: '^[\\x20-\\x7e]{1,200}$' })]),
  name: Type.Optional(Type.String()),
  client_id: Credential,
  client_secret: Credential,
  redirect_uri: Type.Optional(Type.String()),
  created_time: Type.Optional(Type.Union([Type.Number(), Type.String()]))
})

export const OAuthAppEnvelopeSchema = Type.Object({
  success: Type.Literal(true),
  message: Type.Optional(Type.String()),
  data: OAuthAppSchema
})

/** Error bodies worth reading a reason from: `{success: false, message}` or RFC 6749's `{error, error_description}`. */
export const ProviderErrorBodySchema = Type.Union([
  Type.Object({ success: Type.Literal(false), message: Type.Optional(Type.String()) }),
  Type.Object({ error: Type.String(), error_description: Type.Optional(Type.String()) }),
  Type.Object({ message: Type.String() })
])

export type OAuthAppAnswer = Static<typeof OAuthAppSchema>
export type OAuthAppEnvelope = Static<typeof OAuthAppEnvelopeSchema>
export type ProviderErrorBody = Static<typeof ProviderErrorBodySchema>

export const checkOAuthApp = TypeCompiler.Compile(OAuthAppSchema)
export const checkOAuthAppEnvelope = TypeCompiler.Compile(OAuthAppEnvelopeSchema)
export const checkProviderErrorBody = TypeCompiler.Compile(ProviderErrorBodySchema)
