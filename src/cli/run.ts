import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { EnvHttpProxyAgent, type Dispatcher } from 'undici'
import { createApp, redirectPathProblem, redirectPathWarning, type CreatedApp } from './create-app.js'
import { doctor, formatCheck } from './doctor.js'
import { assertEnvFileUpdatable, describeMalformed, readEnvFile, updateEnvFile, type EnvFileUpdate } from './env-file.js'
import { CliInvalidArgumentError, CliUsageError, EnvFileConflictError, EnvFileError, ProviderError, ProviderUnreachableError, errorInfo } from './errors.js'
import { closest } from './option-errors.js'
import { BASE_URL_VARIABLE, DEFAULT_BASE_URL, DEFAULT_ENV_FILE, DEVELOPER_TOKEN_VARIABLE, ENV_KEYS } from './options.js'
import {
  baseUrlProblem,
  descriptionProblem,
  developerTokenProblem,
  nameProblem,
  normalizeBaseUrl,
  redirectUriProblem
} from './validate.js'

/** The package version (a test keeps it equal to package.json's). */
export const VERSION = '0.1.0'
export const PROGRAM = 'aihubmix-oauth'

/** Where `run()` reads and writes: the process's, or a test's captures. */
export interface CliIo {
  env: Record<string, string | undefined>
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
  /** Relative paths (the env file) resolve against it. */
  cwd: string
  /**
   * Where the commands' HTTP requests go (an undici Dispatcher, used as is and not closed: a ProxyAgent behind a
   * corporate proxy, or a test's). Default: an Agent of each request's own.
   */
  dispatcher?: Dispatcher
}

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

const MAIN_USAGE = `Usage: ${PROGRAM} <command> [options]

Commands:
  create-app   register an OAuth app with AIHubMix and write its credentials to an env file
  doctor       check the configuration the example server would read

Options:
  -h, --help     show this help (${PROGRAM} <command> --help for a command's options)
  -v, --version  print the version

Exit status: 0 ok, 1 failure (provider, network, file, a failed check), 2 usage or validation error.
Behind a proxy, set HTTPS_PROXY (or HTTP_PROXY) and NO_PROXY as for curl or npm.
`

const CREATE_APP_USAGE = `Usage: ${PROGRAM} create-app --name <name> --redirect-uri <uri> [options]

Registers an OAuth app (POST /api/oauth_apps) with the developer token read from
the ${DEVELOPER_TOKEN_VARIABLE} environment variable (never from an argument), then writes
${ENV_KEYS.join(', ')} and ${BASE_URL_VARIABLE} (the origin the app was
registered with: its credentials work there only) to the env file (mode 0600).
Prints the client id and where the secret went; never the secret.

Options:
  --name <name>          the app's name (1 to 100 characters)
  --redirect-uri <uri>   where the provider sends users back, e.g. https://app.example.com/auth/callback
                         (https; plain http only for localhost, 127.0.0.1 and [::1]); exactly the
                         app's callback route, no trailing slash
  --description <text>   shown to users on the provider's consent screen
  --base-url <url>       the provider's API origin (default ${DEFAULT_BASE_URL}), where the app
                         is registered; written to the env file as ${BASE_URL_VARIABLE}
  --env-file <path>      the env file to update (default ${DEFAULT_ENV_FILE})
  --env, -e <path>       the same as --env-file; use it with npx on Node.js 20 and 22, whose
                         own node process takes every --env-file of its command line
  --force                replace those keys when the env file already has them
  -h, --help             show this help
`

const DOCTOR_USAGE = `Usage: ${PROGRAM} doctor [options]

Checks the configuration the example server would read: the environment, with the
env file filling what it leaves unset. With AIHUBMIX_BASE_URL it also asks the provider
whether it knows the client id with the redirect URI and with the secret (an authorization
request nobody answers, a token request with a made-up code: nothing is granted).
One line per check (ok, warn or FAIL); exit status 1 when any check fails.

Options:
  --env-file <path>   the env file to read (default $ENV_FILE, else ${DEFAULT_ENV_FILE})
  --env, -e <path>    the same as --env-file; use it with npx on Node.js 20 and 22, whose
                      own node process takes every --env-file of its command line
  -h, --help          show this help
`

