import t from 'tap'
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { repoRoot, rootManifest, workspaces, type Manifest } from './helpers/workspaces.js'

// Releases are lockstep: scripts/release.mjs moves every package to one version, pins the dependencies between
// them to it, and turns the changelog's "Unreleased" into that release. It runs here on a copy of this
// repository's manifests, with one package more, added bare, as a new package lands.

const execFileAsync = promisify(execFile)
const script = join(repoRoot, 'scripts', 'release.mjs')
/**
 * What scripts/release.mjs writes as every package's prepublishOnly: the changelog checked (`ready`), dist/ emptied,
 * then built.
 */
const PREPUBLISH_ONLY = 'node ../../scripts/release.mjs ready && node -e "require(\'node:fs\').rmSync(\'dist\', { recursive: true, force: true })" && tsc -b'

async function release (root: string, ...args: string[]): Promise<{ code: number, output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [script, ...args, '--root', root])
    return { code: 0, output: stdout + stderr }
  } catch (err) {
    const { code, stdout, stderr } = err as { code?: number, stdout?: string, stderr?: string }
    return { code: code ?? 1, output: `${stdout ?? ''}${stderr ?? ''}` }
  }
}

function read (root: string, path: string): Manifest {
  return JSON.parse(readFileSync(join(root, path, 'package.json'), 'utf8')) as Manifest
}

