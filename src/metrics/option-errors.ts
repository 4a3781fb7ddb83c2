import { Kind } from '@sinclair/typebox'
import type { TSchema } from '@sinclair/typebox'
import { ValueErrorType } from '@sinclair/typebox/errors'
import type { ValueError, ValueErrorIterator } from '@sinclair/typebox/errors'

// Option errors that read the same in every package: `<path>: expected <what>, got <what was given>`, where
// <what> is said from the schema (`a string of 32+ characters or a list of them`, `an integer >= 1`, `"memory"
// or "redis"`), or taken from the schema's own `expected` text where a pattern says too little. A value is never
// quoted, only its kind (and a string's length): an option may be a secret. The same file is in every package
// (each is published alone); test/option-errors.test.ts keeps them identical.

/** `[path, problem]` of the first error (`['sessionCookie.secret', 'expected ...']`), or undefined when none. */
export function firstOptionProblem (errors: ValueErrorIterator, root = ''): [string, string] | undefined {
  let error: ValueError | undefined = errors.First()
  if (error === undefined) return undefined
  // A required option missing next to one that is not an option (`encryptionKey` for `encryptionKeys`): the
  // name that was written is the one to point at, with the option it was meant to be.
  if (error.type === ValueErrorType.ObjectRequiredProperty) {
    const parent = parentOf(error.path)
    for (const other of errors) {
      if (other.type === ValueErrorType.ObjectAdditionalProperties && parentOf(other.path) === parent) {
        error = other
        break
      }
    }
  }
  // A list or an object given to a union that has one variant of that shape (`a string or a list of them`): that
  // variant's own first error names the exact place (`secret[1]`). Otherwise the union is said as a whole.
  while (error.type === ValueErrorType.Union) {
    const value: unknown = error.value
    const shape = shapeOf(value)
    if (shape !== 'array' && shape !== 'object') break
    const variants: TSchema[] = (error.schema as { anyOf?: TSchema[] }).anyOf ?? []
    const same: number[] = variants.flatMap((variant, i) => shapeOf(variant) === shape ? [i] : [])
    const inner: ValueError | undefined = same.length === 1 ? error.errors[same[0] as number]?.First() : undefined
    if (inner === undefined) break
    error = inner
  }
  const path = optionPath(error.path, root)
  if (error.type === ValueErrorType.ObjectAdditionalProperties) {
    const names = Object.keys((error.schema as { properties?: object }).properties ?? {})
    const meant = closest(path.slice(path.lastIndexOf('.') + 1), names)
    if (meant !== undefined) return [path, `is not an option (did you mean ${meant}?)`]
    return [path, `is not an option${names.length > 0 ? ` (expected one of ${names.join(', ')})` : ''}`]
  }
  if (error.type === ValueErrorType.ObjectRequiredProperty) return [path, `is required (expected ${expected(error.schema)})`]
  return [path, `expected ${expected(error.schema)}, got ${given(error.value)}`]
}

function parentOf (pointer: string): string {
  return pointer.slice(0, pointer.lastIndexOf('/'))
}

/**
 * The option `written` was most likely meant to be, or undefined: the same name but for case, `_` and `-`
 * (`client_secret`), one the other begins (`timeout`, `timeoutMs`), or at most two edits away (`encryptionKey`).
 */
export function closest (written: string, names: readonly string[]): string | undefined {
  const plain = (name: string): string => name.toLowerCase().replace(/[_-]/g, '')
  const w = plain(written)
  let best: string | undefined
  let bestDistance = 3
  for (const name of names) {
    const n = plain(name)
    if (n === w) return name
    const distance = Math.min(editDistance(w, n), w.length >= 4 && (n.startsWith(w) || w.startsWith(n)) ? 1 : 3)
    if (distance < bestDistance) {
      best = name
      bestDistance = distance
    }
  }
  return best
}

/** Levenshtein distance, stopping early past 2 (nothing further is a likely slip). */
function editDistance (a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = row
  }
  return previous[b.length] as number
}

