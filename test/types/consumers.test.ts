/**
 * The built declaration files (`exports[subpath].types`, what npm publishes), compiled the way other TypeScript
 * projects compile them: NodeNext, and `moduleResolution: "bundler"` with `module` esnext, preserve and commonjs
 * (TypeScript 7's `module: commonjs` resolves like a bundler), each strict, with `exactOptionalPropertyTypes` (on
 * in TypeScript 7's `tsc --init`) and WITHOUT skipLibCheck. A consumer imports every package and checks that an
 * error class of each is typed (its `code` is a string: with a broken declaration file it is `any`, and the
 * `@ts-expect-error` lines stop erroring), and gives optional options an explicit `undefined`, as `env.X` does (see
 * test/types/undefined-options.test.ts). test/packed-app.test.ts compiles the README's usage from the packed
 * tarballs; this one needs only `npx tsc -b`, and reads the packages through the repository's node_modules links
 * (the source export condition is not set, so every import resolves to dist/*.d.ts).
 */
import t from 'tap'
import ts from 'typescript'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot, workspaces } from '../helpers/workspaces.js'

const CONSUMER = `
import Fastify from 'fastify'
import tokenStore, { UnauthenticatedError, type TokenStoreOptions } from '@fastify-aihubmix/token-store'
import aihubmixProxy, { UpstreamError, UpstreamTimeoutError, type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes, { OAuthRoutesOptionsError, type OAuthRoutesOptions } from '@fastify-aihubmix/oauth-routes'
import aihubmixMetrics, { MetricsOptionsError, type MetricsOptions } from '@fastify-aihubmix/metrics'
import { startMockProvider, MockInvalidOptionError, type MockProviderOptions } from '@fastify-aihubmix/mock-provider'
import { CliUsageError, type CreateAppOptions, type DoctorOptions } from 'aihubmix-oauth'

// Each package's error classes are typed: their code is a string, not any.
// @ts-expect-error the code is a string
export const a: number = new UnauthenticatedError().code
// @ts-expect-error the code is a string
export const b: number = new UpstreamError().code
// @ts-expect-error the code is a string
export const c: number = new OAuthRoutesOptionsError('x').code
// @ts-expect-error the code is a string
export const d: number = new MetricsOptionsError('x', 'y').code
// @ts-expect-error the code is a string
export const e: number = new MockInvalidOptionError('x', 'y').code
// @ts-expect-error the code is a string
export const f: number = new CliUsageError('x').code
export const status: 401 = new UnauthenticatedError().statusCode
// Their arguments are typed too: the ones their message takes, then { cause } (before, any three anything).
export const withCause = new UnauthenticatedError({ cause: new Error('x') })
const options: ErrorOptions = { cause: new Error('x') }
export const withErrorOptions = new UnauthenticatedError(options)
export const withArgumentsAndErrorOptions = new UpstreamTimeoutError(5000, options)
// @ts-expect-error an error whose message takes nothing takes no message arguments
export const wrongArguments = new UnauthenticatedError(42, 'anything', [1, 2])
// @ts-expect-error nor anything but { cause }
export const notACause = new UpstreamError('a message')

// An explicit undefined for an optional option, as an unset environment variable gives it.
const env: Record<string, string | undefined> = {}
const store: TokenStoreOptions = { encryptionKeys: ['hex:' + 'a1'.repeat(32)], keyPrefix: env.KEY_PREFIX }
const proxy: AihubmixProxyOptions = {
  baseUrl: 'https://aihubmix.example',
  clientId: 'client',
  clientSecret: 'secret',
  redirectUri: 'https://app.example/auth/callback',
  scope: env.AIHUBMIX_SCOPE?.split(' '),
  revocationUrl: env.REVOCATION_URL,
  routes: { userInfo: env.USER_INFO_ROUTE }
}
const routes: OAuthRoutesOptions = { publicUrl: 'https://app.example', cookieName: env.COOKIE, routes: { login: env.LOGIN_ROUTE } }
const metrics: MetricsOptions = { lockWaitBuckets: undefined }
const mockOptions: MockProviderOptions = { port: undefined, controlApi: { prefix: env.MOCK_PREFIX }, user: { email: env.EMAIL } }
export const createOptions: CreateAppOptions = { developerToken: 't', name: 'n', redirectUri: 'https://app.example/cb', description: env.DESCRIPTION, dispatcher: undefined }
export const doctorOptions: DoctorOptions = { env, envFile: env.ENV_FILE, dispatcher: undefined }
// @ts-expect-error an option that is not optional still refuses undefined
export const noSecret: AihubmixProxyOptions = { ...proxy, clientSecret: undefined }

export async function main (): Promise<void> {
  const app = Fastify()
  await app.register(tokenStore, store)
  await app.register(aihubmixProxy, proxy)
  await app.register(oauthRoutes, routes)
  await app.register(aihubmixMetrics, metrics)
  const mock = await startMockProvider(mockOptions)
  await mock.close()
}
`

