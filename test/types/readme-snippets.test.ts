/**
 * The first ```ts block of every package's README (its page on npm, what a user copies first) compiles as written:
 * nothing left undeclared, every import named. The settings are strict, NodeNext and `exactOptionalPropertyTypes`
 * (on in TypeScript 7's `tsc --init`). Each block is an ES module of its own, and it reads the packages through the
 * repository's node_modules links. The source export condition is not set, so every import resolves to the built
 * declaration files (`npx tsc -b`), as in a user's app. One program compiles them all.
 *
 * Other tests run some of these blocks: test/token-store/readme-usage.test.ts (token-store's, with the provider
 * calls stubbed) and test/packed-app.test.ts (the root README's).
 */
import t from 'tap'
import ts from 'typescript'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot, workspaces } from '../helpers/workspaces.js'

interface Snippet { dir: string, file: string, source: string }

/** The first ```ts block of each workspace's README.md, as a file of the repository that does not exist on disk. */
function snippets (): Snippet[] {
  return workspaces().map(({ dir, path }) => {
    const readme = readFileSync(join(path, 'README.md'), 'utf8')
    const source = /^```ts\n([\s\S]*?)^```/m.exec(readme)?.[1] ?? ''
    // .mts: an ES module (top-level await) whatever the nearest package.json says.
    return { dir, file: join(repoRoot, 'test', 'types', `__readme_${dir.replace(/\W/g, '_')}__.mts`), source }
  })
}

/** Each snippet's diagnostics, one line each: (line): TS code: message. */
function compile (all: Snippet[]): Map<string, string[]> {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    exactOptionalPropertyTypes: true,
    noEmit: true,
    // Only the snippets' diagnostics are read: other libraries' declaration files are theirs to check.
    skipLibCheck: true,
    types: ['node']
  }
  const byFile = new Map(all.map((s) => [s.file, s.source]))
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getSourceFile = (name, language, ...rest) => {
    const source = byFile.get(name)
    return source === undefined ? getSourceFile(name, language, ...rest) : ts.createSourceFile(name, source, language)
  }
  host.fileExists = (name) => byFile.has(name) || fileExists(name)
  host.readFile = (name) => byFile.get(name) ?? readFile(name)
  const program = ts.createProgram([...byFile.keys()], options, host)
  const out = new Map<string, string[]>()
  for (const { dir, file } of all) {
    const sourceFile = program.getSourceFile(file)
    const diagnostics = sourceFile === undefined ? [] : [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)]
    out.set(dir, diagnostics.map((d) => {
      const where = d.start === undefined ? '' : `(${(sourceFile?.getLineAndCharacterOfPosition(d.start).line ?? 0) + 1}): `
      return `${where}TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
    }))
  }
  return out
}

t.test('the first TypeScript block of every package README compiles as written (strict, NodeNext, exactOptionalPropertyTypes)', async (t) => {
  const unbuilt = workspaces().filter((w) => !existsSync(join(w.path, 'dist', 'index.d.ts')))
  t.same(unbuilt.map((w) => w.dir), [], 'every package is built (npx tsc -b)')
  if (unbuilt.length > 0) return
  const all = snippets()
  t.same(all.filter((s) => s.source.trim() === '').map((s) => s.dir), [], 'every package README has a ```ts block')
  for (const [dir, diagnostics] of compile(all)) t.same(diagnostics, [], `${dir}/README.md: no errors`)
})
