import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { repoRoot, rootManifest, workspaces } from './helpers/workspaces.js'

// Each workspace package is publishable alone, and is checked here as npm would publish it: packed (`npm pack`),
// unpacked, and read. Every package the root package.json lists is covered, a new one included.
//
// The packages are ES modules only: arethetypeswrong runs with its `esm-only` profile, which leaves out
// `require()` from TypeScript's node16/CommonJS and node10 resolution. (CommonJS apps load them with
// require(esm), on Node.js 20.19+ and 22.12+: test/require-cjs.test.ts and test/packed-app.test.ts.)

const execFileAsync = promisify(execFile)

// It packs every package and runs publint and arethetypeswrong on each tarball (over two minutes on a
// busy two-core machine), so the file's time limit is raised from the suite's 120 s for this file only.
t.setTimeout(300000)
const root = repoRoot

async function run (cmd: string, args: string[], cwd: string): Promise<{ code: number, output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } })
    return { code: 0, output: stdout + stderr }
  } catch (err) {
    const { code, stdout, stderr } = err as { code?: unknown, stdout?: string, stderr?: string }
    return { code: typeof code === 'number' ? code : 1, output: `${stdout ?? ''}${stderr ?? ''}` }
  }
}

function binOf (pkg: string, name: string): string {
  const manifest = JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  return join(root, 'node_modules', pkg, manifest.bin[name] as string)
}

/** Fields a published manifest may have; the first ones it must have. */
const REQUIRED_FIELDS = ['name', 'version', 'description', 'type', 'license', 'repository', 'bugs', 'homepage', 'keywords', 'engines', 'main', 'types', 'exports', 'files', 'scripts', 'publishConfig']
const OPTIONAL_FIELDS = ['bin', 'dependencies', 'peerDependencies', 'peerDependenciesMeta']

/** Every string an `exports` map points at. */
function exportTargets (value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (value === null || typeof value !== 'object') return []
  return Object.values(value).flatMap(exportTargets)
}

