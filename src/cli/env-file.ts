import { randomBytes } from 'node:crypto'
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { EnvFileConflictError, EnvFileError, errorInfo } from './errors.js'

/**
 * Env files as Node.js 20's `--env-file` reads them, which is how an app built from the root README's snippet gets
 * its configuration (`node --env-file=.env`); the example server (example/server.ts `loadEnvFile`) and `doctor` read
 * them with `parseEnvFile`, so all three see the same values. Node's rules, odd ones included: the last definition
 * of a name wins; `#` starts a comment anywhere in an unquoted value (`pass#word` is `pass`); a value may be quoted
 * with `'`, `"` or a backtick and then spans lines until its closing quote; `\n` in a double-quoted value is a newline.
 */

/** The mode an env file holding a client secret gets: owner read/write only. */
export const ENV_FILE_MODE = 0o600

// The value without the blanks around it (lazy: a blank after it, or after its closing quote, is not part of it).
const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/
const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Whether `name` is a variable name an app can read (what a misread line makes of itself is not). */
export function isEnvName (name: string): boolean {
  return KEY.test(name)
}
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
  /** 1-based numbers of the lines Node.js (so the example server) does not read as `NAME=value`, a comment or blank. */
  malformed: number[]
  /** Those lines with what is wrong with each (no content: a line may hold a secret). */
  misread: MisreadLine[]
}

/** A line Node.js misreads: its 1-based number and what is wrong, the fix and the variable lost (names only). */
export interface MisreadLine {
  line: number
  said: string
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

interface Definition {
  /** The name as Node.js reads it: not always a NAME (`MY-NAME`, or a line without `=` and the next one). */
  name: string
  value: string
  /** Offsets (in the text without `\r`) of the name's first character, of its `=` and just past the definition. */
  from: number
  equals: number
  end: number
  /** An unquoted value cut at a `#` after its first character (`SECRET=Kq8#vR2` is `Kq8`). */
  cut: boolean
  /** Cut at a `#` right after a character of the value (`URL=redis://:pa#ss@host`), not after a blank (`URL=x  # note`). */
  cutInside: boolean
}

/** Node's own trim (src/node_dotenv.cc `trim_spaces`): spaces only, a tab stays. */
function trimSpaces (text: string): string {
  return text.replace(/^ +| +$/g, '')
}

/**
 * A port of Node.js 20's `Dotenv::ParseContent` (v20.19+), checked against the real `node --env-file` by
 * test/cli/env-file-node.test.ts. Its odd cases are followed on purpose, since an app reads the file with Node:
 * every `\r` is dropped, even inside quotes; a line without `=` (or of spaces only) becomes part of the next line's
 * name, so that variable is not set; `# x` indented by spaces is not a comment; a quoted value ends at the first
 * matching quote (no escapes) and the rest of its line is dropped; an unclosed quote keeps the whole line, quote
 * included; a line `=value` ends the file. `skipped` are the stretches Node reads nothing from.
 */
function parseDefinitions (input: string): { text: string, definitions: Definition[], skipped: Array<[number, number]> } {
  const text = input.replaceAll('\r', '')
  const definitions: Definition[] = []
  const skipped: Array<[number, number]> = []
  let pos = 0
  let end = text.length
  while (pos < end && text[pos] === ' ') pos++
  while (end > pos && text[end - 1] === ' ') end--
  // The offset after the line break at or after `at`, or the end.
  const nextLine = (at: number): number => {
    const nl = text.indexOf('\n', at)
    return nl === -1 || nl >= end ? end : nl + 1
  }
  while (pos < end) {
    const first = text[pos] as string
    // A blank line or a comment; a comment on the very last line, without a line break, is read as a line (Node).
    if ((first === '\n' || first === '#') && text.indexOf('\n', pos) !== -1) {
      pos = nextLine(pos)
      continue
    }
    const equals = text.indexOf('=', pos)
    if (equals === -1 || equals >= end) {
      skipped.push([pos, nextLine(pos)])
      pos = nextLine(pos)
      continue
    }
    const from = pos
    let name = trimSpaces(text.slice(pos, equals))
    pos = equals + 1
    while (pos < end && text[pos] === ' ') pos++
    if (name === '') {
      skipped.push([from, end])
      break
    }
    if (name.startsWith('export ')) name = name.slice(7)
    const define = (value: string, to: number, cut = false, cutInside = false): void => { definitions.push({ name, value, from, equals, end: to, cut, cutInside }) }
    if (pos >= end) {
      define('', end)
      break
    }
    const quote = text[pos] as string
    if (quote === '"' || quote === '\'' || quote === '`') {
      const close = text.indexOf(quote, pos + 1)
      if (close !== -1 && close < end) {
        const inner = text.slice(pos + 1, close)
        pos = nextLine(close + 1)
        define(quote === '"' ? inner.replaceAll('\\n', '\n') : inner, pos)
      } else {
        const nl = text.indexOf('\n', pos)
        // Unclosed on the last line: Node stores nothing and reads the rest as a new line.
        if (nl !== -1 && nl < end) {
          define(text.slice(pos, nl), nl + 1)
          pos = nl + 1
        }
      }
      continue
    }
    const nl = text.indexOf('\n', pos)
    let value = text.slice(pos, nl === -1 || nl >= end ? end : nl)
    const hash = value.indexOf('#')
    if (hash !== -1) value = value.slice(0, hash)
    define(trimSpaces(value), nextLine(pos), hash > 0, hash > 0 && !/[ \t]$/.test(value))
    pos = nextLine(pos)
  }
  return { text, definitions, skipped }
}

/** Parses env file text as Node.js 20's `--env-file` does (and so the example server and doctor): the last definition wins. */
export function parseEnvFile (text: string): Record<string, string> {
  return Object.fromEntries(parseDefinitions(text).definitions.map((d) => [d.name, d.value]))
}

/** 0-based line of each offset in `text` (without `\r`). */
function lineFinder (text: string): (offset: number) => number {
  const starts = [0]
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1)
  return (offset) => {
    let n = 0
    while (n + 1 < starts.length && (starts[n + 1] as number) <= offset) n++
    return n
  }
}

