import { execFileSync } from 'node:child_process'
import { readFile, mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { sharedBrowser } from '../helpers/chromium.js'
import { signedInPage } from '../helpers/signed-in-page.js'
import { LANGUAGES, LOCALE, type Language } from '../helpers/languages.js'

/**
 * The README's screenshots: the signed-in page at 1000×700 in each language, docs/signed-in.png
 * (English), docs/signed-in.ja.png and docs/signed-in.zh-CN.png.
 * `UPDATE_SCREENSHOT=1 npx tap test/browser/screenshot.test.ts` rewrites them (it needs CJK fonts:
 * Debian's fonts-noto-cjk); otherwise the test only renders the pages and checks that the committed
 * files are 1000×700 PNGs (not what they show), so CI never writes into the repository and no result
 * depends on the fonts installed.
 */
const DOCS = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs')
const FILE: Readonly<Record<Language, string>> = { en: 'signed-in.png', ja: 'signed-in.ja.png', 'zh-CN': 'signed-in.zh-CN.png' }
const WIDTH = 1000
const HEIGHT = 700

const browserFor = sharedBrowser(t)

/** Width and height from a PNG's IHDR chunk. */
function pngSize (png: Buffer): { width: number, height: number } | null {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  if (png.length < 24 || !png.subarray(0, 8).equals(signature) || png.toString('latin1', 12, 16) !== 'IHDR') return null
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

/** Whether fontconfig knows a font for `language` (a screenshot without one shows empty boxes). */
function hasFontFor (language: Language): boolean {
  try {
    return execFileSync('fc-list', [`:lang=${language.toLowerCase()}`, 'family'], { encoding: 'utf8' }).trim() !== ''
  } catch {
    return false
  }
}

for (const language of LANGUAGES) {
  const path = resolve(DOCS, FILE[language])
  t.test(`the signed-in page in ${language} at 1000×700 fits the window; docs/${FILE[language]} is a 1000×700 PNG${process.env.UPDATE_SCREENSHOT === '1' ? ', rewritten from it' : ''}`, async (t) => {
    const browser = await browserFor(t)
    if (browser === undefined) return
    const { page } = await signedInPage(t, browser, { viewport: { width: WIDTH, height: HEIGHT }, locale: LOCALE[language], timezoneId: 'UTC' })
    t.equal(await page.evaluate(() => document.documentElement.lang), language)
    // The whole page, actions and footer included, fits the screenshot: nothing scrolls sideways
    // or falls below the fold.
    const box = await page.evaluate(() => ({ width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight }))
    t.ok(box.width <= WIDTH, `no horizontal scrolling (${box.width}px)`)
    t.ok(box.height <= HEIGHT, `everything above the fold (${box.height}px)`)
    // Stable pixels: the address of the provider differs per run (a random port).
    await page.locator('#provider-origin').evaluate((el) => { el.textContent = 'http://127.0.0.1:3001' })
    const shot = await page.screenshot({ type: 'png', animations: 'disabled' })
    t.same(pngSize(shot), { width: WIDTH, height: HEIGHT })

    if (process.env.UPDATE_SCREENSHOT === '1') {
      if (language !== 'en' && !hasFontFor(language)) {
        t.fail(`no font for ${language}: install Debian's fonts-noto-cjk before UPDATE_SCREENSHOT=1`)
        return
      }
      await mkdir(DOCS, { recursive: true })
      await writeFile(path, shot)
      t.comment(`wrote ${path}`)
    }
    const committed = await readFile(path).catch(() => null)
    t.ok(committed, `docs/${FILE[language]} exists (UPDATE_SCREENSHOT=1 makes it)`)
    if (committed !== null) t.same(pngSize(committed), { width: WIDTH, height: HEIGHT }, `docs/${FILE[language]} is 1000×700`)
  })
}
