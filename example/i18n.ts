import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { EXAMPLE_DIR } from './assets.js'

/**
 * The example page's words in English, Japanese and Simplified Chinese: one JSON file per
 * language in example/i18n/, flat `"section.name": "text"` pairs, `{name}` for what is filled
 * in (a user name, a date formatted for the language). The server renders the page's first paint
 * from them and hands all three tables to the page's script, which switches without a request.
 *
 * They are read once at start and checked against en.json: a key missing from a language, a key
 * en.json does not have, or a text whose `{placeholders}` differ from the English one stops the
 * app with a line naming the file and the key: no language ever falls back to another's words.
 */

export const LANGUAGES = ['en', 'ja', 'zh-CN'] as const
export type Language = typeof LANGUAGES[number]
export const DEFAULT_LANGUAGE: Language = 'en'

export type StringTable = Readonly<Record<string, string>>
export type Strings = Readonly<Record<Language, StringTable>>

const Table = Type.Record(Type.String({ pattern: '^[a-z][A-Za-z0-9]*(\\.[A-Za-z0-9_]+)+$' }), Type.String({ minLength: 1 }), { additionalProperties: false })
const checkTable = TypeCompiler.Compile(Table)

/**
 * The page's language for one language tag, by its primary subtag: `en-GB` is English, `ja-JP`
 * Japanese, and every Chinese (`zh`, `zh-CN`, `zh-Hans`, also `zh-TW`) the Simplified Chinese
 * we have. The page's script applies the same rule to `navigator.languages`.
 */
export function languageOf (tag: string): Language | undefined {
  const primary = tag.trim().toLowerCase().split('-')[0]
  if (primary === 'en') return 'en'
  if (primary === 'ja') return 'ja'
  if (primary === 'zh') return 'zh-CN'
  return undefined
}

/** The best language of an `Accept-Language` header (by `q`, then order), else English. */
export function languageFromAcceptLanguage (header: string | undefined): Language {
  if (header === undefined) return DEFAULT_LANGUAGE
  const ranges = header.split(',').slice(0, 32).map((part, index) => {
    const [tag = '', ...params] = part.split(';')
    let q = 1
    for (const param of params) {
      const [name = '', value = ''] = param.split('=').map((s) => s.trim())
      if (name.toLowerCase() === 'q') q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(value) ? Number(value) : 0
    }
    return { tag, q, index }
  })
  ranges.sort((a, b) => b.q - a.q || a.index - b.index)
  for (const { tag, q } of ranges) {
    if (q <= 0) continue
    const language = languageOf(tag)
    if (language !== undefined) return language
  }
  return DEFAULT_LANGUAGE
}

/** The `{names}` a text fills in, sorted. */
export function placeholders (text: string): string[] {
  return [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort()
}

/** Reads and checks example/i18n/<language>.json for every language (see the top of this file). */
export async function loadStrings (dir: string = join(EXAMPLE_DIR, 'i18n')): Promise<Strings> {
  const tables: Partial<Record<Language, StringTable>> = {}
  for (const language of LANGUAGES) {
    const path = join(dir, `${language}.json`)
    let table: unknown
    try {
      table = JSON.parse(await readFile(path, 'utf8'))
    } catch (err) {
      throw new Error(`the example page's strings ${path} cannot be read: ${(err as Error).message}`, { cause: err })
    }
    if (!checkTable.Check(table)) {
      const first = checkTable.Errors(table).First()
      throw new Error(`the example page's strings ${path}: ${first?.path ?? ''} ${first?.message ?? 'is not an object of texts'}`)
    }
    tables[language] = Object.freeze({ ...table })
  }
  const en = tables.en as StringTable
  for (const language of LANGUAGES) {
    const table = tables[language] as StringTable
    const file = join(dir, `${language}.json`)
    for (const key of Object.keys(en)) {
      if (!Object.hasOwn(table, key)) throw new Error(`the example page's strings ${file} lack "${key}" (every language needs every key of en.json)`)
      const want = placeholders(en[key] as string).join(', ')
      if (placeholders(table[key] as string).join(', ') !== want) {
        throw new Error(`the example page's strings ${file}: "${key}" must fill in ${want === '' ? 'no {placeholder}' : `{${want}}`}, as en.json does`)
      }
    }
    for (const key of Object.keys(table)) {
      if (!Object.hasOwn(en, key)) throw new Error(`the example page's strings ${file} have "${key}", which en.json does not`)
    }
  }
  return Object.freeze(tables as Record<Language, StringTable>)
}