/** How the consumer's project is set up: everything but module and moduleResolution is the same for all. */
const CONFIGS: Array<{ name: string, options: ts.CompilerOptions }> = [
  { name: 'module nodenext', options: { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext } },
  { name: 'moduleResolution bundler, module esnext', options: { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler } },
  { name: 'moduleResolution bundler, module preserve', options: { module: ts.ModuleKind.Preserve, moduleResolution: ts.ModuleResolutionKind.Bundler } },
  // As TypeScript 7's `module: commonjs` resolves (bundler).
  { name: 'moduleResolution bundler, module commonjs', options: { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Bundler } },
  // As TypeScript 5's `tsc --init` sets a CommonJS project up (`module: commonjs` resolves as node10 there; TypeScript 6
  // deprecates that resolution, hence ignoreDeprecations).
  { name: 'moduleResolution node10, module commonjs', options: { module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, esModuleInterop: true, ignoreDeprecations: '6.0' } }
]

/**
 * Declaration files parsed once for every configuration (they are parsed the same: same target, and a file's
 * module format is part of the key), as TypeScript's language service shares them between projects.
 */
const parsed = new Map<string, ts.SourceFile>()

/** The consumer's diagnostics (theirs and the declaration files'), one line each: file(line,col): TS code: message. */
function compile (options: ts.CompilerOptions, source: string): string[] {
  // A file of the repository that does not exist on disk, so it resolves packages from the repository's node_modules.
  const file = join(repoRoot, 'test', 'types', '__consumer__.ts')
  const all: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    strict: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: false,
    noEmit: true,
    types: ['node'],
    ...options
  }
  const host = ts.createCompilerHost(all)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getSourceFile = (name, language, ...rest) => {
    if (name === file) return ts.createSourceFile(name, source, language)
    const key = `${name} ${JSON.stringify(language)}`
    const cached = parsed.get(key)
    if (cached !== undefined) return cached
    const sourceFile = getSourceFile(name, language, ...rest)
    if (sourceFile !== undefined) parsed.set(key, sourceFile)
    return sourceFile
  }
  host.fileExists = (name) => name === file || fileExists(name)
  host.readFile = (name) => name === file ? source : readFile(name)
  const program = ts.createProgram([file], all, host)
  // The consumer and every declaration file of this repository's packages are checked; other libraries' (fastify,
  // @types/node...) are left out, as only they would make it slow: their errors are not ours to find.
  const ours = program.getSourceFiles().filter((f) => f.fileName === file || (f.fileName.startsWith(join(repoRoot, 'src')) && f.fileName.endsWith('.d.ts')))
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...ours.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)])
  ]
  return diagnostics.map((d) => {
    const where = d.file === undefined || d.start === undefined
      ? ''
      : `${d.file.fileName.replace(repoRoot, '')}(${d.file.getLineAndCharacterOfPosition(d.start).line + 1}): `
    return `${where}TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

t.test('the built declaration files compile in a consumer\'s project, strict, without skipLibCheck', async (t) => {
  const unbuilt = workspaces().filter((w) => !existsSync(join(w.path, 'dist', 'index.d.ts')))
  t.same(unbuilt.map((w) => w.dir), [], 'every package is built (npx tsc -b)')
  if (unbuilt.length > 0) return
  for (const { name, options } of CONFIGS) {
    t.same(compile(options, CONSUMER), [], `${name}: no errors (in the consumer or in a declaration file)`)
  }
})
