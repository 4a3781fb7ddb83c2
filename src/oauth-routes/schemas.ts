import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'

/**
 * The schemas of the sign-in routes: what each one takes (query, params) and answers. The routes are typed from
 * them (@fastify/type-provider-typebox), so a handler reads its query as the schema says and cannot answer a shape
 * its response schema does not describe. The callback's query is checked by the handler itself, after the state.
 */

/**
 * `returnTo` is not validated here but by the handler (return-to.ts), like every other unsafe value: a repeated
 * parameter (an array) or one too long for the check falls back to `defaultReturnTo`. The schema refused them with a
 * 400 JSON body, which a browser navigation (a link, the popup) showed as the page.
 */
export const LoginQuery = Type.Object({
  returnTo: Type.Optional(Type.Unknown()),
  mode: Type.Optional(Type.String({ maxLength: 32 }))
})

/** Not a route schema: the callback checks its query with this itself, once the state has been checked. */
export const CallbackQuery = Type.Object({
  state: Type.Optional(Type.String({ maxLength: 512 })),
  code: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 4096 })),
  error_uri: Type.Optional(Type.String({ maxLength: 4096 })),
  iss: Type.Optional(Type.String({ maxLength: 2048 }))
})
export const checkCallbackQuery = TypeCompiler.Compile(CallbackQuery)

export const SessionReply = Type.Object({
  authenticated: Type.Boolean(),
  expiresAt: Type.Optional(Type.String()),
  scope: Type.Optional(Type.Array(Type.String()))
})

export const ErrorReply = Type.Object({ error: Type.String(), message: Type.String() })

/** `GET <prefix>/sessions`: never a session id, cookie value or token; `id` is the session's opaque handle. */
export const SessionsReply = Type.Object({
  sessions: Type.Array(Type.Object({
    id: Type.String(),
    current: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    lastSeenAt: Type.String({ format: 'date-time' }),
    userAgent: Type.String()
  }))
})
export const SessionParams = Type.Object({ id: Type.String() })
/**
 * `everywhere`: `1` or `true` ends every session of the user; `0` or `false`, or none, this one. Anything else is
 * refused (400): `?everywhere=yes` signed out this device alone and answered 204, as if every device were.
 */
export const LogoutQuery = Type.Object({ everywhere: Type.Optional(Type.Union([Type.Literal('1'), Type.Literal('true'), Type.Literal('0'), Type.Literal('false')])) })

/** A 204: no body (the reply sends none; this only documents it). */
export const NoContentReply = Type.Null()
