import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** 256 bits from the CSPRNG, base64url (43 characters). */
export function randomToken (): string {
  return randomBytes(32).toString('base64url')
}

/** RFC 7636 S256: BASE64URL(SHA256(ASCII(verifier))). */
export function s256 (verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url')
}

export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

/** Constant-time string comparison that returns false (never throws) on a length mismatch. */
export function safeEqual (a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8')
  const bb = Buffer.from(b, 'utf8')
  if (ab.length !== bb.length) {
    // Compare against itself so the time does not depend on where a prefix differs.
    timingSafeEqual(ab, ab)
    return false
  }
  return timingSafeEqual(ab, bb)
}
