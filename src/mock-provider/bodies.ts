import type { FastifyInstance } from 'fastify'

/** Parameters as Fastify gives a query: repeated names become arrays. */
export type ParamRecord = Record<string, string | string[] | undefined>

/**
 * A request body as it arrived: its media type (lower case, no parameters), its text, and its
 * parameters when it is form-encoded (parsed once, here).
 */
export interface RawBody { mime: string, text: string, form: ParamRecord | null }

export const BODY_LIMIT = 64 * 1024

function mimeOf (contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? ''
}

/**
 * Makes every route of this (encapsulated) instance take any body as text, so the route itself
 * decides what a wrong media type or bad syntax answers, in the shape its clients expect, instead
 * of Fastify's generic 400/415.
 */
export function acceptRawBodies (instance: FastifyInstance): void {
  instance.removeAllContentTypeParsers()
  instance.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (request, body, done) => {
    const mime = mimeOf(request.headers['content-type'])
    const text = body as string
    done(null, { mime, text, form: mime === 'application/x-www-form-urlencoded' ? paramRecord(new URLSearchParams(text)) : null } satisfies RawBody)
  })
}

function isRawBody (body: unknown): body is RawBody {
  return typeof body === 'object' && body !== null && typeof (body as RawBody).text === 'string'
}

function paramRecord (params: URLSearchParams): ParamRecord {
  const record: ParamRecord = Object.create(null)
  for (const [name, value] of params) {
    const seen = record[name]
    record[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]
  }
  return record
}

/** A form-encoded body as a parameter record, or null when the body is not form-encoded. */
export function formBody (body: unknown): ParamRecord | null {
  return isRawBody(body) ? body.form : null
}

/**
 * Single-valued parameters (RFC 6749 3.1 and 3.2: none may appear twice). Empty values count as
 * absent. Returns the first repeated name instead when there is one.
 */
export function singleParams (record: ParamRecord): { ok: true, params: Record<string, string> } | { ok: false, repeated: string } {
  const params: Record<string, string> = {}
  for (const [name, value] of Object.entries(record)) {
    if (Array.isArray(value)) return { ok: false, repeated: name }
    if (value !== undefined && value !== '') params[name] = value
  }
  return { ok: true, params }
}

/** A JSON object body, or why it is not one. */
export function jsonObjectBody (body: unknown): { ok: true, value: Record<string, unknown> } | { ok: false, message: string } {
  if (!isRawBody(body) || body.mime !== 'application/json') return { ok: false, message: 'Content-Type must be application/json' }
  let value: unknown
  try {
    value = JSON.parse(body.text)
  } catch {
    return { ok: false, message: 'the body is not valid JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, message: 'the body must be a JSON object' }
  return { ok: true, value: value as Record<string, unknown> }
}

/** RFC 6750 2.1 `Authorization: Bearer <b64token>`; the scheme is case-insensitive. */
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i

/** The bearer token of an `Authorization` header (the only place this provider reads one), or undefined. */
export function bearerToken (authorization: string | undefined): string | undefined {
  return BEARER.exec(authorization ?? '')?.[1]
}
