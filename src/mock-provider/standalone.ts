import { AppRegistry, type NewMockApp } from './apps.js'
import { MockInvalidOptionError } from './errors.js'
import { DEFAULT_CONTROL_API_PREFIX } from './options.js'
import { startMockProvider, type MockProvider } from './provider.js'

export const DEFAULT_STANDALONE_PORT = 4000
export const DEFAULT_STANDALONE_HOST = '127.0.0.1'
/** The example server's default callback (`PUBLIC_URL` http://localhost:3000). */
export const DEFAULT_DEMO_REDIRECT_URI = 'http://localhost:3000/auth/callback'

export interface MainOptions {
  /** The environment to read; default `process.env`. */
  env?: Record<string, string | undefined>
  /** Where the startup lines go; default `console.log`. */
  print?: ((line: string) => void) | undefined
}

/** Environment variable → the `app.<field>` it fills. */
const APP_VARIABLES = { clientId: 'MOCK_CLIENT_ID', clientSecret: 'MOCK_CLIENT_SECRET', redirectUri: 'MOCK_REDIRECT_URI' } as const

function flag (env: Record<string, string | undefined>, name: string): boolean {
  const value = env[name] ?? ''
  if (value === '' || value === '0') return false
  if (value === '1') return true
  throw new MockInvalidOptionError(name, 'must be 1 or 0')
}

function port (value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_STANDALONE_PORT
  const n = Number(value)
  if (!/^\d+$/.test(value) || n > 65535) throw new MockInvalidOptionError('PORT', 'must be an integer from 0 to 65535')
  return n
}

/**
 * The standalone server (`npm run mock-provider`): a provider configured from the environment,
 * with one demo app registered.
 *
 * - `PORT` (4000), `HOST` (127.0.0.1)
 * - `MOCK_CONTROL_API=1`: the HTTP control API under `/__mock`
 * - `MOCK_CLIENT_ID`, `MOCK_CLIENT_SECRET`, `MOCK_REDIRECT_URI`: the demo app's credentials
 *   (generated when unset; the redirect URI defaults to the example's callback)
 * - `MOCK_PRINT_SECRET=1`: print the demo app's client secret and the developer token (otherwise they are only in
 *   the control API); the `aihubmix-mock-provider` command sets it unless it is set
 * - `MOCK_LOG=1`: request logging (query strings redacted)
 *
 * Prints the demo app, then `mock AIHubMix provider listening on <url>` once ready. A bad
 * variable throws `MockInvalidOptionError` naming it, before anything listens.
 */
export async function main (opts: MainOptions = {}): Promise<MockProvider> {
  const env = opts.env ?? process.env
  const print = opts.print ?? ((line: string) => { console.log(line) })
  const controlApi = flag(env, 'MOCK_CONTROL_API')
  const printSecret = flag(env, 'MOCK_PRINT_SECRET')
  const given = (name: string): string | undefined => (env[name] === '' ? undefined : env[name])
  const demo: NewMockApp = {
    name: 'Demo app',
    description: 'Registered by the standalone mock provider',
    redirectUri: given(APP_VARIABLES.redirectUri) ?? DEFAULT_DEMO_REDIRECT_URI,
    clientId: given(APP_VARIABLES.clientId),
    clientSecret: given(APP_VARIABLES.clientSecret)
  }
  // checked before anything listens, so a bad variable is reported by its own name
  const problem = new AppRegistry('check').problem({ ...demo })
  if (problem !== null) {
    throw new MockInvalidOptionError(APP_VARIABLES[problem.field as keyof typeof APP_VARIABLES], problem.message)
  }
  const provider = await startMockProvider({
    host: env.HOST !== undefined && env.HOST !== '' ? env.HOST : DEFAULT_STANDALONE_HOST,
    port: port(env.PORT),
    controlApi,
    logger: flag(env, 'MOCK_LOG')
  })
  const app = provider.createApp(demo)
  const controlUrl = `${provider.url}${DEFAULT_CONTROL_API_PREFIX}`
  print(`demo app client id: ${app.clientId}`)
  print(`demo app redirect URI: ${app.redirectUri}`)
  if (printSecret) {
    print(`demo app client secret: ${app.clientSecret}`)
    print(`developer token (AIHUBMIX_DEVELOPER_TOKEN for aihubmix-oauth create-app --base-url ${provider.url}): ${provider.developerToken}`)
  } else {
    print(`demo app client secret: not printed (set MOCK_PRINT_SECRET=1${controlApi ? `, or GET ${controlUrl}/apps` : ', or MOCK_CONTROL_API=1 and GET /__mock/apps'})`)
  }
  if (controlApi) print(`control API: ${controlUrl}`)
  print(`mock AIHubMix provider listening on ${provider.url}`)
  return provider
}