t.test('a release moves every package, a new one included, to one version, with its changelog', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'aihubmix-release-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const top = rootManifest()
  const list = workspaces()
  for (const { dir } of list) {
    mkdirSync(join(root, dir), { recursive: true })
    copyFileSync(join(repoRoot, dir, 'package.json'), join(root, dir, 'package.json'))
    copyFileSync(join(repoRoot, 'LICENSE'), join(root, dir, 'LICENSE'))
  }
  copyFileSync(join(repoRoot, 'LICENSE'), join(root, 'LICENSE'))
  copyFileSync(join(repoRoot, 'CHANGELOG.md'), join(root, 'CHANGELOG.md'))
  // A package that has just landed: a bare manifest, a range on another package, no LICENSE.
  mkdirSync(join(root, 'src', 'newcomer'), { recursive: true })
  writeFileSync(join(root, 'src', 'newcomer', 'package.json'), JSON.stringify({
    name: '@fastify-aihubmix/newcomer',
    version: '0.0.1',
    type: 'module',
    dependencies: { '@fastify-aihubmix/token-store': '^0.0.1', fastify: '^5.0.0' }
  }))
  writeFileSync(join(root, 'package.json'), JSON.stringify({ ...top, workspaces: [...top.workspaces, 'src/newcomer'] }, null, 2) + '\n')

  const before = await release(root, 'check')
  t.equal(before.code, 1, 'check: not in step')
  t.match(before.output, 'src/newcomer/package.json, src/newcomer/LICENSE', 'names what is not')

  t.equal((await release(root, 'sync')).code, 0, 'sync')
  t.equal((await release(root, 'check')).code, 0, 'in step')
  const synced = read(root, 'src/newcomer')
  t.match(synced, {
    version: top.version,
    license: 'MIT',
    repository: { directory: 'src/newcomer' },
    homepage: /\/tree\/main\/src\/newcomer#readme$/,
    engines: top.engines,
    scripts: { prepublishOnly: PREPUBLISH_ONLY },
    publishConfig: { access: 'public' },
    dependencies: { '@fastify-aihubmix/token-store': top.version, fastify: '^5.0.0' }
  }, 'the new package has every shared field, at the version, its internal dependency pinned')
  t.same(readFileSync(join(root, 'src', 'newcomer', 'LICENSE'), 'utf8'), readFileSync(join(repoRoot, 'LICENSE'), 'utf8'), 'and the LICENSE')
  t.same(read(root, list[0]?.dir ?? ''), list[0]?.manifest, 'a package already in step is left as it is')

  const notYet = await release(root, 'ready')
  t.equal(notYet.code, 1, 'ready: not before the changelog releases the version')
  t.match(notYet.output, `not published: CHANGELOG.md has no "## ${top.version} - <date>" section: run \`npm run release:version -- ${top.version}\``)

  const released = await release(root, 'version', '0.2.0', '--date', '2026-12-01', '--skip-lockfile')
  t.equal(released.code, 0, released.output)
  const names = new Set([...list.map((w) => w.manifest.name), '@fastify-aihubmix/newcomer'])
  t.equal(read(root, '').version, '0.2.0', 'the root')
  for (const dir of [...list.map((w) => w.dir), 'src/newcomer']) {
    const m = read(root, dir)
    t.equal(m.version, '0.2.0', `${m.name} at 0.2.0`)
    for (const field of ['dependencies', 'peerDependencies']) {
      for (const [name, range] of Object.entries((m[field] ?? {}) as Record<string, string>)) {
        if (names.has(name)) t.equal(range, '0.2.0', `${m.name} → ${name}`)
      }
    }
  }
  for (const [name, range] of Object.entries((read(root, '').dependencies ?? {}) as Record<string, string>)) {
    if (names.has(name)) t.equal(range, '0.2.0', `the root → ${name}`)
  }
  const changelog = readFileSync(join(root, 'CHANGELOG.md'), 'utf8')
  const unreleased = /^## Unreleased\n([\s\S]*?)^## /m.exec(readFileSync(join(repoRoot, 'CHANGELOG.md'), 'utf8'))?.[1]?.trim() ?? ''
  t.ok(changelog.includes(`## Unreleased\n\n## 0.2.0 - 2026-12-01\n\n${unreleased}\n`), 'the Unreleased entries are now 0.2.0\'s, under an empty Unreleased')

  const ready = await release(root, 'ready')
  t.equal(ready.code, 0, `ready once released: ${ready.output}`)
  writeFileSync(join(root, 'CHANGELOG.md'), changelog.replace('## Unreleased\n', '## Unreleased\n\n- token-store: a change made after the release\n'))
  const unsaid = await release(root, 'ready')
  t.equal(unsaid.code, 1, 'not ready with a change under Unreleased')
  t.match(unsaid.output, 'CHANGELOG.md lists changes under "## Unreleased" that 0.2.0 would ship')
  writeFileSync(join(root, 'CHANGELOG.md'), changelog)

  const again = await release(root, 'version', '0.2.0', '--skip-lockfile')
  t.equal(again.code, 1)
  t.match(again.output, 'version 0.2.0 is not after the current 0.2.0')
  const empty = await release(root, 'version', '0.3.0', '--skip-lockfile')
  t.equal(empty.code, 1, 'nothing to release')
  t.match(empty.output, 'nothing under "## Unreleased"')
  t.equal(read(root, '').version, '0.2.0', 'and nothing was written')
})