/** What a line is to Node.js's parser, as far as its misreading goes. */
function kindOf (line: string): 'spaces' | 'indented' | 'fine' | 'no-equals' | 'no-name' | 'other' {
  if (/^[ \t]+$/.test(line)) return 'spaces'
  if (/^[ \t]+#/.test(line)) return 'indented'
  if (line === '' || line.startsWith('#')) return 'fine'
  if (!line.includes('=')) return 'no-equals'
  if (/^ *=/.test(line)) return 'no-name'
  return 'other'
}

const INVALID_NAME = 'the name before \'=\' is not letters, digits and _ (not starting with a digit): Node.js sets a variable no app reads: make it NAME=value'

/**
 * The lines Node.js does not read as `NAME=value`, a comment or blank, each with what is wrong and its fix: a line
 * without `=`, of spaces, or an indented `# comment` takes the next variable into its name (that variable, named, is
 * lost: the line to fix is the bad one, not the variable's), `MY-NAME=1` sets a name no app reads, a line `=value`
 * ends the file for Node. Only numbers and variable names: such a line may hold a secret pasted whole.
 */
export function misreadLines (input: string): MisreadLine[] {
  const { text, definitions, skipped } = parseDefinitions(input)
  const lineOf = lineFinder(text)
  const lines = text.split('\n')
  const said = new Map<number, string>()
  for (const d of definitions) {
    // `#NAME=x` on the last line without a line break: Node sets `#NAME`, harmless, and it reads as a comment.
    if (KEY.test(d.name) || (d.name.startsWith('#') && !d.name.includes('\n'))) continue
    const first = lineOf(d.from)
    const last = lineOf(d.equals)
    if (first === last) {
      said.set(first + 1, /^[ \t]*\t/.test(lines[first] as string) ? 'a tab before the name: remove it (Node.js keeps it in the name, so no app reads the variable)' : INVALID_NAME)
      continue
    }
    const lostName = trimSpaces(d.name.slice(d.name.lastIndexOf('\n') + 1)).replace(/^export +/, '')
    const lost = KEY.test(lostName) ? `line ${last + 1}: ${lostName} is lost` : `line ${last + 1} is lost`
    if (!KEY.test(lostName)) said.set(last + 1, INVALID_NAME)
    // Every line between that would take the variable on its own once the first is fixed is named too.
    for (let n = first; n < last; n++) {
      switch (kindOf(lines[n] as string)) {
        case 'spaces':
          said.set(n + 1, `only spaces: Node.js reads it as the start of the next variable's name (${lost}): make line ${n + 1} empty (remove the spaces)`)
          break
        case 'indented':
          said.set(n + 1, `spaces before '#': remove them (Node.js reads an indented # as part of the next name; ${lost})`)
          break
        case 'fine':
          break
        default:
          said.set(n + 1, `no '=': Node.js reads it as the start of the next variable's name (${lost}): make it NAME=value, a # comment or empty`)
      }
    }
  }
  for (const [from] of skipped) {
    const first = lineOf(from)
    const kind = kindOf(lines[first] as string)
    if (kind === 'no-name') said.set(first + 1, 'no name before \'=\': Node.js reads nothing from there to the end of the file: give it a NAME or remove it')
    else if (kind === 'no-equals' || kind === 'other') said.set(first + 1, 'no \'=\': Node.js ignores it: make it NAME=value, a # comment or empty')
    // A last line of spaces or an indented comment: Node reads nothing from it, and nothing follows it.
  }
  return [...said].sort(([x], [y]) => x - y).map(([line, what]) => ({ line, said: what }))
}

/** The 1-based numbers of the lines `misreadLines` names. */
export function malformedLines (input: string): number[] {
  return misreadLines(input).map((m) => m.line)
}

/** At most this many lines are named one by one; the rest are counted in one more. */
export const MAX_MALFORMED_SHOWN = 10

/**
 * What to say about the misread lines: `line 7: no '=': ...` each (numbers and names only, never the content), at
 * most MAX_MALFORMED_SHOWN, then `12 more lines Node.js misreads, from line 31 (run doctor on a copy without the
 * lines above to see them)`.
 */
export function describeMalformed (misread: readonly MisreadLine[]): string[] {
  const said = misread.slice(0, MAX_MALFORMED_SHOWN).map((m) => `line ${m.line}: ${m.said}`)
  const rest = misread.length - said.length
  if (rest > 0) said.push(`${rest} more line${rest === 1 ? '' : 's'} Node.js misreads, from line ${(misread[MAX_MALFORMED_SHOWN] as MisreadLine).line}`)
  return said
}

/**
 * The names among `names` whose value in the file (the definition that wins) is unquoted and was cut at a `#` after
 * its first character: `SESSION_SECRET=Kq8#vR2!...` is `Kq8` to Node.js, which reads the rest as a comment.
 */
export function valuesCutAtHash (input: string, names: readonly string[]): string[] {
  const winner = new Map(parseDefinitions(input).definitions.map((d) => [d.name, d]))
  return names.filter((name) => winner.get(name)?.cut === true)
}

/**
 * The names among `names` whose value in the file (the definition that wins) is unquoted and was cut at a `#` that
 * follows a character of the value, not a blank: `REDIS_URL=redis://:pa#ss@host` is `redis://:pa` to Node.js, while
 * `REDIS_URL=redis://host  # dev` is a URL and a comment.
 */
export function valuesCutInsideAtHash (input: string, names: readonly string[]): string[] {
  const winner = new Map(parseDefinitions(input).definitions.map((d) => [d.name, d]))
  return names.filter((name) => winner.get(name)?.cutInside === true)
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
    if (errorInfo(err).code === 'ENOENT') return { path, exists: false, text: '', bytes: Buffer.alloc(0), values: {}, mode: undefined, malformed: [], misread: [] }
    throw new EnvFileError('read', path, reasonOf(err), { cause: err })
  }
  const text = bytes.toString('utf8')
  const misread = misreadLines(text)
  return { path, exists: true, text, bytes, values: parseEnvFile(text), mode, malformed: misread.map((m) => m.line), misread }
}

