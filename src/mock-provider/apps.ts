import { MockInvalidArgumentError } from './errors.js'
import { newClientId, newSecret, secretEquals } from './secrets.js'

/** A registered OAuth app. */
export interface MockApp {
  id: number
  name: string
  description: string
  clientId: string
  clientSecret: string
  redirectUri: string
  /** Unix time, seconds. */
  createdTime: number
}

/**
 * What registering an app takes. `clientId` and `clientSecret` are generated unless given (the
 * standalone server takes them from the environment so an example app can be pre-configured).
 */
export interface NewMockApp {
  name: string
  redirectUri: string
  description?: string | undefined
  clientId?: string | undefined
  clientSecret?: string | undefined
}

export type NewAppField = keyof NewMockApp
export interface AppProblem { field: NewAppField, message: string }

const MAX_NAME = 100
const MAX_DESCRIPTION = 1000
const MAX_URI = 2000
const CREDENTIAL = /^[\x21-\x7e]{1,200}$/

/**
 * Why a redirect URI cannot be registered, or null. RFC 6749 3.1.2: absolute, no fragment; this
 * provider also wants http(s) and no user info.
 */
function redirectUriProblem (uri: string): string | null {
  if (uri.length === 0 || uri.length > MAX_URI) return `must be 1 to ${MAX_URI} characters`
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return 'must be an absolute http(s) URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an absolute http(s) URL'
  if (uri.includes('#')) return 'must not have a fragment'
  if (url.username !== '' || url.password !== '') return 'must not carry user info'
  return null
}

/** Apps of one provider instance, by client id. */
export class AppRegistry {
  readonly #apps = new Map<string, MockApp>()
  readonly #tokenPrefix: string

  constructor (tokenPrefix: string) {
    this.#tokenPrefix = tokenPrefix
  }

  /** The first thing wrong with `input` (checked field by field, in a stable order), or null. */
  problem (input: Record<string, unknown>): AppProblem | null {
    const { name, redirectUri, description, clientId, clientSecret } = input
    if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME) {
      return { field: 'name', message: `must be a non-empty string of at most ${MAX_NAME} characters` }
    }
    if (description !== undefined && (typeof description !== 'string' || description.length > MAX_DESCRIPTION)) {
      return { field: 'description', message: `must be a string of at most ${MAX_DESCRIPTION} characters` }
    }
    if (typeof redirectUri !== 'string') return { field: 'redirectUri', message: 'must be an absolute http(s) URL' }
    const uriProblem = redirectUriProblem(redirectUri)
    if (uriProblem !== null) return { field: 'redirectUri', message: uriProblem }
    if (clientId !== undefined) {
      if (typeof clientId !== 'string' || !CREDENTIAL.test(clientId)) {
        return { field: 'clientId', message: 'must be 1 to 200 printable ASCII characters without spaces' }
      }
      if (this.#apps.has(clientId)) return { field: 'clientId', message: 'is already registered' }
    }
    if (clientSecret !== undefined && (typeof clientSecret !== 'string' || !CREDENTIAL.test(clientSecret))) {
      return { field: 'clientSecret', message: 'must be 1 to 200 printable ASCII characters without spaces' }
    }
    return null
  }

  /** Registers an app; throws `MockInvalidArgumentError` (`app.<field>`) on bad input. */
  create (input: NewMockApp): MockApp {
    if (typeof input !== 'object' || input === null) throw new MockInvalidArgumentError('app', 'must be an object')
    const problem = this.problem(input as unknown as Record<string, unknown>)
    if (problem !== null) throw new MockInvalidArgumentError(`app.${problem.field}`, problem.message)
    const app: MockApp = {
      id: this.#apps.size + 1,
      name: input.name,
      description: input.description ?? '',
      clientId: input.clientId ?? newClientId(),
      clientSecret: input.clientSecret ?? newSecret('secret', this.#tokenPrefix),
      redirectUri: input.redirectUri,
      createdTime: Math.floor(Date.now() / 1000)
    }
    this.#apps.set(app.clientId, app)
    return { ...app }
  }

  list (): MockApp[] {
    return [...this.#apps.values()].map((app) => ({ ...app }))
  }

  find (clientId: string): MockApp | undefined {
    return this.#apps.get(clientId)
  }

  /** The app whose id and secret these are (secret compared in constant time), or undefined. */
  authenticate (clientId: string, clientSecret: string): MockApp | undefined {
    const app = this.#apps.get(clientId)
    return app !== undefined && secretEquals(app.clientSecret, clientSecret) ? app : undefined
  }

  secrets (): string[] {
    return [...this.#apps.values()].map((app) => app.clientSecret)
  }
}
