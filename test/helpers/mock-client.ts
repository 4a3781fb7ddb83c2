// A small HTTP client for the mock provider's tests: real requests over undici, no redirects
// followed, bodies read as text so that non-JSON answers can be asserted too.
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'undici'
import {
  startMockProvider,
  type MockApp,
  type MockProvider,
  type MockProviderOptions
} from '@fastify-aihubmix/mock-provider'

export const REDIRECT_URI = 'http://localhost:3000/auth/callback'

interface Teardown { teardown: (fn: () => unknown) => void }

/** A started provider (closed at teardown) with one registered app. */
export async function startProvider (t: Teardown, opts?: MockProviderOptions): Promise<{ provider: MockProvider, app: MockApp }> {
  const provider = await startMockProvider(opts)
  t.teardown(() => provider.close())
  const app = provider.createApp({ name: 'Test app', redirectUri: REDIRECT_URI })
  return { provider, app }
}

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: () => any
}

export async function call (url: string, opts: { method?: 'GET' | 'POST', headers?: Record<string, string>, body?: string, signal?: AbortSignal } = {}): Promise<Answer> {
  const res = await request(url, {
    method: opts.method ?? 'GET',
    ...(opts.headers === undefined ? {} : { headers: opts.headers }),
    ...(opts.body === undefined ? {} : { body: opts.body }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal })
  })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) }
}

/** The authorize URL for `app`, one-click by default; `undefined` drops a parameter. */
export function authorizeUrl (provider: MockProvider, app: MockApp, params: Record<string, string | undefined> = {}): string {
  const all: Record<string, string | undefined> = {
    client_id: app.clientId,
    redirect_uri: app.redirectUri,
    response_type: 'code',
    scope: 'profile balance',
    state: 'state-1',
    auto_authorize: 'true',
    ...params
  }
  const query = new URLSearchParams()
  for (const [name, value] of Object.entries(all)) if (value !== undefined) query.append(name, value)
  return `${provider.url}/api/oauth2/authorize?${query.toString()}`
}

export async function authorize (provider: MockProvider, app: MockApp, params: Record<string, string | undefined> = {}): Promise<Answer> {
  return call(authorizeUrl(provider, app, params))
}

/** The parameters the provider sent back in `Location` (which must start with `redirectUri`). */
export function backParams (answer: Answer, redirectUri = REDIRECT_URI): URLSearchParams {
  const location = answer.headers.location
  if (typeof location !== 'string' || !location.startsWith(redirectUri)) {
    throw new Error(`expected a redirect to ${redirectUri}, got ${answer.status} ${String(location)}`)
  }
  return new URL(location).searchParams
}

export async function getCode (provider: MockProvider, app: MockApp, params: Record<string, string | undefined> = {}): Promise<string> {
  const code = backParams(await authorize(provider, app, params), app.redirectUri).get('code')
  if (code === null) throw new Error('no code in the redirect')
  return code
}

export function pkcePair (): { verifier: string, challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export function formBody (form: Record<string, string | undefined>): string {
  const body = new URLSearchParams()
  for (const [name, value] of Object.entries(form)) if (value !== undefined) body.append(name, value)
  return body.toString()
}

export async function tokenCall (provider: MockProvider, form: Record<string, string | undefined>): Promise<Answer> {
  return call(`${provider.url}/api/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: formBody(form)
  })
}

export async function exchange (provider: MockProvider, app: MockApp, code: string, extra: Record<string, string | undefined> = {}): Promise<Answer> {
  return tokenCall(provider, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: app.redirectUri,
    client_id: app.clientId,
    client_secret: app.clientSecret,
    ...extra
  })
}

export async function refresh (provider: MockProvider, app: MockApp, refreshToken: string, extra: Record<string, string | undefined> = {}): Promise<Answer> {
  return tokenCall(provider, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: app.clientId,
    client_secret: app.clientSecret,
    ...extra
  })
}

export interface Tokens { access_token: string, refresh_token: string, expires_in: number, scope: string, token_type: string }

/** A whole one-click login: authorize, then exchange the code. */
export async function login (provider: MockProvider, app: MockApp, params: Record<string, string | undefined> = {}): Promise<Tokens> {
  const answer = await exchange(provider, app, await getCode(provider, app, params))
  if (answer.status !== 200) throw new Error(`login failed: ${answer.status} ${answer.text}`)
  return answer.json()
}

export async function bearerGet (provider: MockProvider, path: string, accessToken?: string): Promise<Answer> {
  return call(`${provider.url}${path}`, accessToken === undefined ? {} : { headers: { authorization: `Bearer ${accessToken}` } })
}

export async function userinfo (provider: MockProvider, accessToken?: string): Promise<Answer> {
  return bearerGet(provider, '/api/oauth2/userinfo', accessToken)
}
