import t from 'tap'
import ts from 'typescript'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from '../helpers/workspaces.js'

// token-store's README usage, as written: it compiles (strict, NodeNext, against the built declaration files) and,
// run with a variable it reads unset, stops naming that variable. It read `process.env.TOKEN_ENCRYPTION_KEY!.split(',')`,
// which stopped an app without the variable with `TypeError: Cannot read properties of undefined (reading 'split')`.

const execFileAsync = promisify(execFile)
const readme = readFileSync(join(repoRoot, 'src', 'token-store', 'README.md'), 'utf8')
const usage = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('\n## Usage\n')))?.[1] ?? ''

// What the snippet leaves to the app: the provider's token endpoint and an API call.
const STUBS_TS = `
declare function callTokenEndpoint (refreshToken: string): Promise<{ error?: string, access_token: string, refresh_token?: string, expires_in: number, scope: string }>
declare function callApi (accessToken: string): Promise<unknown>
`
const STUBS_JS = `
async function callTokenEndpoint () { return {} }
async function callApi () { return {} }
`

// (No README's code reads process.env.X!: test/readme-env.test.ts.)
t.test('the usage has a need() that stops the start by name', async (t) => {
  t.match(usage, /function need \(name: string\): string/)
})

t.test('the usage compiles as written (strict, NodeNext)', async (t) => {
  const file = join(repoRoot, 'test', 'token-store', '__readme_usage__.ts')
  const source = usage + STUBS_TS
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node']
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getSourceFile = (name, language, ...rest) => name === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest)
  host.fileExists = (name) => name === file || fileExists(name)
  host.readFile = (name) => name === file ? source : readFile(name)
  // As an ES module (top-level await), whatever the test directory's package.json says.
  const program = ts.createProgram([file], { ...options, moduleDetection: ts.ModuleDetectionKind.Force }, host)
  const sourceFile = program.getSourceFile(file)
  const diagnostics = sourceFile === undefined ? [] : [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)]
  t.same(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [])
})

t.test('run with a variable unset, it stops naming the variable, not with a TypeError', async (t) => {
  const js = ts.transpileModule(usage, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText + STUBS_JS
  const all = {
    REDIS_URL: 'redis://127.0.0.1:1', // never reached: the start stops before any command
    TOKEN_ENCRYPTION_KEY: 'hex:' + 'a1'.repeat(32),
    SESSION_SECRET: 's'.repeat(40)
  }
  for (const name of Object.keys(all) as Array<keyof typeof all>) {
    const env: Record<string, string | undefined> = { PATH: process.env.PATH, ...all }
    delete env[name]
    // Evaluated from the repository's root, so that its imports resolve to the built packages.
    const failure = await execFileAsync(process.execPath, ['--input-type=module', '-e', js], { cwd: repoRoot, env, timeout: 20_000 })
      .then(() => undefined, (err: { code?: number, stderr?: string }) => err)
    t.ok(failure !== undefined, `${name} unset: the start stops`)
    t.match(failure?.stderr, `Error: set ${name} in the environment`, `${name} unset: named`)
    t.notMatch(failure?.stderr, 'TypeError', `${name} unset: no TypeError`)
  }
})
