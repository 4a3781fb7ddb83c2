import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import t from 'tap'
import { LOGIN_ERROR_CODES } from '../../src/oauth-routes/errors.js'
import { LANGUAGES, languageFromAcceptLanguage, languageOf, loadStrings, placeholders } from '../../example/i18n.js'
import { pageRoutes } from '../../example/page.js'

// The page's words live in one file per language (example/i18n/<language>.json), every language
// complete: a missing or extra key, or a text that fills in other {names} than the English one,
// fails here and stops the app at start.

const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '../../example')
const I18N = join(EXAMPLE, 'i18n')

async function table (language: string): Promise<Record<string, string>> {
  return JSON.parse(await readFile(join(I18N, `${language}.json`), 'utf8')) as Record<string, string>
}

t.test('every language has every key of en.json, no other, and fills in the same {names}', async (t) => {
  const en = await table('en')
  t.ok(Object.keys(en).length > 40, 'the English table is the page\'s words')
  for (const language of LANGUAGES) {
    const other = await table(language)
    t.same(Object.keys(en).filter((k) => !Object.hasOwn(other, k)), [], `${language}.json lacks no key`)
    t.same(Object.keys(other).filter((k) => !Object.hasOwn(en, k)), [], `${language}.json has no key en.json lacks`)
    for (const [key, text] of Object.entries(other)) {
      if (typeof text !== 'string' || text.trim() === '') t.fail(`${language}.json: "${key}" is empty`)
      else if (placeholders(text).join() !== placeholders(en[key] ?? '').join()) t.fail(`${language}.json: "${key}" fills in other {names} than en.json`)
      else if (language !== 'en' && text === en[key]) t.fail(`${language}.json: "${key}" is still the English text`)
    }
  }
  await t.resolves(loadStrings(), 'the app loads them')
})

t.test('a key missing in any language, one too many, other {names}, an empty text or a malformed key stop the app, naming file and key', async (t) => {
  for (const [language, change, message] of [
    ['ja', (s: Record<string, string>) => { delete s['balance.label'] }, /ja\.json lack "balance\.label"/],
    ['zh-CN', (s: Record<string, string>) => { delete s['error.access_denied'] }, /zh-CN\.json lack "error\.access_denied"/],
    ['en', (s: Record<string, string>) => { delete s['login.button'] }, /ja\.json have "login\.button", which en\.json does not/],
    ['ja', (s: Record<string, string>) => { s['user.welcomeNamed'] = 'おかえりなさい！' }, /ja\.json: "user\.welcomeNamed" must fill in \{name\}/],
    ['zh-CN', (s: Record<string, string>) => { s['login.title'] = '' }, /zh-CN\.json: \/login\.title /],
    ['ja', (s: Record<string, string>) => { s['Not a key'] = 'x' }, /ja\.json: \/Not a key /]
  ] as const) {
    const dir = await mkdtemp(join(tmpdir(), 'page-strings-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    await cp(I18N, dir, { recursive: true })
    const strings = await table(language)
    change(strings)
    await writeFile(join(dir, `${language}.json`), JSON.stringify(strings))
    await t.rejects(loadStrings(dir), { message: message as RegExp }, String(message))
  }
})

t.test('every error code the app can send the page has words', async (t) => {
  const en = await table('en')
  // The sign-in's codes (/?error=<code>), the /api/* codes (the README's "Errors"),
  // and the page's own (no answer at all; a top-up address it does not trust).
  const codes = [
    ...LOGIN_ERROR_CODES,
    'unauthenticated', 'reauth_required', 'csrf_header_required', 'insufficient_scope', 'bad_gateway',
    'upstream_timeout', 'upstream_unavailable', 'store_unavailable', 'refresh_busy',
    'network', 'bad_topup_url'
  ]
  t.same(codes.filter((code) => !Object.hasOwn(en, `error.${code}`)), [])
})

t.test('every key the page and its script name is in the tables', async (t) => {
  const en = await table('en')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(pageRoutes, { providerOrigin: 'http://127.0.0.1:3001' })
  const page = (await app.inject('/')).body
  const script = await readFile(join(EXAMPLE, 'public', 'app.js'), 'utf8')
  const named = [
    ...[...page.matchAll(/data-i18n(?:-busy|-title)?="([^"]+)"/g)].map((m) => m[1] as string),
    ...[...script.matchAll(/\b(?:tr|t|say|showLogin|checkSession)\('([a-z][\w.]*)'/g)].map((m) => m[1] as string)
  ]
  t.ok(named.length > 30, `${named.length} keys named`)
  t.same([...new Set(named)].filter((key) => !Object.hasOwn(en, key)), [])
})

t.test('the language of a tag, and the best of an Accept-Language header', async (t) => {
  t.equal(languageOf('en-GB'), 'en')
  t.equal(languageOf('JA-jp'), 'ja')
  for (const tag of ['zh', 'zh-CN', 'zh-Hans', 'zh-Hans-CN', 'zh-SG', 'zh-TW']) t.equal(languageOf(tag), 'zh-CN', tag)
  for (const tag of ['fr', 'jav', 'zhx', '', '*']) t.equal(languageOf(tag), undefined, `"${tag}"`)

  const cases: Array<[string | undefined, string]> = [
    [undefined, 'en'],
    ['', 'en'],
    ['ja', 'ja'],
    ['ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7', 'ja'],
    ['zh-CN,zh;q=0.9', 'zh-CN'],
    ['fr-FR,fr;q=0.9,zh-TW;q=0.8,en;q=0.5', 'zh-CN'],
    ['en;q=0.5, ja;q=0.8', 'ja'],
    ['fr, de;q=0.9', 'en'],
    ['ja;q=0, en', 'en'],
    ['ja;q=2, zh', 'zh-CN'],
    ['ja;q=abc, en;q=0.1', 'en'],
    ['*', 'en'],
    [' ja-JP ; q=1.0 ', 'ja'],
    ['x'.repeat(5000), 'en']
  ]
  for (const [header, language] of cases) t.equal(languageFromAcceptLanguage(header), language, String(header).slice(0, 40))
})

t.test('GET / renders in the language of Accept-Language, and says that it varies with it', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(pageRoutes, { providerOrigin: 'http://127.0.0.1:3001' })
  for (const [header, language] of [['en-US,en;q=0.9', 'en'], ['ja-JP,ja;q=0.9', 'ja'], ['zh-CN,zh;q=0.9', 'zh-CN']] as const) {
    const strings = await table(language)
    const res = await app.inject({ url: '/', headers: { 'accept-language': header } })
    t.equal(res.headers.vary, 'Accept-Language')
    t.equal(res.headers['content-language'], language)
    t.match(res.body, `<html lang="${language}">`)
    t.match(res.body, `<title>${strings['page.title'] ?? ''}</title>`)
    t.match(res.body, `>${strings['login.button'] ?? ''}</button>`)
    t.match(res.body, `<option value="${language}" lang="${language}" selected>`)
  }
})
