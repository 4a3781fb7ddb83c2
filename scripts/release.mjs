#!/usr/bin/env node
// Every workspace package is published alone, and all of them are released together, at one version (lockstep).
// This script keeps what that takes in one place, for every workspace the root package.json lists (a new package
// is covered as soon as it is listed there):
//
//   node scripts/release.mjs sync               writes into every workspace: the root's LICENSE, version, license and
//                                              engines; repository (with its directory), bugs, homepage; public
//                                              publishConfig; a prepublishOnly that empties dist/ and builds
//                                              (PREPUBLISH_ONLY); the sources and built
//                                              files in `files`; and every dependency on another workspace (in the
//                                              root's manifest too) at exactly that version
//   node scripts/release.mjs check              the same, written nowhere: lists what sync would change, exit 1 if any
//                                              (`npm test` runs it, through test/packaging.test.ts)
//   node scripts/release.mjs version <x.y.z>    sync at a new version (or at the current one, for the first release,
//                                              which CHANGELOG.md has no section for yet); CHANGELOG.md's "Unreleased"
//                                              section becomes "<x.y.z> - <date>" under a new, empty "Unreleased";
//                                              package-lock.json follows (npm install --package-lock-only)
//   node scripts/release.mjs ready              exit 1, saying why, unless CHANGELOG.md releases the current version
//                                              and holds nothing under "Unreleased" (every prepublishOnly runs it)
//
// Then: commit, tag v<x.y.z>, and `npm publish --workspaces` (each package's prepublishOnly empties its dist/ and
// builds it first).
// Options: --root <dir> (default: this repository), --date <YYYY-MM-DD> (default: today, UTC), --skip-lockfile.

import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project's home. There is no public remote yet: this is a placeholder, the same in every manifest. */
export const REPOSITORY = 'https://github.com/fastify-aihubmix/fastify-aihubmix'

/** Where a missing key goes: after the last of these, before it, that the manifest has. */
const KEY_ORDER = [
  'name', 'version', 'description', 'type', 'license', 'author', 'repository', 'bugs', 'homepage', 'keywords',
  'engines', 'bin', 'main', 'types', 'exports', 'files', 'scripts', 'publishConfig',
  'dependencies', 'peerDependencies', 'peerDependenciesMeta', 'devDependencies'
]

/**
 * What `files` must hold: the TypeScript sources (the export condition `@fastify-aihubmix/source` and the source
 * maps point at them) and the built files. npm adds package.json, README and LICENSE by itself.
 */
const FILES = ['*.ts', 'dist/**/*.js', 'dist/**/*.d.ts', 'dist/**/*.map']

/**
 * Every package's prepublishOnly: first `ready` (below: a package whose version CHANGELOG.md does not release, or with
 * changes still under "Unreleased", is not published), then dist/ emptied, then built. The packages are workspaces two
 * directories below the root (`src/<name>`), where npm runs the script. `tsc -b` alone never deletes what a source file that was
 * renamed or removed built before (dist/ is not in git, and a working copy keeps it), so a publish from a working copy
 * shipped those modules, with source maps naming a .ts that is not in the tarball. A node one-liner rather than `rm`
 * or a script of the repository's: it runs in the package's own directory wherever npm runs scripts (sh, or cmd on
 * Windows), with nothing but Node.js and the TypeScript compiler that `tsc -b` already needs.
 */
export const PREPUBLISH_ONLY = 'node ../../scripts/release.mjs ready && node -e "require(\'node:fs\').rmSync(\'dist\', { recursive: true, force: true })" && tsc -b'

const DEPENDENCY_FIELDS = ['dependencies', 'peerDependencies', 'devDependencies', 'optionalDependencies']

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$/

function readJson (path) {
  return JSON.parse(readFileSync(path, 'utf8'))
}

function formatJson (value) {
  return JSON.stringify(value, null, 2) + '\n'
}

