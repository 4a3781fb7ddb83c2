import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The example page's browser files (example/public/), served from a fixed list read once when
 * the app starts: no static-file plugin, so no other file of the folder (its tsconfig.json, say)
 * can ever be asked for.
 *
 * Each file is served at a name that carries a hash of its content (`/assets/app.<hash>.js`)
 * and cached as immutable. The page itself is `no-store` and names the files of the code that
 * serves it, so a browser never runs an old script against a new page, and a repeat visit
 * costs no request for them. A name with another hash is simply not a route.
 */

/** example/, whether this module runs from its source (tests) or from example/dist (`npm start`). */
const here = dirname(fileURLToPath(import.meta.url))
export const EXAMPLE_DIR = basename(here) === 'dist' ? dirname(here) : here

/** The files of example/public/ the page uses, and their content types. Nothing else is served. */
const FILES = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8'
} as const

export type AssetName = keyof typeof FILES

export interface Asset {
  /** Where it is served: `/assets/<name>.<hash>.<ext>`. */
  readonly url: string
  readonly contentType: string
  readonly body: Buffer
}

export const ASSET_CACHE_CONTROL = 'public, max-age=31536000, immutable'

/** Reads every file of the list from `dir` (default example/public/); fails at start, naming the file. */
export async function loadAssets (dir: string = join(EXAMPLE_DIR, 'public')): Promise<Readonly<Record<AssetName, Asset>>> {
  const assets: Partial<Record<AssetName, Asset>> = {}
  for (const [name, contentType] of Object.entries(FILES) as Array<[AssetName, string]>) {
    const path = join(dir, name)
    let body: Buffer
    try {
      body = await readFile(path)
    } catch (err) {
      throw new Error(`the example page's ${name} is missing: ${path} (${(err as Error).message})`, { cause: err })
    }
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 16)
    const dot = name.lastIndexOf('.')
    assets[name] = Object.freeze({ url: `/assets/${name.slice(0, dot)}.${hash}${name.slice(dot)}`, contentType, body })
  }
  return Object.freeze(assets as Record<AssetName, Asset>)
}
