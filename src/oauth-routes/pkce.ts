import { createHash, randomBytes } from 'node:crypto'

/** 256 bits from the CSPRNG, base64url (43 characters). */
export function randomToken (): string {
  return randomBytes(32).toString('base64url')
}

/** RFC 7636 S256: BASE64URL(SHA256(ASCII(verifier))). */
export function s256 (verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url')
}

export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/