/** `manifest` with `key` set to `value`: in place when present, else after the keys that come before it. */
function withKey (manifest, key, value) {
  if (key in manifest) return { ...manifest, [key]: value }
  const rank = KEY_ORDER.indexOf(key)
  const entries = Object.entries(manifest)
  let at = 0
  entries.forEach(([k], i) => {
    const r = KEY_ORDER.indexOf(k)
    if (r !== -1 && r < rank) at = i + 1
  })
  entries.splice(at, 0, [key, value])
  return Object.fromEntries(entries)
}

/** Every dependency on a workspace package pinned to `version`. */
function pinInternal (manifest, names, version) {
  let out = manifest
  for (const field of DEPENDENCY_FIELDS) {
    const deps = out[field]
    if (deps === undefined) continue
    const pinned = Object.fromEntries(Object.entries(deps).map(([name, range]) => [name, names.has(name) ? version : range]))
    out = { ...out, [field]: pinned }
  }
  return out
}

/** The workspaces of the root package.json: directory (relative, with `/`), absolute path, manifest. */
export function workspaces (root) {
  const rootManifest = readJson(join(root, 'package.json'))
  return (rootManifest.workspaces ?? []).map((dir) => {
    const path = join(root, dir)
    return { dir: dir.replace(/\\/g, '/').replace(/\/$/, ''), path, manifest: readJson(join(path, 'package.json')) }
  })
}

/** What `sync` writes, as path → content, for `version` (default: the root's). */
export function plan (root, version) {
  const rootManifest = readJson(join(root, 'package.json'))
  const target = version ?? rootManifest.version
  const list = workspaces(root)
  const names = new Set(list.map((w) => w.manifest.name))
  const license = readFileSync(join(root, 'LICENSE'), 'utf8')
  const files = new Map()

  let top = withKey(rootManifest, 'version', target)
  top = withKey(top, 'repository', { type: 'git', url: `git+${REPOSITORY}.git` })
  top = withKey(top, 'bugs', { url: `${REPOSITORY}/issues` })
  top = withKey(top, 'homepage', `${REPOSITORY}#readme`)
  files.set(join(root, 'package.json'), formatJson(pinInternal(top, names, target)))

  for (const { dir, path, manifest } of list) {
    let m = withKey(manifest, 'version', target)
    m = withKey(m, 'license', rootManifest.license)
    m = withKey(m, 'repository', { type: 'git', url: `git+${REPOSITORY}.git`, directory: dir })
    m = withKey(m, 'bugs', { url: `${REPOSITORY}/issues` })
    m = withKey(m, 'homepage', `${REPOSITORY}/tree/main/${dir}#readme`)
    m = withKey(m, 'engines', rootManifest.engines)
    m = withKey(m, 'files', [...(m.files ?? []), ...FILES.filter((f) => !(m.files ?? []).includes(f))])
    m = withKey(m, 'scripts', { ...(m.scripts ?? {}), prepublishOnly: PREPUBLISH_ONLY })
    m = withKey(m, 'publishConfig', { ...(m.publishConfig ?? {}), access: 'public' })
    files.set(join(path, 'package.json'), formatJson(pinInternal(m, names, target)))
    files.set(join(path, 'LICENSE'), license)
  }
  return files
}

/** The files whose content differs from `plan`, as paths relative to `root`. */
export function differences (root, version) {
  const out = []
  for (const [path, content] of plan(root, version)) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== content) out.push(path.slice(root.length + 1))
  }
  return out
}

function write (root, version) {
  for (const [path, content] of plan(root, version)) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== content) writeFileSync(path, content)
  }
}

/** CHANGELOG.md with its "Unreleased" entries moved under `version`; throws when there are none. */
export function releaseChangelog (text, version, date) {
  const section = unreleased(text)
  if (section === undefined) throw new Error('CHANGELOG.md has no "## Unreleased" section: add one, with what changed')
  if (section.entries === '') throw new Error('CHANGELOG.md: nothing under "## Unreleased": say what changed first')
  return `${text.slice(0, section.at)}## Unreleased\n\n## ${version} - ${date}\n\n${section.entries}\n\n${text.slice(section.end)}`.replace(/\n{3,}/g, '\n\n').replace(/\n*$/, '\n')
}

/**
 * The "## Unreleased" section: where its heading starts, where the section ends (the next "## " heading, or the end),
 * and its entries, trimmed ('' when none); undefined when there is no such section.
 */
