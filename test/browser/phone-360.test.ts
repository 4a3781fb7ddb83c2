import t from 'tap'
import type { Page } from 'playwright-core'
import { openPage, sharedBrowser, signInWithPopup, testIdText } from '../helpers/chromium.js'
import { LANGUAGES, LOCALE, words } from '../helpers/languages.js'
import { startStack } from '../helpers/stack.js'

// What users met on a 360 px phone (the most common Android width; mobile-viewport.test.ts checks 390), from the
// page review: the app's own name in the top bar was cut to "My AIHubMix a…" / "マイ AIHubMix …" / "我的 AIHubMix …"
// in every language, signed out and in (the name could only shrink, with an ellipsis, next to the language switch).
// And a seven-figure balance broke inside the number, "1,234,890.0" on one line and "0" on the next (34 px digits
// that wrap anywhere). Now the name is smaller on phones and wraps rather than being cut (at 320 px it takes two
// lines), and a long balance gets a smaller size that fits its box on one line.

const browserFor = sharedBrowser(t)

/** The brand's text as laid out: how wide it needs to be, how wide it is shown, on how many lines. */
async function brand (page: Page): Promise<{ needed: number, shown: number, lines: number }> {
  return page.evaluate(() => {
    const span = document.querySelector('.brand span') as HTMLElement
    const range = document.createRange()
    range.selectNodeContents(span)
    const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size
    return { needed: range.getBoundingClientRect().width, shown: span.getBoundingClientRect().width, lines }
  })
}

/** How many lines the balance takes. */
async function balanceLines (page: Page): Promise<number> {
  return page.evaluate(() => {
    const el = document.getElementById('balance') as HTMLElement
    const range = document.createRange()
    range.selectNodeContents(el)
    return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size
  })
}

for (const width of [360, 320]) {
  for (const language of LANGUAGES) {
    t.test(`on a ${width} px phone in ${language}: the app's name and the balance are shown whole`, async (t) => {
      const browser = await browserFor(t)
      if (browser === undefined) return
      // balance_formatted = (quota - used_quota) / 1000 = "1234890.00"
      const stack = await startStack({ mock: { user: { quota: 1250000000, used_quota: 15110000 } } })
      t.teardown(() => stack.close())
      const phone = { viewport: { width, height: 740 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, timezoneId: 'UTC' }
      const { page } = await openPage(t, browser, { ...phone, locale: LOCALE[language] })
      await page.goto(`${stack.url}/`)
      await page.getByTestId('login').waitFor({ state: 'visible' })
      t.equal(await page.locator('.brand span').textContent(), words(language, 'brand.name'))
      const out = await brand(page)
      t.ok(out.needed <= out.shown + 0.5, `signed out: "${words(language, 'brand.name')}" needs ${out.needed}px, shown in ${out.shown}px`)
      if (width === 360) t.equal(out.lines, 1, 'on one line next to the language switch')

      await signInWithPopup(page, stack.url)
      const inn = await brand(page)
      t.ok(inn.needed <= inn.shown + 0.5, `signed in: the name needs ${inn.needed}px, shown in ${inn.shown}px`)
      t.equal(await testIdText(page, 'balance'), '1,234,890.00')
      t.equal(await balanceLines(page), 1, 'the balance 1,234,890.00 on one line, not broken inside the number')
    })
  }
}
