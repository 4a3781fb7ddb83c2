import { readFile, mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { launch, openPage, signInWithPopup } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

/**
 * The README's screenshot, docs/signed-in.png: the signed-in page at 1000×700.
 * `UPDATE_SCREENSHOT=1 npx tap test/browser/screenshot.test.ts` rewrites it; otherwise the test
 * only renders the page and checks the committed file, so CI never writes into the repository.
 */
const SCREENSHOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs/signed-in.png')
const WIDTH = 1000
const HEIGHT = 700

/** Width and height from a PNG's IHDR chunk. */
function pngSize (png: Buffer): { width: number, height: number } | null {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  if (png.length < 24 || !png.subarray(0, 8).equals(signature) || png.toString('latin1', 12, 16) !== 'IHDR') return null
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}

t.test('the signed-in page at 1000×700 fits the window; docs/signed-in.png shows it', async (t) => {
  const browser = await launch(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page } = await openPage(t, browser, { viewport: { width: WIDTH, height: HEIGHT }, locale: 'en-US', timezoneId: 'UTC' })
  await signInWithPopup(page, stack.url)
  // The whole page, actions and footer included, fits the screenshot: nothing scrolls sideways
  // or falls below the fold.
  const box = await page.evaluate(() => ({ width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight }))
  t.ok(box.width <= WIDTH, `no horizontal scrolling (${box.width}px)`)
  t.ok(box.height <= HEIGHT, `everything above the fold (${box.height}px)`)
  // Stable pixels: the address of the provider differs per run (a random port).
  await page.locator('footer strong').evaluate((el) => { el.textContent = 'http://127.0.0.1:3001' })
  const shot = await page.screenshot({ type: 'png', animations: 'disabled' })
  t.same(pngSize(shot), { width: WIDTH, height: HEIGHT })

  if (process.env.UPDATE_SCREENSHOT === '1') {
    await mkdir(dirname(SCREENSHOT), { recursive: true })
    await writeFile(SCREENSHOT, shot)
    t.comment(`wrote ${SCREENSHOT}`)
  }
  const committed = await readFile(SCREENSHOT).catch(() => null)
  t.ok(committed, 'docs/signed-in.png exists (UPDATE_SCREENSHOT=1 makes it)')
  if (committed !== null) t.same(pngSize(committed), { width: WIDTH, height: HEIGHT }, 'docs/signed-in.png is 1000×700')
})