/** Every file under `dir`, relative, with `/`. */
function walk (dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((entry) => {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`
    return entry.isDirectory() ? walk(dir, rel) : [rel]
  })
}

/** The package a bare import specifier names (`@scope/name/sub` → `@scope/name`), or undefined for relative and built-in ones. */
function packageOf (specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined
  const parts = specifier.split('/')
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] as string
  return builtinModules.includes(name) ? undefined : name
}

/** The packages a built file imports: `from '…'`, `import '…'`, `import('…')`, `declare module '…'`. */
function importsOf (text: string, which: 'all' | 'static' = 'all'): string[] {
  const found = new Set<string>()
  for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*(\(?)\s*|\bdeclare module\s+)['"]([^'"]+)['"]/g)) {
    if (which === 'static' && match[1] === '(') continue // import('x'): loaded when that line runs, not with the module
    const name = packageOf(match[2] as string)
    if (name !== undefined) found.add(name)
  }
  return [...found]
}

/**
 * Optional peers a package may load on demand (a dynamic import on the one path that needs it), never with its
 * modules: token-store loads ioredis only to make a client from a `redis: '<url>'` option.
 */
const ON_DEMAND_PEERS: Record<string, string[]> = { 'dist/redis-url.js': ['ioredis'] }

/**
 * What each entry point of each package exports at run time, by name: the public surface. A name added to an
 * index.ts (or a subpath's module) fails here until it is added below, so every new export is a deliberate
 * change; a name dropped fails too (a breaking change). Internals (option resolution, stores, key layouts,
 * compiled schema checkers, ...) are imported by the tests from the source files, never through the package.
 */
const PUBLIC_EXPORTS: Record<string, Record<string, string[]>> = {
  '@fastify-aihubmix/token-store': {
    '.': [
      'default', 'tokenStore', 'createTokenStore',
      'TokenStoreOptionsSchema',
      'DEFAULT_BACKEND', 'DEFAULT_CLIENT_CACHE_ENTRIES', 'DEFAULT_CLIENT_CACHE_MAX_AGE_MS', 'DEFAULT_KEY_PREFIX',
      'DEFAULT_LOCK_LEASE_MS', 'DEFAULT_LOCK_WAIT_MS', 'DEFAULT_MAX_SESSIONS_PER_USER', 'DEFAULT_OPENED_CACHE_SIZE',
      'DEFAULT_REDIS_COMMAND_TIMEOUT_MS', 'DEFAULT_REFRESH_BACKOFF_MAX_MS', 'DEFAULT_REFRESH_BACKOFF_MS',
      'DEFAULT_REFRESH_SKEW_MS', 'DEFAULT_REFRESH_TOKEN_TTL_MS', 'DEFAULT_SESSION_TTL_MS',
      'UnauthenticatedError', 'ReauthRequiredError', 'RefreshRejectedError', 'StoreUnavailableError', 'RefreshBusyError',
      'RefreshBackoffError', 'TokenStoreOptionsError', 'TokenStoreRegisteredTwiceError', 'UnsealFailedError', 'TokenStoreArgumentError', 'NoSessionError', 'InsecureSessionCookieError',
      'errorInfo', 'errorLogFields', 'refreshWindowMs', 'isUserId', 'MAX_USER_AGENT_LENGTH',
      'REFRESH_CHANNEL', 'REFRESH_LOCK_WAIT_CHANNEL', 'STORE_ERROR_CHANNEL'
    ]
  },
  '@fastify-aihubmix/aihubmix-proxy': {
    '.': [
      'default', 'aihubmixProxy',
      'UpstreamError', 'UpstreamStatusError', 'UpstreamInvalidResponseError', 'UpstreamBodyTooLargeError',
      'UpstreamUnreachableError', 'UpstreamBusyError', 'UpstreamTimeoutError', 'UpstreamUnauthorizedError',
      'InsufficientScopeError', 'TokenEndpointError', 'CsrfHeaderRequiredError', 'ProxyOptionsError', 'ProxyRegisteredTwiceError', 'ProxyRegistrationError',
      'publicErrorOf', 'sendPublicError', 'UPSTREAM_CHANNEL'
    ]
  },
  '@fastify-aihubmix/oauth-routes': {
    '.': [
      'default', 'oauthRoutes',
      'OAuthRoutesOptionsError', 'OAuthRoutesRegisteredTwiceError', 'OAuthRoutesRegistrationError', 'RedirectUriMismatchError', 'SessionNotFoundError', 'CsrfHeaderRequiredError',
      'LOGIN_ERROR_CODES', 'MAX_PENDING_LOGINS', 'MAX_PENDING_RETURN_TO_LENGTH',
      'loggerOptions', 'logSerializers', 'redactUrl', 'redactUrlsIn', 'LOGIN_CHANNEL'
    ]
  },
  '@fastify-aihubmix/metrics': {
    '.': ['default', 'aihubmixMetrics', 'metricsRoute', 'METRIC_NAMES', 'MetricsOptionsError', 'MetricsRegistrationError', 'MetricsRegisteredTwiceError']
  },
  '@fastify-aihubmix/mock-provider': {
    '.': [
      'startMockProvider', 'MockProviderOptionsSchema',
      'DEFAULT_ACCESS_TOKEN_TTL_SECONDS', 'DEFAULT_CODE_TTL_SECONDS', 'DEFAULT_CONTROL_API_PREFIX', 'DEFAULT_ENVELOPE', 'DEFAULT_ENVELOPE_ERROR_CODES',
      'DEFAULT_HOST', 'DEFAULT_LOGGER', 'DEFAULT_PORT', 'DEFAULT_REFRESH_REUSE_REVOKES', 'DEFAULT_REFRESH_TOKEN_TTL_SECONDS', 'DEFAULT_REVOCATION_ENDPOINT',
      'DEFAULT_ROTATE_REFRESH_TOKENS', 'DEFAULT_TOKEN_PREFIX', 'DEFAULT_USER',
      'MockInvalidOptionError', 'MockInvalidArgumentError', 'OVERSIZE_BYTES', 'REDIRECT_TARGET'
    ],
    './standalone': ['main', 'DEFAULT_DEMO_REDIRECT_URI', 'DEFAULT_STANDALONE_HOST', 'DEFAULT_STANDALONE_PORT']
  },
  'aihubmix-oauth': {
    '.': [
      'run', 'createApp', 'doctor', 'formatCheck', 'updateEnvFile', 'parseEnvFile', 'readConfig', 'ConfigError',
      'unreadVariables', 'CONFIG_VARIABLES', 'isLoopbackHost',
      'CliUsageError', 'CliInvalidArgumentError', 'CliInvalidOptionError', 'ProviderError', 'ProviderUnreachableError',
      'ProviderTimeoutError', 'ProviderUnauthorizedError', 'ProviderRefusedError', 'ProviderFailedError',
      'ProviderRedirectError', 'ProviderBadAnswerError', 'EnvFileConflictError', 'EnvFileError'
    ]
  }
}

/** A plugin package's default export is its named plugin export (one plugin, two ways to import it). */
const PLUGIN_EXPORTS: Record<string, string> = {
  '@fastify-aihubmix/token-store': 'tokenStore',
  '@fastify-aihubmix/aihubmix-proxy': 'aihubmixProxy',
  '@fastify-aihubmix/oauth-routes': 'oauthRoutes',
  '@fastify-aihubmix/metrics': 'aihubmixMetrics'
}

t.test('every entry point of every package exports exactly its public names at run time (the built files)', async (t) => {
  const all = workspaces()
  t.same(all.map(({ manifest }) => manifest.name).filter((name) => PUBLIC_EXPORTS[name] === undefined), [], 'every package has a list')
  for (const { dir, path, manifest, built } of all) {
    if (!built) {
      t.fail(`${dir}/dist is not built: run \`npx tsc -b\``)
      continue
    }
    const expected = PUBLIC_EXPORTS[manifest.name] ?? {}
    const entries = Object.entries(manifest.exports as Record<string, unknown>).filter(([subpath]) => subpath !== './package.json')
    t.same(entries.map(([subpath]) => subpath).sort(), Object.keys(expected).sort(), `${manifest.name}: a list for each subpath of \`exports\``)
    for (const [subpath, target] of entries) {
      const file = (target as { default?: unknown }).default
      if (typeof file !== 'string') {
        t.fail(`${manifest.name} "${subpath}" has no \`default\` target`)
        continue
      }
      const mod = await import(pathToFileURL(join(path, file)).href) as Record<string, unknown>
      t.same(Object.keys(mod).sort(), [...expected[subpath] ?? []].sort(), `${manifest.name}${subpath === '.' ? '' : subpath.slice(1)}: its exports`)
    }
    const plugin = PLUGIN_EXPORTS[manifest.name]
    if (plugin !== undefined) {
      const mod = await import(pathToFileURL(join(path, 'dist', 'index.js')).href) as Record<string, unknown>
      t.equal(typeof mod.default, 'function', `${manifest.name}: the default export is the plugin`)
      t.equal(mod.default, mod[plugin], `${manifest.name}: and the same as \`${plugin}\``)
    }
  }
})

