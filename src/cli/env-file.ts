import { randomBytes } from 'node:crypto'
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { EnvFileConflictError, EnvFileError, errorInfo } from './errors.js'

/**
 * Env files as the example server reads them (example/server.ts `loadEnvFile` uses `parseEnvFile`):
 * `KEY=VALUE` lines, an optional `export ` prefix, optional matching quotes
 * around the value, `#` comment lines; the first definition of a key wins.
 */

/** The mode an env file holding a client secret gets: owner read/write only. */
export const ENV_FILE_MODE = 0o600

// The value without the blanks around it (lazy: a blank after it, or after its closing quote, is not part of it).
const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/
const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/
const WRITABLE_VALUE = /^[\x21-\x7e]*$/
const PLAIN_VALUE = /^[A-Za-z0-9_\-.:/@%+=,~?&]*$/

export interface EnvFile {
  /** Absolute path. */
  path: string
  exists: boolean
  text: string
  values: Record<string, string>
  /** Permission bits (e.g. 0o600) when the file exists. */
  mode: number | undefined
  /** The file's bytes: `updateEnvFile` writes back the lines it does not set byte for byte (invalid UTF-8 too). */
  bytes: Buffer
  /** 1-based numbers of the lines that are not `NAME=value`, a comment or blank: the example server ignores them. */
  malformed: number[]
}

export interface EnvFileUpdate {
  path: string
  created: boolean
  /** Keys whose existing line was replaced in place (only with `force`). */
  replaced: string[]
  /** Keys appended at the end. */
  added: string[]
  /** Later duplicate definitions of the written keys that were dropped. */
  duplicatesRemoved: number
  /** The file's previous mode when it was broader than 0600 and got tightened. */
  tightenedFrom: number | undefined
}

export interface UpdateEnvFileOptions {
  /** Replace keys that already have a value (otherwise refuse and leave the file alone). */
  force?: boolean | undefined
  /** A `#` comment line written above appended keys. */
  comment?: string | undefined
}

function reasonOf (err: unknown): string {
  const { code } = errorInfo(err)
  switch (code) {
    case 'EACCES':
    case 'EPERM': return 'permission denied'
    case 'ENOENT': return 'the directory does not exist'
    case 'EISDIR': return 'it is a directory'
    case 'ENOTDIR': return 'a part of the path is not a directory'
    case 'EROFS': return 'read-only file system'
    case 'ENOSPC': return 'no space left on the device'
    default: return code ?? 'unknown error'
  }
}

/** Parses env file text exactly like the example server does (first definition wins). */
export function parseEnvFile (text: string): Record<string, string> {
  const values: Record<string, string> = {}
  for (const line of text.split(/\r?\n/)) {
    const m = LINE.exec(line)
    if (m === null) continue
    const name = m[1] as string
    let value = m[2] as string
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1)
    if (!Object.hasOwn(values, name)) values[name] = value
  }
  return values
}

/**
 * The 1-based numbers of the lines `parseEnvFile` skips that are neither blank nor a `#` comment: `this is not a
 * valid line`, `NAME value`, `MY-NAME=1`, binary junk. Only numbers: such a line may hold a secret pasted whole.
 */
export function malformedLines (text: string): number[] {
  const numbers: number[] = []
  const lines = text.split(/\r?\n/)
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '' || /^\s*#/.test(line)) continue
    if (!LINE.test(line)) numbers.push(i + 1)
  }
  return numbers
}

/** At most this many lines are named one by one; the rest are counted in one more. */
export const MAX_MALFORMED_SHOWN = 10

/**
 * What to say about the malformed lines: `line 7: not NAME=value` each (numbers only, never the content), at most
 * MAX_MALFORMED_SHOWN, then `12 more lines not NAME=value, from line 31`.
 */
export function describeMalformed (numbers: readonly number[]): string[] {
  const said = numbers.slice(0, MAX_MALFORMED_SHOWN).map((n) => `line ${n}: not NAME=value`)
  const rest = numbers.length - said.length
  if (rest > 0) said.push(`${rest} more line${rest === 1 ? '' : 's'} not NAME=value, from line ${numbers[MAX_MALFORMED_SHOWN] as number}`)
  return said
}

