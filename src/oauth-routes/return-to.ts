/**
 * `returnTo` validation: only a path on the app's own origin survives; anything
 * else becomes the fallback. The rules, strictest first:
 * - a string of printable ASCII only (no whitespace, tabs, CR/LF, non-Latin-1 or
 *   full-width characters: browsers strip or fold some of them into `/` or `.`,
 *   and Node's `setHeader` throws on CR/LF and characters above U+00FF);
 * - no backslash anywhere (browsers read `\` as `/` in special URLs);
 * - starts with exactly one `/` (`//host` is a network-path reference);
 * - once resolved against a placeholder origin, it stays on that origin and
 *   its normalised path does not start with `//` (dot segments like `/.//host`).
 * The normalised path, query and fragment are returned, never the raw input.
 */
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/
const PLACEHOLDER_ORIGIN = 'http://return-to.invalid'
export const MAX_RETURN_TO_LENGTH = 2048

export function safeReturnTo (value: unknown, fallback = '/'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_RETURN_TO_LENGTH) return fallback
  if (!PRINTABLE_ASCII.test(value) || value.includes('\\')) return fallback
  if (value.charCodeAt(0) !== 0x2f /* / */ || value.charCodeAt(1) === 0x2f) return fallback
  let url: URL
  try {
    url = new URL(value, PLACEHOLDER_ORIGIN)
  } catch {
    return fallback
  }
  if (url.origin !== PLACEHOLDER_ORIGIN || url.username !== '' || url.password !== '') return fallback
  const path = url.pathname
  if (path.startsWith('//')) return fallback
  const result = path + url.search + url.hash
  return PRINTABLE_ASCII.test(result) ? result : fallback
}
