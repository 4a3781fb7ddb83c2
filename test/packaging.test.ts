import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// Each package is publishable alone: `npm pack` in src/<package> takes only that
// package's built files (and its README), never sources, tests or other packages.

const run = promisify(execFile)
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const PACKAGES = ['token-store', 'aihubmix-proxy', 'oauth-routes', 'metrics', 'mock-provider', 'cli']

for (const name of PACKAGES) {
  t.test(`npm pack in src/${name}`, async (t) => {
    const dir = join(root, 'src', name)
    if (!existsSync(join(dir, 'dist', 'index.js'))) {
      t.fail(`src/${name}/dist is not built: run \`npx tsc -b\` (npm install and npm test do)`)
      return
    }
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir })
    const [info] = JSON.parse(stdout) as Array<{ name: string, files: Array<{ path: string }> }>
    const files = (info?.files ?? []).map((f) => f.path)
    t.ok(files.includes('package.json'))
    t.ok(files.includes('dist/index.js'), 'the entry point')
    t.ok(files.includes('dist/index.d.ts'), 'its types')
    const stray = files.filter((f) => !(f === 'package.json' || f === 'README.md' || f === 'LICENSE' || f.startsWith('dist/') || f === 'aihubmix-oauth.js'))
    t.same(stray, [], 'nothing but built files')
    t.notOk(files.some((f) => f.endsWith('.tsbuildinfo') || f.endsWith('.test.js')), 'no build info, no tests')
  })
}