/** Reads an env file; a missing file is `exists: false`, any other failure an EnvFileError. */
export async function readEnvFile (path: string): Promise<EnvFile> {
  let bytes: Buffer
  let mode: number
  try {
    const info = await stat(path)
    if (info.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' })
    mode = info.mode & 0o777
    bytes = await readFile(path)
  } catch (err) {
    if (errorInfo(err).code === 'ENOENT') return { path, exists: false, text: '', bytes: Buffer.alloc(0), values: {}, mode: undefined, malformed: [] }
    throw new EnvFileError('read', path, reasonOf(err), { cause: err })
  }
  const text = bytes.toString('utf8')
  return { path, exists: true, text, bytes, values: parseEnvFile(text), mode, malformed: malformedLines(text) }
}

/** `value` as it is written: bare when that is unambiguous, else single or double quoted. */
export function formatEnvValue (value: string): string {
  if (!WRITABLE_VALUE.test(value)) throw new TypeError('env values must be printable ASCII without spaces')
  if (PLAIN_VALUE.test(value)) return value
  if (!value.includes('\'')) return `'${value}'`
  if (!value.includes('"')) return `"${value}"`
  throw new TypeError('env values cannot contain both quote characters')
}

/** Which of `keys` the file defines, in the order given. */
export function definedKeys (file: EnvFile, keys: readonly string[]): string[] {
  return keys.filter((key) => Object.hasOwn(file.values, key))
}

/**
 * Throws what `updateEnvFile` would throw for these keys, without writing:
 * `create-app` calls it before registering an app, so a refusal costs nothing.
 */
export async function assertEnvFileUpdatable (path: string, keys: readonly string[], opts: { force?: boolean } = {}): Promise<EnvFile> {
  const file = await readEnvFile(path)
  const present = definedKeys(file, keys)
  if (present.length > 0 && opts.force !== true) throw new EnvFileConflictError(present.join(', '), path)
  try {
    const dir = await stat(dirname(path))
    if (!dir.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
  } catch (err) {
    throw new EnvFileError('write', path, reasonOf(err), { cause: err })
  }
  return file
}

async function writeAtomically (target: string, bytes: Buffer): Promise<void> {
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const handle = await open(tmp, 'wx', ENV_FILE_MODE)
    try {
      await handle.writeFile(bytes)
      await handle.chmod(ENV_FILE_MODE)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, target)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw new EnvFileError('write', target, reasonOf(err), { cause: err })
  }
}

/**
 * Sets `values` in the env file at `path`: other lines and comments stay as
 * they are; an existing key is replaced in place (keeping an `export ` prefix)
 * only with `force`, otherwise EnvFileConflictError names the keys and the
 * file is not touched; missing keys are appended. The file is written
 * atomically (temporary file + rename) with mode 0600; a symlink is followed,
 * so the file it points to is the one updated.
 */
export async function updateEnvFile (path: string, values: Record<string, string>, opts: UpdateEnvFileOptions = {}): Promise<EnvFileUpdate> {
  const keys = Object.keys(values)
  for (const key of keys) {
    if (!KEY.test(key)) throw new TypeError(`not an env variable name: ${JSON.stringify(key)}`)
  }
  const formatted = new Map(keys.map((key) => [key, formatEnvValue(values[key] as string)]))
  // eslint-disable-next-line no-control-regex
  if (opts.comment !== undefined && /[\u0000-\u001f\u007f]/.test(opts.comment)) throw new TypeError('the comment must be one line')

  let target = path
  try {
    target = await realpath(path)
  } catch {}
  const file = await readEnvFile(target)
  const present = definedKeys(file, keys)
  if (present.length > 0 && opts.force !== true) throw new EnvFileConflictError(present.join(', '), path)

  // Lines are handled as latin1 text, one character per byte, so that those written back as they were keep their
  // exact bytes (a line that is not UTF-8 included); each is matched as the example server reads it, in UTF-8.
  const raw = file.bytes.toString('latin1')
  const eol = raw.includes('\r\n') ? '\r\n' : '\n'
  const lines = raw !== '' ? raw.split(/\r?\n/) : []
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()

  const written = new Set<string>()
  const replaced: string[] = []
  let duplicatesRemoved = 0
  const out: string[] = []
  for (const line of lines) {
    const m = LINE.exec(Buffer.from(line, 'latin1').toString('utf8'))
    const key = m?.[1]
    if (key === undefined || !formatted.has(key)) {
      out.push(line)
      continue
    }
    if (written.has(key)) {
      duplicatesRemoved++
      continue
    }
    const exported = /^\s*export\s/.test(line) ? 'export ' : ''
    out.push(`${exported}${key}=${formatted.get(key) as string}`)
    written.add(key)
    replaced.push(key)
  }
  const added = keys.filter((key) => !written.has(key))
  if (added.length > 0) {
    if (out.length > 0 && out[out.length - 1]?.trim() !== '') out.push('')
    if (opts.comment !== undefined) out.push(Buffer.from(`# ${opts.comment}`, 'utf8').toString('latin1'))
    for (const key of added) out.push(`${key}=${formatted.get(key) as string}`)
  }
  await writeAtomically(target, Buffer.from(out.join(eol) + eol, 'latin1'))
  const tightenedFrom = file.mode !== undefined && (file.mode & 0o077) !== 0 ? file.mode : undefined
  return { path, created: !file.exists, replaced, added, duplicatesRemoved, tightenedFrom }
}