type OptionSpec = Record<string, { type: 'string' | 'boolean', short?: string }>

/**
 * The env file options. `--env` / `-e` is an alias of `--env-file` that Node.js does not read: Node.js 20 and 22
 * take every `--env-file` of a node process's command line, the script's arguments included (nodejs/node#54232),
 * and `npx aihubmix-oauth doctor --env-file x.env` runs npx's own node with it, which exits with
 * `node: x.env: not found` before this command starts (or loads the file into npx itself when it exists).
 */
const ENV_FILE_OPTIONS: OptionSpec = {
  'env-file': { type: 'string' },
  env: { type: 'string', short: 'e' }
}

/** The env file named by `--env-file` or its alias, or undefined; both at once is a usage error. */
function envFileOption (values: Record<string, string | boolean | undefined>): string | undefined {
  const long = values['env-file']
  const alias = values.env
  if (typeof long === 'string' && typeof alias === 'string') throw new CliUsageError('--env-file and --env (-e) are the same option: give one')
  const given = typeof long === 'string' ? long : alias
  if (typeof given !== 'string') return undefined
  // `--env-file=` (a variable that expanded to nothing): not the working directory, not the default file.
  if (given.trim() === '') throw new CliUsageError('--env-file needs a file name (it was given an empty one)')
  return given
}

/**
 * parseArgs with messages that never quote a value (a token pasted as an
 * argument must not be echoed back): unknown options are named, positionals
 * are not.
 */
function parse (args: string[], options: OptionSpec): Record<string, string | boolean | undefined> {
  let parsed
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true, tokens: true })
  } catch (err) {
    const { code, message } = errorInfo(err)
    const flag = /'(-{1,2}[^'=\s]*)/.exec(message)?.[1] ?? 'an option'
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new CliUsageError(`unknown option ${flag}`)
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // `Option '--name <value>' argument missing`, `Option '-e, --env <value>' ...`: the long name.
      const name = /(--[a-z-]+)/.exec(message)?.[1] ?? 'an option'
      throw new CliUsageError(options[name.slice(2)]?.type === 'boolean' ? `${name} takes no value` : `${name} needs a value`)
    }
    throw new CliUsageError('the arguments could not be read')
  }
  if (parsed.positionals.length > 0) throw new CliUsageError('unexpected argument (this command takes options only)')
  const seen = new Set<string>()
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue
    if (seen.has(token.name)) throw new CliUsageError(`--${token.name} is given more than once`)
    seen.add(token.name)
  }
  return parsed.values as Record<string, string | boolean | undefined>
}

function line (stream: CliIo['stdout'], text: string): void {
  stream.write(`${text}\n`)
}

function requireValue (values: Record<string, unknown>, name: string): string {
  const value = values[name]
  if (typeof value !== 'string') throw new CliUsageError(`--${name} is required`)
  return value
}

function check (flag: string, problem: string | null): void {
  if (problem !== null) throw new CliInvalidArgumentError(flag, problem)
}

/** Whether the env file's value names the base URL `base` (both normalised); undefined/unparsable: false. */
function sameBaseUrl (value: string | undefined, base: string): boolean {
  if (value === undefined || value === '') return false
  try {
    return normalizeBaseUrl(value) === normalizeBaseUrl(base)
  } catch {
    return false
  }
}

function describeUpdate (update: EnvFileUpdate): string[] {
  const lines: string[] = []
  const what = update.created ? 'created' : 'updated'
  const parts: string[] = []
  if (update.replaced.length > 0) parts.push(`replaced ${update.replaced.join(', ')}`)
  if (update.added.length > 0) parts.push(`added ${update.added.join(', ')}`)
  lines.push(`${what} ${update.path} (mode 0600): ${parts.join('; ')}`)
  if (update.duplicatesRemoved > 0) lines.push(`removed ${update.duplicatesRemoved} duplicate definition(s) of those keys`)
  if (update.tightenedFrom !== undefined) {
    lines.push(`note: ${update.path} was readable by others (mode 0${update.tightenedFrom.toString(8)}); it is now 0600`)
  }
  return lines
}