/** What a value of `schema` is, in words. */
export function expected (schema: TSchema): string {
  const own = (schema as { expected?: unknown }).expected
  if (typeof own === 'string') return own
  const s = schema as Record<string, unknown> & TSchema
  switch (s[Kind]) {
    case 'Union': return union(s.anyOf as TSchema[])
    case 'Literal': return JSON.stringify(s.const)
    case 'String': return 'a ' + sized('string', s.minLength, s.maxLength, 'characters') + (typeof s.pattern === 'string' ? ` matching /${s.pattern}/` : '')
    case 'Integer': return 'an integer' + range(s.minimum, s.maximum)
    case 'Number': return 'a number' + range(s.minimum, s.maximum)
    case 'Boolean': return 'true or false'
    case 'Array': return (s.minItems === 1 ? 'a non-empty list of ' : 'a list of ') + plural(expected(s.items as TSchema))
    case 'Function': return 'a function'
    case 'Uint8Array': return s.minByteLength !== undefined && s.minByteLength === s.maxByteLength ? `a ${String(s.minByteLength)}-byte Buffer` : 'a Buffer'
    case 'Object': return 'an object'
    case 'Any':
    case 'Unknown': return 'any value'
    default: return typeof s.description === 'string' ? s.description : String(s[Kind]).toLowerCase()
  }
}

function union (variants: TSchema[]): string {
  // `X or a list of X` reads `X or a list of them`.
  const [one, list] = variants
  if (variants.length === 2 && one !== undefined && list !== undefined && (list as { [Kind]?: unknown })[Kind] === 'Array' &&
    expected((list as unknown as { items: TSchema }).items) === expected(one)) {
    return `${expected(one)} or a list of them`
  }
  const words = variants.flatMap((variant) => (variant as { [Kind]?: unknown })[Kind] === 'Boolean' ? ['true', 'false'] : [expected(variant)])
  if (words.length <= 2) return words.join(' or ')
  return `${words.slice(0, -1).join(', ')} or ${words[words.length - 1] as string}`
}

/** The JSON shape of a schema or a value, to match a value to a union's variant. */
function shapeOf (schemaOrValue: unknown): string {
  const kind = (schemaOrValue as { [Kind]?: unknown } | null)?.[Kind]
  if (typeof kind === 'string') {
    if (kind === 'Integer' || kind === 'Number') return 'number'
    if (kind === 'Uint8Array' || kind === 'Object' || kind === 'Array' || kind === 'String' || kind === 'Boolean' || kind === 'Function') return kind.toLowerCase()
    if (kind === 'Literal') return shapeOf((schemaOrValue as { const: unknown }).const)
    return kind
  }
  const value = schemaOrValue
  if (Array.isArray(value)) return 'array'
  if (value instanceof Uint8Array) return 'uint8array'
  return value === null ? 'null' : typeof value
}

function sized (noun: string, min: unknown, max: unknown, unit: string): string {
  if (typeof min === 'number' && typeof max === 'number') return `${noun} of ${min} to ${max} ${unit}`
  if (typeof min === 'number' && min > 1) return `${noun} of ${min}+ ${unit}`
  if (min === 1) return `non-empty ${noun}` + (typeof max === 'number' ? ` of at most ${max} ${unit}` : '')
  if (typeof max === 'number') return `${noun} of at most ${max} ${unit}`
  return noun
}

function range (min: unknown, max: unknown): string {
  if (typeof min === 'number' && typeof max === 'number') return ` from ${min} to ${max}`
  if (typeof min === 'number') return ` >= ${min}`
  if (typeof max === 'number') return ` <= ${max}`
  return ''
}

/** `a string of 32+ characters` as the items of a list: `strings of 32+ characters`. */
function plural (words: string): string {
  return words.replace(/^an? (non-empty )?(\w+)/, (_, nonEmpty: string | undefined, noun: string) => `${nonEmpty ?? ''}${noun}s`)
}

/** The kind of a value, never the value itself (except numbers and booleans, which are never secrets). */
function given (value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (typeof value === 'string') return value === '' ? 'an empty string' : `a string of ${value.length} character${value.length === 1 ? '' : 's'}`
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`
  if (value instanceof Uint8Array) return `${value.length} bytes`
  if (typeof value === 'function') return 'a function'
  return `a ${typeof value === 'object' ? 'object' : typeof value}`.replace(/^a o/, 'an o')
}

/** JSON pointer (`/hooks/onRefresh`, `/encryptionKeys/1`) to an option path (`hooks.onRefresh`, `encryptionKeys[1]`), under `root`. */
export function optionPath (pointer: string, root = ''): string {
  let path = root
  for (const part of pointer.split('/').slice(1)) {
    const name = part.replace(/~1/g, '/').replace(/~0/g, '~')
    path += /^\d+$/.test(name) ? `[${name}]` : (path === '' ? name : '.' + name)
  }
  return path === '' ? '(options)' : path
}
