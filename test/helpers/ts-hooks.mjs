// Module hooks of the tests' TypeScript loader (registered by ts-loader.mjs; they run on Node's hooks thread).
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const root = fileURLToPath(new URL('../../', import.meta.url))
const cacheDir = `${root}node_modules/.cache/ts-loader/`

// The options are tsconfig.json's (and what it extends), as ts-node used them before this loader replaced it, so
// transpiled lines and columns, and the coverage mapped through them, stay as they were: ES modules (the root package
// and every workspace are "type": "module"), an inline source map with the source in it, no declarations. Types are
// erased and nothing is checked: `npm test` runs tsc on the sources and the tests before any of them.
const TSCONFIGS = [`${root}tsconfig.json`, `${root}src/tsconfig.base.json`]
const OVERRIDES = {
  // ES module output, as NodeNext gives a file of a "type": "module" package (which transpileModule cannot look up).
  module: 'ESNext',
  moduleResolution: 'Bundler',
  sourceMap: true,
  inlineSourceMap: false,
  inlineSources: true,
  declaration: false,
  declarationMap: false,
  composite: false,
  noEmit: false
}
// A cached output's key: this loader's format, the TypeScript that made it, the configuration's text, the file and
// its text.
const FORMAT = 2
const keyPrefix = JSON.stringify([FORMAT, require('typescript/package.json').version, OVERRIDES, ...TSCONFIGS.map((f) => readFileSync(f, 'utf8'))])

/** TypeScript, loaded on the first file not in the cache (most test processes never need it). */
let typescript
let compilerOptions

export async function resolve (specifier, context, nextResolve) {
  // `import './x.js'` in a .ts file names the .ts file (TypeScript's NodeNext convention) unless a .js file is there.
  if (context.parentURL?.endsWith('.ts') && specifier.endsWith('.js') && (specifier.startsWith('./') || specifier.startsWith('../'))) {
    const url = new URL(specifier, context.parentURL)
    if (!existsSync(url)) {
      const ts = new URL(`${url.href.slice(0, -3)}.ts`)
      if (existsSync(ts)) return { url: ts.href, format: 'module', shortCircuit: true }
    }
  }
  return nextResolve(specifier, context)
}

export async function load (url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) return nextLoad(url, context)
  const path = fileURLToPath(url)
  return { format: 'module', source: transpiled(path, readFileSync(path, 'utf8')), shortCircuit: true }
}

/** The file's JavaScript with its source map inline, from the cache when this text was transpiled before. */
function transpiled (path, text) {
  const key = createHash('sha256').update(keyPrefix).update('\0').update(path).update('\0').update(text).digest('hex')
  const file = `${cacheDir}${key.slice(0, 2)}/${key}.js`
  try {
    return readFileSync(file, 'utf8')
  } catch {}
  typescript ??= require('typescript')
  compilerOptions ??= {
    ...typescript.getParsedCommandLineOfConfigFile(TSCONFIGS[0], {}, { ...typescript.sys, onUnRecoverableConfigFileDiagnostic () {} }).options,
    ...typescript.convertCompilerOptionsFromJson(OVERRIDES, root).options
  }
  const result = typescript.transpileModule(text, { compilerOptions, fileName: path, reportDiagnostics: true })
  if (result.diagnostics?.length) {
    // A syntax error: Node would only say "Unexpected token"; TypeScript names the line. Not cached.
    const [first] = result.diagnostics
    const where = first.file === undefined ? path : `${path}:${first.file.getLineAndCharacterOfPosition(first.start ?? 0).line + 1}`
    throw new SyntaxError(`${where}: ${typescript.flattenDiagnosticMessageText(first.messageText, '\n')}`)
  }
  const map = JSON.parse(result.sourceMapText)
  map.file = path
  map.sources = [path]
  delete map.sourceRoot
  const code = result.outputText.replace(/\/\/# sourceMappingURL=\S+\s*$/, '') +
    `//# sourceMappingURL=data:application/json;charset=utf-8;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}`
  try {
    mkdirSync(`${cacheDir}${key.slice(0, 2)}`, { recursive: true })
    // Written whole under another name, then renamed: a test process running beside this one reads all of it or none.
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
    writeFileSync(tmp, code)
    renameSync(tmp, file)
  } catch {}
  return code
}
