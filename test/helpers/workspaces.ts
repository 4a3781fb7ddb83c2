import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's root directory (with a trailing slash). */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

export interface Manifest {
  name: string
  version: string
  [field: string]: unknown
}

export interface Workspace {
  /** As the root package.json lists it: `src/token-store`. */
  dir: string
  /** Absolute. */
  path: string
  manifest: Manifest
  /** Whether `tsc -b` has built it (dist/index.js). */
  built: boolean
}

function readJson (path: string): Manifest {
  return JSON.parse(readFileSync(path, 'utf8')) as Manifest
}

export function rootManifest (): Manifest & { workspaces: string[] } {
  return readJson(join(repoRoot, 'package.json')) as Manifest & { workspaces: string[] }
}

/** Every package the root package.json lists as a workspace: a package added there is covered at once. */
export function workspaces (): Workspace[] {
  return rootManifest().workspaces.map((dir) => {
    const path = join(repoRoot, dir)
    return { dir, path, manifest: readJson(join(path, 'package.json')), built: existsSync(join(path, 'dist', 'index.js')) }
  })
}