async function runCreateApp (args: string[], io: CliIo): Promise<number> {
  const values = parse(args, {
    name: { type: 'string' },
    'redirect-uri': { type: 'string' },
    description: { type: 'string' },
    'base-url': { type: 'string' },
    ...ENV_FILE_OPTIONS,
    force: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' }
  })
  if (values.help === true) {
    io.stdout.write(CREATE_APP_USAGE)
    return EXIT_OK
  }
  const name = requireValue(values, 'name')
  const redirectUri = requireValue(values, 'redirect-uri')
  const description = typeof values.description === 'string' ? values.description : undefined
  const baseUrl = typeof values['base-url'] === 'string' ? values['base-url'] : DEFAULT_BASE_URL
  const envFile = resolve(io.cwd, envFileOption(values) ?? DEFAULT_ENV_FILE)
  const force = values.force === true

  // Everything is checked before the request: a refusal costs no app.
  check('--name', nameProblem(name))
  check('--redirect-uri', redirectUriProblem(redirectUri))
  check('--redirect-uri', redirectPathProblem(redirectUri))
  if (description !== undefined) check('--description', descriptionProblem(description))
  check('--base-url', baseUrlProblem(baseUrl))
  const token = io.env[DEVELOPER_TOKEN_VARIABLE]
  if (token === undefined || token === '') {
    throw new CliInvalidArgumentError(DEVELOPER_TOKEN_VARIABLE, 'is not set: create a developer token in your AIHubMix account and export it (it is never taken from an argument)')
  }
  check(DEVELOPER_TOKEN_VARIABLE, developerTokenProblem(token))
  // The origin the app is registered with is also the one it signs in at (AIHUBMIX_BASE_URL, as the example server
  // reads it: unset, it starts the embedded mock provider and ignores the credentials), --base-url or the default.
  // A file that already holds that same origin is left as it is (no conflict); another one is a conflict, found
  // before the request, like the credentials'.
  const writeBaseUrl = !sameBaseUrl((await readEnvFile(envFile)).values[BASE_URL_VARIABLE], baseUrl)
  const keys: string[] = [...ENV_KEYS, ...(writeBaseUrl ? [BASE_URL_VARIABLE] : [])]
  // The name that was sent (validated), not the provider's echo: nothing from the answer but
  // the checked id and client id reaches the terminal or the file's comment.
  const shownName = name.trim()
  const comment = `AIHubMix OAuth app "${shownName}" (written by ${PROGRAM} create-app)`
  // Also refuses, before the request, a file where Node.js would not read the keys back (a line above swallows them).
  const existing = await assertEnvFileUpdatable(envFile, keys, { force, comment })
  // Lines that are not NAME=value are kept as they are: not create-app's business, but said (by number only),
  // before the request, since Node.js and the example server misread them silently.
  for (const said of describeMalformed(existing.misread)) line(io.stderr, `warning: ${envFile} ${said} (kept as is)`)

  const otherPath = redirectPathWarning(redirectUri)
  if (otherPath !== undefined) line(io.stderr, `warning: ${otherPath}`)

  const app: CreatedApp = await createApp({
    developerToken: token,
    name,
    redirectUri,
    baseUrl,
    ...(description === undefined ? {} : { description }),
    ...(io.dispatcher === undefined ? {} : { dispatcher: io.dispatcher })
  })

  let update: EnvFileUpdate
  try {
    update = await updateEnvFile(envFile, {
      AIHUBMIX_CLIENT_ID: app.clientId,
      AIHUBMIX_CLIENT_SECRET: app.clientSecret,
      AIHUBMIX_REDIRECT_URI: app.redirectUri,
      ...(writeBaseUrl ? { [BASE_URL_VARIABLE]: normalizeBaseUrl(baseUrl) } : {})
    }, { force, comment })
  } catch (err) {
    // The app exists, but its secret could not be stored, and it is never printed.
    const reason = err instanceof EnvFileError || err instanceof EnvFileConflictError ? err.message : 'the env file could not be written'
    line(io.stderr, `error: ${reason}`)
    line(io.stderr, `error: the app was created (client id ${app.clientId}) but its secret was not saved: delete that app in your AIHubMix account and run create-app again`)
    return EXIT_FAILURE
  }

  line(io.stdout, `created OAuth app "${shownName}" (id ${String(app.id)})`)
  line(io.stdout, `client id: ${app.clientId}`)
  line(io.stdout, `client secret: written to ${update.path} as AIHUBMIX_CLIENT_SECRET (not shown)`)
  if (app.redirectUri !== redirectUri) {
    line(io.stdout, `note: registered the redirect URI as ${app.redirectUri} (--redirect-uri ${redirectUri} in the form the app sends, which the provider must match exactly); AIHUBMIX_REDIRECT_URI is written so too`)
  }
  for (const text of describeUpdate(update)) line(io.stdout, text)
  if (app.registeredRedirectUri !== undefined && app.registeredRedirectUri !== app.redirectUri) {
    line(io.stderr, 'warning: the provider reports a different registered redirect URI than --redirect-uri; AIHUBMIX_REDIRECT_URI must equal the registered one exactly')
  }
  line(io.stdout, `next: set PUBLIC_URL, SESSION_SECRET and TOKEN_ENCRYPTION_KEY, then run ${PROGRAM} doctor (it reads them as the example server does: an app of your own may need more, see the README)`)
  return EXIT_OK
}

