/**
 * The type-only half of each package's public surface: the interfaces and type aliases that each entry point's
 * declaration file (`exports[subpath].types`, the built `dist/*.d.ts`) exports, by name. test/packaging.test.ts
 * holds the run-time names (what `import()` sees); a type has no run-time trace, so it is read here with the
 * TypeScript compiler. A type added to an index.ts fails here until it is listed below, so every new public type
 * is a deliberate change; a type dropped fails too (a breaking change for anyone who imported it).
 */
import t from 'tap'
import ts from 'typescript'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { workspaces } from '../helpers/workspaces.js'

const TYPE_EXPORTS: Record<string, Record<string, string[]>> = {
  '@fastify-aihubmix/token-store': {
    '.': [
      'CreateTokenStoreExtras', 'EncryptionKeyInput', 'GetFreshOptions', 'LastSeenReader', 'RedisClient',
      'RedisClientCacheOptions', 'RefreshEvent', 'RefreshFailedEvent', 'RefreshLockWaitMessage', 'RefreshOutcome',
      'RefreshTraceContext', 'Refresher', 'RequestTokens', 'RevokedEvent', 'SessionCheck', 'SessionCookieOptions',
      'SessionData', 'SessionOwner', 'SessionStoreLike', 'SessionVerdict', 'StandaloneTokenStore', 'StoreErrorMessage',
      'TokenSet', 'TokenStore', 'TokenStoreHooks', 'TokenStoreOptions', 'UnsealFailure', 'UserSession', 'UserSessionInfo'
    ]
  },
  '@fastify-aihubmix/aihubmix-proxy': {
    '.': [
      'AihubmixClient', 'AihubmixProxyOptions', 'AuthorizeUrlParams', 'CodeExchangeParams', 'PublicError',
      'RequestAihubmix', 'Topup', 'UpstreamEndpoint', 'UpstreamSignal', 'UpstreamStatus', 'UpstreamTraceContext', 'UserInfo'
    ]
  },
  '@fastify-aihubmix/oauth-routes': {
    '.': [
      'LoggedRequest', 'LoginErrorCode', 'LoginEvent', 'LoginMessage', 'LoginOutcome', 'LogoutEvent',
      'OAuthRoutesOptions', 'RedactingLoggerOptions'
    ]
  },
  '@fastify-aihubmix/metrics': {
    '.': ['AihubmixMetrics', 'MetricsOptions', 'MetricsRouteOptions']
  },
  '@fastify-aihubmix/mock-provider': {
    '.': ['MockApp', 'MockCounts', 'MockEndpoint', 'MockFault', 'MockIssued', 'MockProvider', 'MockProviderOptions', 'MockUser', 'NewMockApp'],
    './standalone': ['MainOptions']
  },
  'aihubmix-oauth': {
    '.': [
      'CheckStatus', 'CliIo', 'CreateAppOptions', 'CreatedApp', 'DoctorCheck', 'DoctorOptions', 'DoctorReport',
      'EnvFileUpdate', 'ExampleConfig', 'ProviderConfig', 'UpdateEnvFileOptions'
    ]
  }
}

interface Entry { name: string, subpath: string, file: string }

/** Every entry point of every workspace (test/helpers/workspaces.ts), with its declaration file. */
function entries (): Entry[] {
  const out: Entry[] = []
  for (const { path, manifest } of workspaces()) {
    for (const [subpath, target] of Object.entries(manifest.exports as Record<string, { types?: string } | string>)) {
      if (subpath === './package.json') continue
      const types = typeof target === 'object' ? target.types : undefined
      out.push({ name: manifest.name, subpath, file: types === undefined ? '' : join(path, types) })
    }
  }
  return out
}

t.test('every entry point declares exactly its public types (the built declaration files)', async (t) => {
  const all = entries()
  t.same([...new Set(all.map((e) => e.name))].filter((name) => TYPE_EXPORTS[name] === undefined), [], 'every package has a list')
  const missing = all.filter((e) => e.file === '' || !existsSync(e.file))
  t.same(missing.map((e) => `${e.name} ${e.subpath}`), [], 'every entry point has a built `types` file (npx tsc -b)')
  if (missing.length > 0) return
  // One program for every entry point, resolved the way a user's NodeNext project resolves them.
  const program = ts.createProgram(all.map((e) => e.file), {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
    skipLibCheck: true
  })
  const checker = program.getTypeChecker()
  for (const entry of all) {
    const label = `${entry.name}${entry.subpath === '.' ? '' : entry.subpath.slice(1)}`
    t.same(Object.keys(TYPE_EXPORTS[entry.name] ?? {}).includes(entry.subpath), true, `${label}: has a list`)
    const source = program.getSourceFile(entry.file)
    const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
    if (moduleSymbol === undefined) {
      t.fail(`${label}: ${entry.file} is not a module`)
      continue
    }
    const typeOnly = checker.getExportsOfModule(moduleSymbol).filter((symbol) => {
      const target = (symbol.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(symbol) : symbol
      return (target.flags & ts.SymbolFlags.Value) === 0
    }).map((symbol) => symbol.name)
    t.same(typeOnly.sort(), [...TYPE_EXPORTS[entry.name]?.[entry.subpath] ?? []].sort(), `${label}: its types`)
  }
})
