import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { ASSET_CACHE_CONTROL, EXAMPLE_DIR, loadAssets } from '../../example/assets.js'
import { PAGE_CSP, pageRoutes } from '../../example/page.js'

// The page's script and style are real files of example/public/, served from a fixed list at
// names that carry their content's hash, immutable, under the page's CSP; nothing else of the
// folder is reachable.

const SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../example')

async function pageApp (t: Test): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(pageRoutes, { providerOrigin: 'http://127.0.0.1:3001' })
  t.teardown(() => app.close())
  return app
}

/** The /assets/ URLs the page names (its stylesheet and its script). */
function assetUrls (html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1] as string)
}

t.test('the page names its script and style by content hash; each is served as the file on disk, immutable', async (t) => {
  const app = await pageApp(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.equal(page.headers['cache-control'], 'no-store', 'the page itself is never cached: it names the current files')
  const urls = assetUrls(page.body)
  t.equal(urls.length, 2, 'one stylesheet and one script')
  t.match(page.body, /<script type="module" src="\/assets\/app\.[0-9a-f]{16}\.js"><\/script>/)
  t.match(page.body, /<link rel="stylesheet" href="\/assets\/app\.[0-9a-f]{16}\.css">/)

  for (const url of urls) {
    const file = url.endsWith('.js') ? 'app.js' : 'app.css'
    const answer = await app.inject(url)
    t.equal(answer.statusCode, 200, url)
    t.equal(answer.headers['content-type'], file === 'app.js' ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8')
    t.equal(answer.headers['cache-control'], ASSET_CACHE_CONTROL)
    t.equal(answer.headers['content-security-policy'], PAGE_CSP, 'under the page\'s policy')
    t.equal(answer.headers['x-content-type-options'], 'nosniff')
    t.equal(answer.body, await readFile(join(SOURCE_DIR, 'public', file), 'utf8'), `${url} is example/public/${file}`)
    const head = await app.inject({ method: 'HEAD', url })
    t.equal(head.statusCode, 200, `HEAD ${url}`)
  }
})

t.test('nothing else under /assets/ answers: no unhashed name, no other hash, no other file', async (t) => {
  const app = await pageApp(t)
  const [script = ''] = assetUrls((await app.inject('/')).body).filter((u) => u.endsWith('.js'))
  const other = script.replace(/\.([0-9a-f])/, (_m, c: string) => `.${c === '0' ? '1' : '0'}`)
  t.not(other, script)
  for (const url of [
    '/assets/app.js',
    '/assets/app.css',
    other,
    '/assets/tsconfig.json',
    '/assets/../package.json',
    '/assets/%2e%2e/package.json',
    '/public/app.js',
    '/example/public/app.js'
  ]) {
    t.equal((await app.inject(url)).statusCode, 404, url)
  }
})

t.test('a changed file gets a new name; a missing one stops the start, naming it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'page-assets-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'app.js'), 'console.log(1)\n')
  await writeFile(join(dir, 'app.css'), 'body {}\n')
  const first = await loadAssets(dir)
  await writeFile(join(dir, 'app.js'), 'console.log(2)\n')
  const second = await loadAssets(dir)
  t.not(second['app.js'].url, first['app.js'].url, 'new content, new name')
  t.equal(second['app.css'].url, first['app.css'].url, 'the unchanged file keeps its name')
  t.equal(second['app.js'].body.toString(), 'console.log(2)\n')

  await rm(join(dir, 'app.css'))
  await t.rejects(loadAssets(dir), { message: /the example page's app\.css is missing: .*app\.css/ })
})

t.test('the built server (npm start runs example/dist) reads the files from example/public', async (t) => {
  t.equal(EXAMPLE_DIR, SOURCE_DIR, 'from source')
  const built = await import(join(SOURCE_DIR, 'dist', 'assets.js')) as typeof import('../../example/assets.js')
  t.equal(built.EXAMPLE_DIR, SOURCE_DIR, 'from example/dist: the same folder')
  const fromDist = await built.loadAssets()
  const fromSource = await loadAssets()
  t.equal(fromDist['app.js'].url, fromSource['app.js'].url)
  t.equal(fromDist['app.css'].url, fromSource['app.css'].url)
})