async function runDoctor (args: string[], io: CliIo): Promise<number> {
  const values = parse(args, {
    ...ENV_FILE_OPTIONS,
    help: { type: 'boolean', short: 'h' }
  })
  if (values.help === true) {
    io.stdout.write(DOCTOR_USAGE)
    return EXIT_OK
  }
  const envFile = envFileOption(values)
  const report = await doctor({
    env: io.env,
    cwd: io.cwd,
    ...(envFile === undefined ? {} : { envFile }),
    ...(io.dispatcher === undefined ? {} : { dispatcher: io.dispatcher })
  })
  for (const c of report.checks) line(io.stdout, formatCheck(c))
  return report.ok ? EXIT_OK : EXIT_FAILURE
}

const USAGES: Record<string, string> = { 'create-app': CREATE_APP_USAGE, doctor: DOCTOR_USAGE }

/**
 * The command line: `run(process.argv.slice(2), io)` resolves to the exit
 * status. Errors become one `error: ...` line on stderr (usage errors add the
 * usage); nothing printed ever holds the developer token or a client secret.
 */
export async function run (argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  let usage = MAIN_USAGE
  let proxy: Proxy | undefined
  try {
    switch (command) {
      case 'create-app':
      case 'doctor': {
        usage = command === 'doctor' ? DOCTOR_USAGE : CREATE_APP_USAGE
        proxy = io.dispatcher === undefined ? proxyFromEnv(io.env) : undefined
        const netIo = proxy === undefined ? io : { ...io, dispatcher: proxy.dispatcher }
        return command === 'doctor' ? await runDoctor(rest, netIo) : await runCreateApp(rest, netIo)
      }
      case 'help': {
        const topic = rest[0]
        if (topic !== undefined && USAGES[topic] === undefined) throw new CliUsageError('unknown command (help takes create-app or doctor)')
        io.stdout.write(topic === undefined ? MAIN_USAGE : USAGES[topic] as string)
        return EXIT_OK
      }
      case '-h':
      case '--help':
        io.stdout.write(MAIN_USAGE)
        return EXIT_OK
      case '-v':
      case '--version':
        line(io.stdout, VERSION)
        return EXIT_OK
      case undefined:
        throw new CliUsageError('a command is required')
      default:
        if (command.startsWith('-')) throw new CliUsageError(`unknown option ${/^-{1,2}[^=\s]*/.exec(command)?.[0] ?? ''}`)
        throw new CliUsageError(unknownCommand(command))
    }
  } catch (err) {
    if (err instanceof CliUsageError) {
      line(io.stderr, `error: ${err.message}`)
      io.stderr.write(`\n${usage}`)
      return EXIT_USAGE
    }
    if (err instanceof CliInvalidArgumentError) {
      line(io.stderr, `error: ${err.message}`)
      return EXIT_USAGE
    }
    if (err instanceof ProviderError || err instanceof EnvFileError || err instanceof EnvFileConflictError) {
      // Through a proxy, "cannot reach" may be the proxy's doing: said, by the variable's name (its value may hold a
      // password).
      const through = proxy !== undefined && err instanceof ProviderUnreachableError ? ` (through the proxy in ${proxy.variables})` : ''
      line(io.stderr, `error: ${err.message}${through}`)
      return EXIT_FAILURE
    }
    line(io.stderr, `error: unexpected failure (${err instanceof Error ? err.name : 'unknown'}); nothing was written`)
    return EXIT_FAILURE
  } finally {
    // The command's outcome stands: a proxy agent that fails to close changes nothing of it.
    await proxy?.dispatcher.close().catch(() => {})
  }
}