t.test('the packages are in step: one version, internal dependencies at it, the shared fields and LICENSE', async (t) => {
  const { code, output } = await run(process.execPath, [join(root, 'scripts', 'release.mjs'), 'check'], root)
  t.equal(code, 0, `scripts/release.mjs check: ${output.trim() || 'in step'}`)
  const top = rootManifest()
  for (const { manifest } of workspaces()) t.equal(manifest.version, top.version, `${manifest.name} is at ${top.version}`)
  t.ok(existsSync(join(root, 'CHANGELOG.md')), 'CHANGELOG.md')
  t.match(readFileSync(join(root, 'CHANGELOG.md'), 'utf8'), /^## Unreleased$/m, 'with a section for what is not released yet')
})

for (const { dir, path, manifest, built } of workspaces()) {
  t.test(`${manifest.name} (${dir}) packs into a tarball that publishes cleanly`, async (t) => {
    if (!built) {
      t.fail(`${dir}/dist is not built: run \`npx tsc -b\` (npm install and npm test do)`)
      return
    }
    const top = rootManifest()
    const keys = Object.keys(manifest)
    t.same(REQUIRED_FIELDS.filter((k) => !keys.includes(k)), [], 'every required field')
    t.same(keys.filter((k) => !REQUIRED_FIELDS.includes(k) && !OPTIONAL_FIELDS.includes(k)), [], 'no field outside the allow-list')
    t.equal(manifest.license, top.license)
    t.same(manifest.repository, { type: 'git', url: (top.repository as { url: string }).url, directory: dir }, 'repository, with its directory')
    t.same(manifest.bugs, top.bugs)
    t.match(manifest.homepage, new RegExp(`/tree/main/${dir}#readme$`))
    t.same(manifest.engines, top.engines)
    // test/release.test.ts runs it: it empties dist/, so that no module renamed away since the last build is published.
    t.match(manifest.scripts, { prepublishOnly: /^node \.\.\/\.\.\/scripts\/release\.mjs ready && node -e "require\('node:fs'\)\.rmSync\('dist', .*\)" && tsc -b$/ },
      'prepublishOnly checks the changelog releases this version, empties dist/, then builds')
    t.same(manifest.publishConfig, { access: 'public' })
    t.equal(readFileSync(join(path, 'LICENSE'), 'utf8'), readFileSync(join(root, 'LICENSE'), 'utf8'), 'its LICENSE is the project\'s')

    const work = await mkdtemp(join(tmpdir(), 'aihubmix-pack-'))
    t.teardown(() => rm(work, { recursive: true, force: true }))
    const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], path)
    t.equal(packed.code, 0, 'npm pack')
    const [info] = JSON.parse(packed.output.slice(packed.output.indexOf('['))) as Array<{ filename: string }>
    const tarball = join(work, info?.filename ?? '')
    const unpacked = join(work, 'unpacked')
    await mkdir(unpacked)
    t.equal((await run('tar', ['-xzf', tarball, '-C', unpacked], work)).code, 0, 'tar -xz')
    const pkg = join(unpacked, 'package')
    const files = walk(pkg).sort()

    // What is in it: the sources, the built files, README, LICENSE, the bin script. Nothing else.
    const bins = Object.values((manifest.bin ?? {}) as Record<string, string>).map((p) => posix.normalize(p))
    const isSource = (f: string): boolean => /^[^/]+\.ts$/.test(f) && !f.endsWith('.d.ts')
    const allowed = (f: string): boolean => ['package.json', 'README.md', 'LICENSE'].includes(f) || bins.includes(f) || isSource(f) ||
      /^dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)$/.test(f)
    t.same(files.filter((f) => !allowed(f)), [], 'nothing but sources, built files, README, LICENSE and the bin script')
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) t.ok(files.includes(f), f)
    // The README as npm shows it: a relative link must name a file of the tarball (one into a sibling package's folder
    // resolves on GitHub, not on npm).
    const readme = readFileSync(join(pkg, 'README.md'), 'utf8')
    const relative = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string)
      .filter((href) => !/^(?:[a-z][a-z+.-]*:|#)/i.test(href)).map((href) => href.replace(/#.*$/, ''))
    t.same(relative.filter((href) => !files.includes(posix.normalize(href))), [], 'every relative link of its README is in the tarball')
    const sources = readdirSync(path).filter((f) => isSource(f) && !f.endsWith('.test-d.ts')).sort()
    t.same(files.filter(isSource), sources, 'every TypeScript source of the package')
    const outputs = files.filter((f) => /^dist\/.+\.js$/.test(f))
    t.same(outputs.map((f) => f.replace(/^dist\//, '').replace(/\.js$/, '.ts')), sources, 'one built file per source: nothing stale')
    for (const js of outputs) {
      for (const companion of [`${js}.map`, js.replace(/\.js$/, '.d.ts'), js.replace(/\.js$/, '.d.ts.map')]) {
        if (!files.includes(companion)) t.fail(`${companion} is missing`)
      }
    }

    // Every path the manifest names is in it.
    const named = [manifest.main, manifest.types, ...exportTargets(manifest.exports), ...bins].filter((p): p is string => typeof p === 'string')
    t.same(named.map((p) => posix.normalize(p)).filter((p) => p !== 'package.json' && !files.includes(p)), [], `every path of main, types, exports and bin (${named.length})`)

    // npm publish takes the manifest as it is: it "auto-corrects" nothing, and drops no field (a `bin` path it
    // does not accept, `./x.js`, was removed, so the published package had no command). A dry run, offline.
    const publish = await run('npm', ['publish', '--dry-run', '--ignore-scripts', '--offline'], path)
    t.equal(publish.code, 0, 'npm publish --dry-run')
    t.notMatch(publish.output, /auto-corrected|invalid and removed|errors corrected/, 'npm publish corrects nothing in the manifest')

    // Source maps resolve to shipped sources (or embed them).
    const unresolved: string[] = []
    for (const map of files.filter((f) => f.endsWith('.map'))) {
      const parsed = JSON.parse(readFileSync(join(pkg, map), 'utf8')) as { sources: string[], sourcesContent?: Array<string | null> }
      parsed.sources.forEach((source, i) => {
        const target = posix.normalize(posix.join(posix.dirname(map), source))
        if (!files.includes(target) && typeof parsed.sourcesContent?.[i] !== 'string') unresolved.push(`${map} → ${source}`)
      })
    }
    t.same(unresolved, [], 'every source map resolves to a shipped source')

    // Every package the built files import is declared; one imported at run time is not an optional peer.
    const deps = Object.keys((manifest.dependencies ?? {}) as Record<string, string>)
    const peers = Object.keys((manifest.peerDependencies ?? {}) as Record<string, string>)
    const optional = Object.entries((manifest.peerDependenciesMeta ?? {}) as Record<string, { optional?: boolean }>)
      .filter(([, meta]) => meta.optional === true).map(([name]) => name)
    const undeclared = new Set<string>()
    const optionalAtRunTime = new Set<string>()
    const imported = new Set<string>()
    for (const f of files.filter((f) => /^dist\/.+\.(js|d\.ts)$/.test(f))) {
      const text = readFileSync(join(pkg, f), 'utf8')
      const statics = importsOf(text, 'static')
      for (const name of importsOf(text)) {
        imported.add(name)
        if (name === manifest.name) continue
        if (!deps.includes(name) && !peers.includes(name)) undeclared.add(`${name} (${f})`)
        const onDemand = !statics.includes(name) && (ON_DEMAND_PEERS[f] ?? []).includes(name)
        if (f.endsWith('.js') && optional.includes(name) && !onDemand) optionalAtRunTime.add(`${name} (${f})`)
      }
    }
    t.same([...undeclared], [], 'every imported package is a dependency or a peer')
    t.same([...optionalAtRunTime], [], 'no optional peer is imported at run time')
    // And the converse: a dependency no built file imports (one used in the sources through `import type` only) is
    // installed into every app for nothing.
    t.same(deps.filter((name) => !imported.has(name)), [], 'every dependency is imported by a built file')

    const lint = await run(process.execPath, [binOf('publint', 'publint'), 'run', '--strict', tarball], work)
    t.equal(lint.code, 0, 'publint --strict passes')
    if (lint.code !== 0) t.comment(lint.output)
    t.notMatch(lint.output, /Suggestion|Warning|Error/, 'without a suggestion')

    const types = await run(process.execPath, [binOf('@arethetypeswrong/cli', 'attw'), tarball, '--profile', 'esm-only', '--format', 'ascii', '--no-emoji', '--no-color'], work)
    t.equal(types.code, 0, 'arethetypeswrong (esm-only profile) passes')
    if (types.code !== 0) t.comment(types.output)
  })
}
