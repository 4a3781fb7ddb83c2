import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'

/** The example page's languages, the Chromium locale that asks for each, and their tables. */
export const LANGUAGES = ['en', 'ja', 'zh-CN'] as const
export type Language = typeof LANGUAGES[number]
export const LOCALE: Readonly<Record<Language, string>> = { en: 'en-US', ja: 'ja-JP', 'zh-CN': 'zh-CN' }

const I18N = resolve(dirname(fileURLToPath(import.meta.url)), '../../example/i18n')

/** example/i18n/<language>.json, read as the tests' own copy of the page's words. */
export function strings (language: Language): Readonly<Record<string, string>> {
  return JSON.parse(readFileSync(resolve(I18N, `${language}.json`), 'utf8')) as Record<string, string>
}

/** `strings(language)[key]` with `{names}` filled in. */
export function words (language: Language, key: string, args: Record<string, string> = {}): string {
  const text = strings(language)[key]
  if (text === undefined) throw new Error(`no "${key}" in ${language}.json`)
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => args[name] ?? whole)
}

/**
 * Every piece of text a user can see on `page` (visible text nodes, the language switch's own
 * option names left out: each names its language in that language).
 */
export async function visibleText (page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = []
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT)
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
      const parent = node.parentElement
      const text = (node.textContent ?? '').trim()
      if (parent === null || text === '' || parent.closest('select, script, noscript') !== null) continue
      if (!parent.checkVisibility()) continue
      out.push(text)
    }
    return out
  })
}

/** Browsers and systems, named as everyone names them in every language (the page's sessions list). */
export const DEVICE_NAMES: readonly string[] = ['Chrome', 'Edge', 'Firefox', 'Opera', 'Safari', 'Samsung', 'Internet', 'Android', 'ChromeOS', 'iOS', 'iPadOS', 'Linux', 'macOS', 'Windows']

/**
 * What in `texts` is not of `language`: for English, any Japanese or Chinese character; for
 * Japanese and Chinese, any word in Latin letters other than the names in `allowed` (AIHubMix,
 * HttpOnly, the user's own name and address, the provider's URL) and the browsers' and systems'.
 */
export function foreignWords (language: Language, texts: string[], allowed: string[]): string[] {
  if (language === 'en') return texts.filter((text) => /[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e]/.test(text))
  const ok = new Set(['AIHubMix', 'HttpOnly', 'Cookie', ...DEVICE_NAMES, ...allowed.flatMap((a) => a.split(/[^A-Za-z0-9]+/))])
  return texts.flatMap((text) => text.match(/[A-Za-z][A-Za-z0-9]+/g) ?? []).filter((word) => !ok.has(word))
}