interface Proxy {
  dispatcher: Dispatcher
  /** The variables it came from, for messages: `HTTPS_PROXY`, `HTTP_PROXY` or both. */
  variables: string
}

/**
 * Behind a proxy, as npm and curl are told about it: `HTTPS_PROXY` / `HTTP_PROXY` (either case; `HTTP_PROXY` alone
 * serves https too) and `NO_PROXY`, read from the command's environment, through undici's EnvHttpProxyAgent. A value
 * that is no http(s) URL is refused by its variable's name; the value is never echoed (it may hold a password).
 */
function proxyFromEnv (env: Record<string, string | undefined>): Proxy | undefined {
  // The lower-case name first, as curl reads it; an empty one counts as unset.
  const read = (name: string): string | undefined =>
    [env[name.toLowerCase()], env[name]].find((value) => value !== undefined && value.trim() !== '')?.trim()
  const found: Array<[string, string]> = []
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY']) {
    const value = read(name)
    if (value === undefined) continue
    let url: URL | undefined
    try {
      url = new URL(value)
    } catch {}
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
      throw new CliInvalidArgumentError(name, 'is not a proxy URL like http://proxy.example.com:8080 (or unset it)')
    }
    found.push([name, value])
  }
  if (found.length === 0) return undefined
  const https = found.find(([name]) => name === 'HTTPS_PROXY')?.[1]
  const http = found.find(([name]) => name === 'HTTP_PROXY')?.[1]
  return {
    dispatcher: new EnvHttpProxyAgent({ httpProxy: http ?? '', httpsProxy: https ?? http ?? '', noProxy: read('NO_PROXY') ?? '' }),
    variables: found.map(([name]) => name).join(' / ')
  }
}

/**
 * The line for a command that is none: a name is echoed only when it looks like one (never a pasted token), and a
 * command written another way (`Doctor`, `createapp`, `create_app`) is named as it is spelt.
 */
function unknownCommand (command: string): string {
  const folded = command.toLowerCase().replace(/[-_]/g, '')
  const nameLike = /^[a-z][a-z-]{0,30}$/.test(command)
  const meant = ['create-app', 'doctor'].find((name) => name.replace('-', '') === folded) ??
    // A slip of a letter or two (`doctr`, `docter`), or the start of one (`create`).
    (nameLike ? closest(command, ['create-app', 'doctor']) : undefined)
  if (meant !== undefined) return `unknown command ${command} (did you mean ${meant}?)`
  return nameLike ? `unknown command ${command}` : 'unknown command'
}
