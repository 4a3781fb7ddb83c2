'use strict'
// The tests' TypeScript transpiler: ts-node's own transpile-only transpile (tsconfig.json's
// "ts-node" section names this file), with its output kept on disk.
//
// Every tap test file runs in a process of its own, and each one used to transpile the same
// src/ and test/helpers/ files again: about a second of CPU per test file, the largest part of
// its start-up. The output here comes from the same function with the same options as ts-node's
// default, so it is byte for byte the same, and so are the source maps and the coverage mapped
// through them (other transpilers, tried before, moved function and branch positions and
// changed the per-file coverage). An entry's key is everything the output depends on: the
// TypeScript and ts-node versions, the compiler options, the module kind, the file's path and
// its text; a changed file is a new key. Output with diagnostics is not kept, so syntax errors
// show on every run. The cache is node_modules/.cache/ts-transpile (gone with node_modules).
//
// ts-node takes a custom transpiler only in transpile-only mode, which is how tap runs it
// (tap --typecheck would be refused; the tests are type-checked by `tsc -p test/tsconfig.json`).
const { createHash } = require('node:crypto')
const { mkdirSync, readFileSync, renameSync, writeFileSync } = require('node:fs')
const { dirname, join } = require('node:path')

const CACHE_FORMAT = 1
const cacheDir = join(__dirname, '..', '..', 'node_modules', '.cache', 'ts-transpile')

/** ts-node's own module that loaded this one: its transpile function is internal, not exported. */
function tsNodeDist () {
  const index = Object.keys(require.cache).find((f) => /[\\/]ts-node-temp-fork-for-pr-2009[\\/]dist[\\/]index\.js$/.test(f))
  if (index === undefined) throw new Error('ts-transpile-cache: ts-node (@isaacs/ts-node-temp-fork-for-pr-2009) is not loaded')
  return dirname(index)
}

function create ({ service: { options, config, projectLocalResolveHelper }, nodeModuleEmitKind }) {
  const compilerOptions = config.options
  const ts = require(projectLocalResolveHelper(options.compiler || 'typescript', true))
  const dist = tsNodeDist()
  const { createTsTranspileModule } = require(join(dist, 'ts-transpile-module.js'))
  const tsNodeVersion = require(join(dist, '..', 'package.json')).version
  const keyPrefix = JSON.stringify([CACHE_FORMAT, ts.version, tsNodeVersion, nodeModuleEmitKind ?? null, compilerOptions])
  // What ts-node does without a custom transpiler (createTranspileOnlyGetOutputFunction).
  let transpileModule

  function transpile (input, { fileName }) {
    const key = createHash('sha256').update(keyPrefix).update('\0').update(fileName).update('\0').update(input).digest('hex')
    const file = join(cacheDir, key.slice(0, 2), `${key}.json`)
    try {
      return JSON.parse(readFileSync(file, 'utf8'))
    } catch {}
    transpileModule ??= createTsTranspileModule(ts, { compilerOptions, reportDiagnostics: true, transformers: options.transformers || undefined })
    const result = transpileModule(input, { fileName }, nodeModuleEmitKind === 'nodeesm' ? 'module' : 'commonjs')
    if (!result.diagnostics?.length) {
      try {
        mkdirSync(dirname(file), { recursive: true })
        // Written whole under another name, then renamed: a parallel test process reads all of it or nothing.
        const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
        writeFileSync(tmp, JSON.stringify({ outputText: result.outputText, sourceMapText: result.sourceMapText }))
        renameSync(tmp, file)
      } catch {}
    }
    return result
  }
  return { transpile }
}

module.exports = { create }
