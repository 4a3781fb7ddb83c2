import t from 'tap'
import type { Page } from 'playwright-core'
import { openPage, sharedBrowser, signInWithPopup } from '../helpers/chromium.js'
import { LOCALE } from '../helpers/languages.js'
import { startStack } from '../helpers/stack.js'

// What users met on 320 and 360 px phones in Japanese, from the page review: "すべてのデバイスからログアウ / ト" (the
// button broke inside its last word), "おかえりなさ / い！" (the welcome heading, too wide for its column next to the
// avatar), and a session's "ログイン：2026/12/02" with "5:39" on the next line; in Chinese "2026年12月2 / 日". Now
// headings and buttons break between phrases (Japanese) and words only, and a date and time stay on one line.
//
// How it is checked: where each character of the element is laid out (a Range per character), so where its lines
// break; every break must fall on a word boundary of Intl.Segmenter for the page's language (ICU's dictionary:
// "すべて|の|デバイス|から|ログアウト", "おかえりなさい|！", "退出|所有|设备"), and no break may fall inside a session's
// date and time as the page's locale writes it.

const browserFor = sharedBrowser(t)

interface Broken { text: string, lines: string[] }

/**
 * The visible headings and buttons whose lines break inside a word, each with its lines. Whitespace is left out of
 * the positions (a space at a line's end is laid out at that line's end or not at all).
 */
async function brokenInsideAWord (page: Page, language: string): Promise<Broken[]> {
  return page.evaluate((language) => {
    const segmenter = new Intl.Segmenter(language, { granularity: 'word' })
    const out: Array<{ text: string, lines: string[] }> = []
    for (const el of document.querySelectorAll<HTMLElement>('h1, h2, h3, button')) {
      if (!el.checkVisibility()) continue
      const text = el.textContent ?? ''
      const tops: Array<number | undefined> = []
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT)
      for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
        const value = node.textContent ?? ''
        for (let i = 0; i < value.length; i++) {
          const range = document.createRange()
          range.setStart(node, i)
          range.setEnd(node, i + 1)
          const rect = range.getClientRects()[0]
          tops.push(/\s/.test(value[i] as string) || rect === undefined ? undefined : Math.round(rect.top))
        }
      }
      const boundaries = new Set([...segmenter.segment(text)].map((s) => s.index))
      const lines: string[] = ['']
      let last: number | undefined
      let lastIndex = -1
      let bad = false
      tops.forEach((top, i) => {
        if (top === undefined) { lines[lines.length - 1] += text[i] as string; return }
        if (last !== undefined && top > last + 2) {
          lines.push('')
          // The break is somewhere between the last character laid out and this one: at a word boundary, or inside a word.
          let atBoundary = false
          for (let b = lastIndex + 1; b <= i; b++) if (boundaries.has(b)) atBoundary = true
          if (!atBoundary) bad = true
        }
        lines[lines.length - 1] += text[i] as string
        last = top
        lastIndex = i
      })
      if (bad) out.push({ text, lines: lines.map((line) => line.trim()) })
    }
    return out
  }, language)
}

/** Each session's dates and times as shown (the page's locale, UTC), with the lines each is laid out on. */
async function sessionDates (page: Page): Promise<Array<{ date: string, lines: number }>> {
  return page.evaluate(async () => {
    const { sessions } = await (await fetch('/auth/sessions')).json() as { sessions: Array<{ createdAt: string, lastSeenAt: string }> }
    const format = new Intl.DateTimeFormat(navigator.language, { dateStyle: 'medium', timeStyle: 'short' })
    const dates = new Set(sessions.flatMap((s) => [s.createdAt, s.lastSeenAt]).map((iso) => format.format(new Date(iso))))
    const out: Array<{ date: string, lines: number }> = []
    for (const meta of document.querySelectorAll('.session-meta')) {
      // The meta's text nodes in order, to find a date by its place in the whole text whatever elements hold it.
      const nodes: Text[] = []
      const walker = document.createTreeWalker(meta, NodeFilter.SHOW_TEXT)
      for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) nodes.push(node as Text)
      const text = nodes.map((n) => n.data).join('')
      for (const date of dates) {
        for (let at = text.indexOf(date); at !== -1; at = text.indexOf(date, at + 1)) {
          const tops = new Set<number>()
          let offset = 0
          for (const node of nodes) {
            for (let i = 0; i < node.data.length; i++, offset++) {
              if (offset < at || offset >= at + date.length || /\s/.test(node.data[i] as string)) continue
              const range = document.createRange()
              range.setStart(node, i)
              range.setEnd(node, i + 1)
              const rect = range.getClientRects()[0]
              if (rect !== undefined) tops.add(Math.round(rect.top))
            }
          }
          out.push({ date, lines: tops.size })
        }
      }
    }
    return out
  })
}

for (const language of ['ja', 'zh-CN'] as const) {
  for (const width of [320, 360]) {
    t.test(`on a ${width} px phone in ${language}: headings and buttons break between words, a session's date and time stay together`, async (t) => {
      const browser = await browserFor(t)
      if (browser === undefined) return
      const stack = await startStack()
      t.teardown(() => stack.close())
      // Another device first, so that the phone's list shows a session with both of its dates (and its own button).
      const laptop = await openPage(t, browser, { locale: LOCALE[language] })
      await signInWithPopup(laptop.page, stack.url)
      const phone = { viewport: { width, height: 740 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, timezoneId: 'UTC' }
      const { page } = await openPage(t, browser, { ...phone, locale: LOCALE[language] })
      await page.goto(`${stack.url}/`)
      await page.getByTestId('login').waitFor({ state: 'visible' })
      t.same(await brokenInsideAWord(page, language), [], 'signed out: no heading or button broken inside a word')

      await signInWithPopup(page, stack.url)
      await page.getByTestId('session-item').nth(1).waitFor({ state: 'visible' })
      t.same(await brokenInsideAWord(page, language), [], 'signed in: no heading or button broken inside a word')
      const dates = await sessionDates(page)
      t.ok(dates.length >= 3, `the sessions' dates found on the page (${dates.length})`)
      t.same(dates.filter((d) => d.lines !== 1), [], 'every session\'s date and time on one line')
    })
  }
}