/** `value` as it is written: bare when that is unambiguous, else single or double quoted. */
export function formatEnvValue (value: string): string {
  if (!WRITABLE_VALUE.test(value)) throw new TypeError('env values must be printable ASCII without spaces')
  if (PLAIN_VALUE.test(value)) return value
  if (!value.includes('\'')) return `'${value}'`
  // Node.js turns `\n` into a newline in a double-quoted value only: a backtick-quoted one keeps it as written.
  if (!value.includes('"') && !value.includes('\\n')) return `"${value}"`
  if (!value.includes('`')) return `\`${value}\``
  throw new TypeError('env values cannot contain all three quote characters')
}

/** Which of `keys` the file defines, in the order given. */
export function definedKeys (file: EnvFile, keys: readonly string[]): string[] {
  return keys.filter((key) => Object.hasOwn(file.values, key))
}

/**
 * Throws what `updateEnvFile` would throw for these keys, without writing:
 * `create-app` calls it before registering an app, so a refusal costs nothing.
 */
export async function assertEnvFileUpdatable (path: string, keys: readonly string[], opts: { force?: boolean, comment?: string } = {}): Promise<EnvFile> {
  const file = await readEnvFile(path)
  const present = definedKeys(file, keys)
  if (present.length > 0 && opts.force !== true) throw new EnvFileConflictError(present.join(', '), path)
  // Would the keys read back? Checked with a stand-in value before the request (updateEnvFile checks the real ones).
  const placeholders = Object.fromEntries(keys.map((key) => [key, 'placeholder']))
  composeEnvFile(file, path, placeholders, new Map(keys.map((key) => [key, 'placeholder'])), opts.comment)
  try {
    const dir = await stat(dirname(path))
    if (!dir.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' })
  } catch (err) {
    throw new EnvFileError('write', path, reasonOf(err), { cause: err })
  }
  return file
}

interface Composed {
  bytes: Buffer
  replaced: string[]
  added: string[]
  duplicatesRemoved: number
}

/**
 * The file's new bytes with `formatted` set (see updateEnvFile), checked: every key must read back, as Node.js reads
 * the file, with the value written, else EnvFileError names the line in the way (a user who ran create-app must not
 * be told the keys were written when the app cannot see them).
 */
function composeEnvFile (file: EnvFile, path: string, values: Record<string, string>, formatted: ReadonlyMap<string, string>, comment: string | undefined): Composed {
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
  // The original 1-based number of each line of `out` (0: a line create-app adds), for the refusal's words.
  const origin: number[] = []
  // Up through the blank lines and comments above a written line (Node 20 reads a line of spaces, and all up to the
  // next `=`, as one name), lines of spaces or tabs become empty: a fix no one would mind.
  const clearSpacesAbove = (): void => {
    for (let i = out.length - 1; i >= 0 && /^(?:[ \t]*|#.*)$/.test(out[i] as string); i--) {
      if (/^[ \t]+$/.test(out[i] as string)) out[i] = ''
    }
  }
  for (const [i, line] of lines.entries()) {
    const m = LINE.exec(Buffer.from(line, 'latin1').toString('utf8'))
    const key = m?.[1]
    if (key === undefined || !formatted.has(key)) {
      out.push(line)
      origin.push(i + 1)
      continue
    }
    if (written.has(key)) {
      duplicatesRemoved++
      continue
    }
    clearSpacesAbove()
    const exported = /^\s*export\s/.test(line) ? 'export ' : ''
    out.push(`${exported}${key}=${formatted.get(key) as string}`)
    origin.push(i + 1)
    written.add(key)
    replaced.push(key)
  }
  const added = [...formatted.keys()].filter((key) => !written.has(key))
  if (added.length > 0) {
    clearSpacesAbove()
    if (out.length > 0 && out[out.length - 1] !== '') {
      out.push('')
      origin.push(0)
    }
    if (comment !== undefined) {
      out.push(Buffer.from(`# ${comment}`, 'utf8').toString('latin1'))
      origin.push(0)
    }
    for (const key of added) {
      out.push(`${key}=${formatted.get(key) as string}`)
      origin.push(0)
    }
  }
  const bytes = Buffer.from(out.join(eol) + eol, 'latin1')
  checkReadBack(bytes.toString('utf8'), path, values, origin)
  return { bytes, replaced, added, duplicatesRemoved }
}

/**
 * Throws EnvFileError unless every key of `values` reads back from `text` (as Node.js reads it) with its value: a
 * line above it that Node reads together with it (no `=`, an indented `# comment`, an unclosed quote, `=value`)
 * would leave the app without it while create-app said it was written.
 */
function checkReadBack (text: string, path: string, values: Record<string, string>, origin: readonly number[]): void {
  const { text: plain, definitions, skipped } = parseDefinitions(text)
  const read = Object.fromEntries(definitions.map((d) => [d.name, d.value]))
  const lineOf = lineFinder(plain)
  const lines = plain.split('\n')
  const starts = [0]
  for (let i = plain.indexOf('\n'); i !== -1; i = plain.indexOf('\n', i + 1)) starts.push(i + 1)
  const numberOf = (n: number): string => `line ${origin[n] === undefined || origin[n] === 0 ? n + 1 : origin[n] as number}`
  for (const [key, value] of Object.entries(values)) {
    if (read[key] === value) continue
    const at = lines.findIndex((line) => new RegExp(`^(?:export )?${key}=`).test(line))
    const offset = at === -1 ? -1 : starts[at] as number
    const cover = definitions.find((d) => d.from < offset && offset < d.end)?.from ?? skipped.find(([from, to]) => from <= offset && offset < to)?.[0]
    let reason: string
    if (cover === undefined) {
      reason = `${key} would not read back as written (${at === -1 ? 'its line is gone' : numberOf(at)}): check the file with doctor`
    } else {
      const culprit = lineOf(cover)
      const where = numberOf(culprit)
      switch (kindOf(lines[culprit] as string)) {
        case 'indented':
          reason = `${where}: spaces before '#': Node.js would read it and ${key} as one name: remove the spaces before '#'`
          break
        case 'spaces':
          reason = `${where}: only spaces: Node.js would read it and ${key} as one name: make it empty`
          break
        case 'no-equals':
          reason = `${where}: no '=': Node.js would read it and ${key} as one name: make it NAME=value, a # comment or empty`
          break
        case 'no-name':
          reason = `${where}: no name before '=': Node.js reads nothing after it, ${key} included: give it a NAME or remove it`
          break
        default:
          reason = `${where}: Node.js would read ${key} as part of its value (an unclosed quote?): fix that line`
      }
    }
    throw new EnvFileError('write', path, `${reason} (nothing was written)`)
  }
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
 * so the file it points to is the one updated. A line of spaces above a key it
 * writes is made empty, and EnvFileError refuses (writing nothing) when Node.js
 * would still not read a key back with its value (a line above swallows it).
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

  const { bytes, replaced, added, duplicatesRemoved } = composeEnvFile(file, path, values, formatted, opts.comment)
  await writeAtomically(target, bytes)
  const tightenedFrom = file.mode !== undefined && (file.mode & 0o077) !== 0 ? file.mode : undefined
  return { path, created: !file.exists, replaced, added, duplicatesRemoved, tightenedFrom }
}
