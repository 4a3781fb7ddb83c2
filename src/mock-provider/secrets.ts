import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** `<kind>_<prefix>_<random>`: 192 random bits, base64url (URL-safe, so it reads the same in a query). */
export function newSecret (kind: 'at' | 'rt' | 'code' | 'secret', prefix: string): string {
  return `${kind}_${prefix}_${randomBytes(24).toString('base64url')}`
}

/** `client_<random>`: client ids are public, so they carry no leak-sweep marker. */
export function newClientId (): string {
  return `client_${randomBytes(12).toString('hex')}`
}

function sha256 (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** Constant-time comparison of two secrets of any length. */
export function secretEquals (a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}

/** The PKCE S256 transform: BASE64URL(SHA256(ascii(verifier))). */
export function s256Challenge (verifier: string): string {
  return sha256(verifier).toString('base64url')
}