function unreleased (text) {
  const heading = /^## Unreleased[ \t]*$/m.exec(text)
  if (heading === null) return undefined
  const start = heading.index + heading[0].length
  const next = /^## /m.exec(text.slice(start))
  const end = next === null ? text.length : start + next.index
  return { at: heading.index, end, entries: text.slice(start, end).trim() }
}

/** Whether CHANGELOG.md has a "## <version> - <date>" section: that version was released. */
function released (text, version) {
  return new RegExp(`^## ${version.replace(/[.+-]/g, '\\$&')} - \\d{4}-\\d{2}-\\d{2}[ \\t]*$`, 'm').test(text)
}

/**
 * Why the packages at `version` may not be published, or undefined when they may: CHANGELOG.md must release that
 * version and hold nothing under "Unreleased" (changes that this version would ship without saying so).
 */
export function notReady (text, version) {
  if (!released(text, version)) {
    return `CHANGELOG.md has no "## ${version} - <date>" section: run \`npm run release:version -- ${version}\` (or a later version) first`
  }
  if (unreleased(text)?.entries) {
    return `CHANGELOG.md lists changes under "## Unreleased" that ${version} would ship: release them first (\`npm run release:version -- <next version>\`)`
  }
  return undefined
}

function compareVersions (a, b) {
  const [x, y] = [a, b].map((v) => v.split('-')[0].split('.').map(Number))
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i]
  return (a.includes('-') ? 0 : 1) - (b.includes('-') ? 0 : 1)
}

function main (argv) {
  const args = [...argv]
  const option = (name) => {
    const i = args.indexOf(name)
    if (i === -1) return undefined
    const [, value] = args.splice(i, 2)
    if (value === undefined) throw new Error(`${name} needs a value`)
    return value
  }
  const flag = (name) => {
    const i = args.indexOf(name)
    if (i !== -1) args.splice(i, 1)
    return i !== -1
  }
  const root = resolve(option('--root') ?? fileURLToPath(new URL('..', import.meta.url)))
  const date = option('--date') ?? new Date().toISOString().slice(0, 10)
  const skipLockfile = flag('--skip-lockfile')
  const [command, version] = args

  if (command === 'check') {
    const diff = differences(root)
    if (diff.length === 0) return
    process.stderr.write(`not in step: ${diff.join(', ')}; run \`npm run packages:sync\` (node scripts/release.mjs sync)\n`)
    process.exitCode = 1
  } else if (command === 'ready') {
    // Run by every package's prepublishOnly (npm publish --workspaces), before anything is built.
    const current = readJson(join(root, 'package.json')).version
    const why = notReady(readFileSync(join(root, 'CHANGELOG.md'), 'utf8'), current)
    if (why === undefined) return
    process.stderr.write(`not published: ${why}\n`)
    process.exitCode = 1
  } else if (command === 'sync') {
    write(root)
  } else if (command === 'version') {
    if (version === undefined || !SEMVER.test(version)) throw new Error('usage: node scripts/release.mjs version <x.y.z> (a semantic version)')
    const current = readJson(join(root, 'package.json')).version
    const changelogPath = join(root, 'CHANGELOG.md')
    const text = readFileSync(changelogPath, 'utf8')
    // The current version itself while CHANGELOG.md has never released it (the first release, at the version the
    // packages were created with); else only a later one.
    const first = version === current && !released(text, current)
    if (!first && compareVersions(version, current) <= 0) throw new Error(`version ${version} is not after the current ${current}`)
    const changelog = releaseChangelog(text, version, date)
    write(root, version)
    writeFileSync(changelogPath, changelog)
    if (!skipLockfile) {
      execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' })
    }
    process.stdout.write(`${version}: every package, CHANGELOG.md and package-lock.json. Next: commit, tag v${version}, npm publish --workspaces\n`)
  } else {
    throw new Error('usage: node scripts/release.mjs sync | check | ready | version <x.y.z> [--root <dir>] [--date <YYYY-MM-DD>] [--skip-lockfile]')
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`release: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  }
}