t.test('a package\'s prepublishOnly empties dist/ before it builds: a module renamed since the last build is not published', async (t) => {
  // The script as the packages have it (node scripts/release.mjs check, run by test/packaging.test.ts, keeps them
  // all the same), run by npm in a package of one module, built once, then built again after the module's rename.
  const manifests = workspaces().map((w) => w.manifest as { name: string, scripts?: Record<string, string> })
  t.same(manifests.filter((m) => m.scripts?.prepublishOnly !== PREPUBLISH_ONLY).map((m) => m.name), [], 'every package has it')
  // A repository of one package, laid out as this one: the release script and the changelog at the root, the package
  // two directories below it.
  const root = await mkdtemp(join(tmpdir(), 'aihubmix-prepublish-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const pkg = join(root, 'src', 'fixture')
  mkdirSync(pkg, { recursive: true })
  mkdirSync(join(root, 'scripts'))
  copyFileSync(script, join(root, 'scripts', 'release.mjs'))
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'prepublish-root', version: '0.0.0', private: true, workspaces: ['src/fixture'] }))
  writeFileSync(join(root, 'CHANGELOG.md'), '# Changelog\n\n## Unreleased\n\n## 0.0.0 - 2026-12-01\n\n- fixture: the first release\n')
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({
    name: 'prepublish-fixture', version: '0.0.0', private: true, type: 'module', scripts: { prepublishOnly: PREPUBLISH_ONLY }
  }))
  // As the packages build: composite, source maps, the build info in dist/.
  writeFileSync(join(pkg, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', target: 'es2022', rootDir: '.', outDir: 'dist', composite: true, sourceMap: true, declarationMap: true, tsBuildInfoFile: 'dist/.tsbuildinfo', types: [] },
    include: ['*.ts']
  }))
  writeFileSync(join(pkg, 'old-name.ts'), 'export const answer = 42\n')
  // The repository's TypeScript compiler, as npm finds it when it runs a workspace's script.
  const env = { ...process.env, PATH: `${join(repoRoot, 'node_modules', '.bin')}${delimiter}${process.env.PATH ?? ''}` }
  await execFileAsync('npm', ['run', 'prepublishOnly'], { cwd: pkg, env })
  t.same(readdirSync(join(pkg, 'dist')).filter((f) => f.startsWith('old-name.')).sort(),
    ['old-name.d.ts', 'old-name.d.ts.map', 'old-name.js', 'old-name.js.map'], 'built')
  renameSync(join(pkg, 'old-name.ts'), join(pkg, 'new-name.ts'))
  await execFileAsync('npm', ['run', 'prepublishOnly'], { cwd: pkg, env })
  const dist = readdirSync(join(pkg, 'dist'))
  t.same(dist.filter((f) => f.startsWith('old-name.')), [], 'nothing of the module renamed away is left in dist/')
  t.ok(dist.includes('new-name.js'), 'the module under its new name is built')

  // A change listed under Unreleased but not released: npm publish stops before anything is built or sent.
  writeFileSync(join(root, 'CHANGELOG.md'), '# Changelog\n\n## Unreleased\n\n- fixture: not released yet\n\n## 0.0.0 - 2026-12-01\n\n- fixture: the first release\n')
  writeFileSync(join(pkg, 'another.ts'), 'export const other = 1\n')
  const refused = await execFileAsync('npm', ['run', 'prepublishOnly'], { cwd: pkg, env }).then(() => undefined, (err: { code?: number, stderr?: string }) => err)
  t.equal(refused?.code, 1, 'prepublishOnly fails')
  t.match(refused?.stderr, 'not published: CHANGELOG.md lists changes under "## Unreleased" that 0.0.0 would ship')
  t.notOk(readdirSync(join(pkg, 'dist')).includes('another.js'), 'nothing was built')
})

t.test('the first release is at the version the packages already have, while the changelog has not released it', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'aihubmix-first-release-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'src', 'one'), { recursive: true })
  copyFileSync(join(repoRoot, 'LICENSE'), join(root, 'LICENSE'))
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'first-root', version: '0.1.0', private: true, license: 'MIT', workspaces: ['src/one'] }))
  writeFileSync(join(root, 'src', 'one', 'package.json'), JSON.stringify({ name: '@fastify-aihubmix/one', version: '0.1.0', type: 'module' }))
  writeFileSync(join(root, 'CHANGELOG.md'), '# Changelog\n\n## Unreleased\n\n- one: the first package\n')
  const first = await release(root, 'version', '0.1.0', '--date', '2026-12-02', '--skip-lockfile')
  t.equal(first.code, 0, first.output)
  t.equal(readFileSync(join(root, 'CHANGELOG.md'), 'utf8'), '# Changelog\n\n## Unreleased\n\n## 0.1.0 - 2026-12-02\n\n- one: the first package\n')
  t.equal((await release(root, 'ready')).code, 0, 'ready to publish')
  writeFileSync(join(root, 'CHANGELOG.md'), '# Changelog\n\n## Unreleased\n\n- one: a fix\n\n## 0.1.0 - 2026-12-02\n\n- one: the first package\n')
  const twice = await release(root, 'version', '0.1.0', '--skip-lockfile')
  t.equal(twice.code, 1, 'a released version is not released again')
  t.match(twice.output, 'version 0.1.0 is not after the current 0.1.0')
})
