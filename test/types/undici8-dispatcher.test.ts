/**
 * aihubmix-proxy's `dispatcher` option takes a dispatcher of undici 7 (its own dependency) or of undici 8, as its
 * README says. undici 8 is a devDependency under the alias `undici8`, for its type declarations only: it needs
 * Node.js 22.19 or newer to load, so nothing here runs it (test/aihubmix-proxy/dispatcher.test.ts runs the plugin
 * with a dispatcher that speaks only the controller interface, the only one undici 8 has).
 *
 * A consumer's project compiles the built declaration files (`npx tsc -b`) with undici 8's Agent, MockAgent,
 * ProxyAgent and a composed Agent as the dispatcher: strict, NodeNext, `exactOptionalPropertyTypes`, without
 * skipLibCheck. The `@ts-expect-error` lines make the check able to fail: something that is no dispatcher is still
 * refused, and so is an undici 8 dispatcher given to aihubmix-oauth, whose requests go through undici 7's `request()`,
 * which hands a dispatcher a handler of the callbacks undici 8 dropped (and `opts.dispatcher`, which undici 8 refuses):
 * it would fail at run time, so TypeScript saying so is right.
 */
import t from 'tap'
import ts from 'typescript'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Agent as Agent8 } from 'undici8'
import type { Agent as Agent7 } from 'undici'
import type { AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import { repoRoot, workspaces } from '../helpers/workspaces.js'

// Checked by `npx tsc -p test/tsconfig.json` against the sources too (the @fastify-aihubmix/source condition).
// A type-only import, in a function never called: undici 8 is never loaded.
export function fromSource (agent: Agent8): AihubmixProxyOptions['dispatcher'] { return agent }
export function fromSource7 (agent: Agent7): AihubmixProxyOptions['dispatcher'] { return agent }

const CONSUMER = `
import Fastify from 'fastify'
import { Agent, MockAgent, ProxyAgent, interceptors } from 'undici8'
import { Agent as Agent7, MockAgent as MockAgent7 } from 'undici'
import aihubmixProxy, { type AihubmixProxyOptions } from '@fastify-aihubmix/aihubmix-proxy'
import { createApp } from 'aihubmix-oauth'

const base = { baseUrl: 'https://aihubmix.example', clientId: 'client', clientSecret: 'secret', redirectUri: 'https://app.example/auth/callback' }

export async function main (): Promise<void> {
  const app = Fastify()
  await app.register(aihubmixProxy, { ...base, dispatcher: new Agent() })
  await app.register(aihubmixProxy, { ...base, dispatcher: new MockAgent() })
  await app.register(aihubmixProxy, { ...base, dispatcher: new ProxyAgent('http://proxy.example:8080') })
  await app.register(aihubmixProxy, { ...base, dispatcher: new Agent().compose(interceptors.retry()) })
  // undici 7's, as before.
  await app.register(aihubmixProxy, { ...base, dispatcher: new Agent7() })
  await app.register(aihubmixProxy, { ...base, dispatcher: new MockAgent7() })
  await app.register(aihubmixProxy, { ...base, dispatcher: new Agent7().compose((dispatch) => dispatch) })
  // @ts-expect-error an object without dispatch() is no dispatcher
  await app.register(aihubmixProxy, { ...base, dispatcher: { close: async () => {} } })
}

export const options: AihubmixProxyOptions = { ...base, dispatcher: new Agent() }

// @ts-expect-error aihubmix-oauth's requests need an undici 7 dispatcher (see the top of this test file)
export const created = createApp({ developerToken: 't', name: 'n', redirectUri: 'https://app.example/cb', dispatcher: new Agent() })
`

/** The consumer's diagnostics and those of the repository's declaration files, one line each. */
function compile (source: string): string[] {
  // A file of the repository that does not exist on disk, so that it resolves packages from its node_modules.
  const file = join(repoRoot, 'test', 'types', '__undici8_consumer__.ts')
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    exactOptionalPropertyTypes: true,
    skipLibCheck: false,
    noEmit: true,
    types: ['node'],
    // As an ES module (top-level await and import in a .ts file), whatever the test directory's package.json says.
    moduleDetection: ts.ModuleDetectionKind.Force
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getSourceFile = (name, language, ...rest) => name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest)
  host.fileExists = (name) => name === file || fileExists(name)
  host.readFile = (name) => name === file ? source : readFile(name)
  const program = ts.createProgram([file], options, host)
  // Other libraries' declaration files (undici's, fastify's, @types/node's) are theirs to check, and slow.
  const ours = program.getSourceFiles().filter((f) => f.fileName === file || (f.fileName.startsWith(join(repoRoot, 'src')) && f.fileName.endsWith('.d.ts')))
  return [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...ours.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)])
  ].map((d) => {
    const where = d.file === undefined || d.start === undefined
      ? ''
      : `${d.file.fileName.replace(repoRoot, '')}(${d.file.getLineAndCharacterOfPosition(d.start).line + 1}): `
    return `${where}TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

t.test('an undici 8 dispatcher type-checks as aihubmix-proxy\'s dispatcher (built declarations, strict, no skipLibCheck)', async (t) => {
  const unbuilt = workspaces().filter((w) => !existsSync(join(w.path, 'dist', 'index.d.ts')))
  t.same(unbuilt.map((w) => w.dir), [], 'every package is built (npx tsc -b)')
  if (unbuilt.length > 0) return
  const undici8 = JSON.parse(ts.sys.readFile(join(repoRoot, 'node_modules', 'undici8', 'package.json')) ?? '{}') as { version?: string }
  t.match(undici8.version, /^8\./, 'the devDependency undici8 is undici 8')
  t.same(compile(CONSUMER), [], 'no errors: every dispatcher above is taken, and each @ts-expect-error line errs')
})
