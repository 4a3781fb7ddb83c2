/**
 * A library or app that emits declarations (`declaration: true`) must be able to name every type it infers from these
 * packages. A public value typed with a type that no entry point exports cannot be named there: TypeScript stops
 * with TS2883 ("The inferred type of 'x' cannot be named without a reference to 'Y' from '.../dist/errors.js'").
 * `UnsealFailedError.reason`, typed UnsealFailure, did this until token-store exported UnsealFailure.
 *
 * The consumer below infers (never annotates) the values a user's code is likeliest to pass on: the error fields, the
 * decorators, and what the public functions return. It compiles against the built declaration files
 * (`npx tsc -b`), NodeNext, strict, as a declaration-emitting project does.
 */
import t from 'tap'
import ts from 'typescript'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot, workspaces } from '../helpers/workspaces.js'

const CONSUMER = `
import Fastify, { type FastifyRequest } from 'fastify'
import { UnsealFailedError, createTokenStore } from '@fastify-aihubmix/token-store'
import { UpstreamError } from '@fastify-aihubmix/aihubmix-proxy'
import { loggerOptions } from '@fastify-aihubmix/oauth-routes'
import '@fastify-aihubmix/metrics'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { doctor, readConfig } from 'aihubmix-oauth'

export const unsealReason = (e: UnsealFailedError) => e.reason
export const unsealKeyId = (e: UnsealFailedError) => e.keyId
export const upstream = (e: InstanceType<typeof UpstreamError>) => e.code
export const logger = loggerOptions({ level: 'warn' })
export const store = () => createTokenStore({ encryptionKeys: 'p'.repeat(32) })
export const mock = () => startMockProvider()
export const report = () => doctor({ env: {} })
export const config = () => readConfig({})
export const decorators = (app: ReturnType<typeof Fastify>) => ({ tokenStore: app.tokenStore, aihubmix: app.aihubmix, metrics: app.aihubmixMetrics })
export const perRequest = (request: FastifyRequest) => ({ tokens: request.tokens, aihubmix: request.aihubmix })
`

/** The consumer's diagnostics, its declaration emit's included, one line each: (line): TS code: message. */
function emitDeclarations (source: string): string[] {
  // A file of the repository that does not exist on disk, so that it resolves packages from its node_modules.
  const file = join(repoRoot, 'test', 'types', '__declaration_consumer__.ts')
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    declaration: true,
    emitDeclarationOnly: true,
    // Other libraries' declaration files are theirs to check, and slow.
    skipLibCheck: true,
    types: ['node'],
    outDir: join(repoRoot, 'test', 'types', '__declaration_out__'),
    moduleDetection: ts.ModuleDetectionKind.Force
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getSourceFile = (name, language, ...rest) => name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest)
  host.fileExists = (name) => name === file || fileExists(name)
  host.readFile = (name) => name === file ? source : readFile(name)
  // Nothing is written: only the emit's diagnostics matter.
  host.writeFile = () => {}
  const program = ts.createProgram([file], options, host)
  const consumer = program.getSourceFile(file)
  const emitted = program.emit(consumer, () => {}, undefined, true)
  return [
    ...program.getOptionsDiagnostics(),
    ...program.getSyntacticDiagnostics(consumer),
    ...program.getSemanticDiagnostics(consumer),
    ...emitted.diagnostics
  ].map((d) => {
    const where = d.file === undefined || d.start === undefined ? '' : `(${d.file.getLineAndCharacterOfPosition(d.start).line + 1}): `
    return `${where}TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

t.test('a declaration-emitting consumer can name every type it infers from the packages', async (t) => {
  const unbuilt = workspaces().filter((w) => !existsSync(join(w.path, 'dist', 'index.d.ts')))
  t.same(unbuilt.map((w) => w.dir), [], 'every package is built (npx tsc -b)')
  if (unbuilt.length > 0) return
  t.same(emitDeclarations(CONSUMER), [], 'no errors (no TS2883 for a type that no entry point exports)')
})
