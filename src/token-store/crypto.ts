import { createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { TokenStoreOptionsError, UnsealFailedError } from './errors.js'

/**
 * Sealing: AES-256-GCM with a key ring.
 *
 * Sealed format (a string, safe for any store):
 *
 *     v1.<base64url( keyId[4] | iv[12] | tag[16] | ciphertext )>
 *
 * - `keyId` is the first 4 bytes of SHA-256(key): `unseal` picks the key of the ring by it, so the ring can
 *   rotate (the first key seals, every key opens).
 * - `iv` is random per seal (12 bytes, the GCM standard size).
 * - The additional authenticated data is `"v1\0" + context` where `context` names the storage slot
 *   (`tok:<sid>`, `rec:<key>`), or, for values handed to the browser, `val:<name>` (a login cookie's name and
 *   state): a blob copied under another session's key, or another cookie's name, does not open.
 * - Only the canonical base64url encoding is accepted, so changing any character of a sealed value makes it fail.
 */

export type EncryptionKeyInput = string | Uint8Array

const VERSION = 'v1'
const PREFIX = VERSION + '.'
const KEY_BYTES = 32
const KEY_ID_BYTES = 4
const IV_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = KEY_ID_BYTES + IV_BYTES + TAG_BYTES
/** Minimum length of a passphrase given as a key (it is stretched with HKDF-SHA256). */
export const MIN_PASSPHRASE_LENGTH = 32
/** HKDF `info` for passphrases: fixed, so the same passphrase always gives the same key. */
const PASSPHRASE_INFO = 'fastify-aihubmix/token-store v1 sealing key'

interface RingKey {
  readonly id: string // hex of the 4-byte key id
  readonly idBytes: Buffer
  readonly key: KeyObject
}

/** The parsed encryption keys: the first one seals, all of them open. Holds KeyObjects, never printable bytes. */
export class KeyRing {
  readonly #primary: RingKey
  readonly #byId: Map<string, RingKey>

  constructor (keys: readonly Buffer[]) {
    const ring: RingKey[] = keys.map(toRingKey)
    const first = ring[0]
    if (first === undefined) throw new TokenStoreOptionsError('encryptionKeys', 'at least one key is required')
    this.#primary = first
    this.#byId = new Map(ring.map(k => [k.id, k]))
  }

  /** Key ids (hex) in ring order; the first one seals. Safe to log. */
  get keyIds (): string[] {
    return [this.#primary.id, ...[...this.#byId.keys()].filter(id => id !== this.#primary.id)]
  }

  seal (plaintext: string, context: string): string {
    const k = this.#primary
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', k.key, iv)
    cipher.setAAD(aad(context))
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    const tag = cipher.getAuthTag()
    return PREFIX + Buffer.concat([k.idBytes, iv, tag, ciphertext]).toString('base64url')
  }

  /**
   * Opens a sealed value; throws UnsealFailedError (never with the value in the message): `reason: 'unknown-key'`
   * (with `keyId`) when it is well-formed but names a key that is not in this ring, `'invalid'` for anything else.
   */
  unseal (sealed: string, context: string): string {
    const raw = parse(sealed)
    const keyId = raw.subarray(0, KEY_ID_BYTES).toString('hex')
    const key = this.#byId.get(keyId)
    if (key === undefined) throw UnsealFailedError.unknownKey(keyId)
    const iv = raw.subarray(KEY_ID_BYTES, KEY_ID_BYTES + IV_BYTES)
    const tag = raw.subarray(KEY_ID_BYTES + IV_BYTES, HEADER_BYTES)
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(aad(context))
      decipher.setAuthTag(tag)
      return Buffer.concat([decipher.update(raw.subarray(HEADER_BYTES)), decipher.final()]).toString('utf8')
    } catch (err) {
      throw new UnsealFailedError('authentication failed (tampered, or sealed for another slot or key)', { cause: err })
    }
  }

  /** Whether a well-formed sealed value was sealed with the key that seals now (the first of the ring). */
  sealedWithPrimary (sealed: string): boolean {
    try {
      return parse(sealed).subarray(0, KEY_ID_BYTES).equals(this.#primary.idBytes)
    } catch {
      return false
    }
  }

  /**
   * The key id of a well-formed sealed value whose key is not in this ring, else undefined (well-formed and
   * sealed with a key of the ring, or not a sealed value at all). Decrypts nothing: for looking before taking.
   */
  unknownKeyOf (sealed: string): string | undefined {
    let raw: Buffer
    try {
      raw = parse(sealed)
    } catch {
      return undefined
    }
    const keyId = raw.subarray(0, KEY_ID_BYTES).toString('hex')
    return this.#byId.has(keyId) ? undefined : keyId
  }
}

/** The decoded bytes of a sealed value (key id, iv, tag, ciphertext); throws UnsealFailedError when malformed. */
function parse (sealed: string): Buffer {
  if (typeof sealed !== 'string' || !sealed.startsWith(PREFIX)) {
    throw new UnsealFailedError('unknown format or version')
  }
  const body = sealed.slice(PREFIX.length)
  const raw = Buffer.from(body, 'base64url')
  if (raw.length < HEADER_BYTES || raw.toString('base64url') !== body) {
    throw new UnsealFailedError('malformed encoding')
  }
  return raw
}

function aad (context: string): Buffer {
  return Buffer.from(VERSION + '\0' + context, 'utf8')
}

function toRingKey (bytes: Buffer): RingKey {
  const idBytes = createHash('sha256').update(bytes).digest().subarray(0, KEY_ID_BYTES)
  return { id: idBytes.toString('hex'), idBytes, key: createSecretKey(bytes) }
}

/**
 * Derives a 32-byte sealing key from a passphrase (>= 32 characters) with HKDF-SHA256 and a fixed `info`.
 * Passing the passphrase itself as `encryptionKeys` gives the same key; this function is for callers who
 * want the Buffer (e.g. to derive the token key from a session secret: `sealKeyFromSecret(SESSION_SECRET)`
 * yields a key that is independent of the cookie-signing use of that secret).
 */
export function sealKeyFromSecret (secret: string): Buffer {
  if (typeof secret !== 'string' || secret.length < MIN_PASSPHRASE_LENGTH) {
    throw new TokenStoreOptionsError('secret', `must be a string of at least ${MIN_PASSPHRASE_LENGTH} characters`)
  }
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), PASSPHRASE_INFO, KEY_BYTES))
}

/**
 * Parses one key: a 32-byte Buffer/Uint8Array, `base64:<32 bytes>`, `hex:<64 hex digits>`, or a passphrase of
 * at least 32 characters. `path` names the option in errors; the key material never appears in a message.
 */
export function parseEncryptionKey (input: unknown, path: string): Buffer {
  if (input instanceof Uint8Array) {
    if (input.length !== KEY_BYTES) throw new TokenStoreOptionsError(path, `a binary key must be exactly ${KEY_BYTES} bytes, got ${input.length}`)
    return Buffer.from(input)
  }
  if (typeof input !== 'string') throw new TokenStoreOptionsError(path, 'must be a string or a 32-byte Buffer')
  const listed = keyListInOneString(input)
  if (listed !== undefined && (input.startsWith('base64:') || input.startsWith('hex:'))) {
    throw new TokenStoreOptionsError(path, `holds ${listed} keys separated by commas, and a string is one key: give a list ` +
      'as an array (e.g. process.env.TOKEN_ENCRYPTION_KEY.split(\',\').map((k) => k.trim()))')
  }
  if (input.startsWith('base64:')) {
    const text = input.slice('base64:'.length)
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) throw new TokenStoreOptionsError(path, 'base64: key is not valid base64')
    const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
    if (bytes.length !== KEY_BYTES) throw new TokenStoreOptionsError(path, `base64: key must decode to exactly ${KEY_BYTES} bytes, got ${bytes.length}`)
    return bytes
  }
  if (input.startsWith('hex:')) {
    const text = input.slice('hex:'.length)
    if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new TokenStoreOptionsError(path, `hex: key must be exactly ${KEY_BYTES * 2} hex digits`)
    return Buffer.from(text, 'hex')
  }
  if (input.length < MIN_PASSPHRASE_LENGTH) {
    throw new TokenStoreOptionsError(path, `a passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters (or use "base64:..." / "hex:..." for a raw key)`)
  }
  return sealKeyFromSecret(input)
}

/**
 * What to say of a secret or key with a blank or a quote at its start or end, or undefined. Taken as it is, it may be
 * another secret than the one meant, silently (a key list `"old, new"` split on `,` keeps the blank; an env file read
 * by Docker keeps the quotes): the next instance, or the next rotation step, could open nothing. It is not refused: a
 * deployment running with such a key (a Kubernetes secret made from a file ends in a newline) must go on starting.
 */
export function untrimmed (value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const keep = 'if a running deployment uses it so, keep it until a rotation replaces it'
  if (/^["']|["']$/.test(value.trim())) {
    return 'has a quote at its start or end, and is used as written: another secret than the one between the quotes (an ' +
      `env file may keep them, as Docker's --env-file does). If that was not meant, remove the quotes where the value is set; ${keep}`
  }
  if (!/^\s|\s$/.test(value)) return undefined
  return 'has a blank at its start or end, and is used as written: another secret than the trimmed one (a list "a, b" ' +
    `split on "," keeps the blank). If that was not meant, trim each, e.g. value.split(',').map((s) => s.trim()); ${keep}`
}

/**
 * The prefix a passphrase looks like it lacks: exactly what `openssl rand -base64 32` (44 characters, one `=`) or
 * `openssl rand -hex 32` (64 hex digits) prints. Such a value is used as a passphrase, which is safe, but writing
 * the prefix later makes it another key.
 */
export function missingKeyPrefix (input: unknown): 'base64:' | 'hex:' | undefined {
  if (typeof input !== 'string') return undefined
  if (/^[A-Za-z0-9+/]{43}=$/.test(input)) return 'base64:'
  if (/^[0-9a-fA-F]{64}$/.test(input)) return 'hex:'
  return undefined
}

/**
 * A prefix that reads like a key format but is neither of the two (`base64url:`, `b64:`, `HEX:`, `base64 :`): such a
 * value is taken as a passphrase, which is safe but not what its writer meant. Only the prefix is answered (it may be
 * logged; the key after it never is).
 */
export function unknownKeyPrefix (input: unknown): string | undefined {
  if (typeof input !== 'string' || input.startsWith('base64:') || input.startsWith('hex:')) return undefined
  return /^(?:base64url|base64|b64url|b64|base32|base16|hex)\s*:/i.exec(input)?.[0]
}

/**
 * How many keys a string seems to hold when it reads as a comma-separated list of them (each part a `base64:` or
 * `hex:` key, or long enough for a passphrase): `TOKEN_ENCRYPTION_KEY=new,old` given as it is, where a list is an
 * array. undefined when it does not. A `base64:`/`hex:` key never holds a comma; a passphrase may, so this is a hint.
 */
export function keyListInOneString (input: unknown): number | undefined {
  if (typeof input !== 'string' || !input.includes(',')) return undefined
  const parts = input.split(',').map((part) => part.trim())
  const keyLike = (part: string): boolean => part.startsWith('base64:') || part.startsWith('hex:') || part.length >= MIN_PASSPHRASE_LENGTH
  return parts.every(keyLike) ? parts.length : undefined
}

/** Parses `encryptionKeys` (one key or a list, first seals) into a KeyRing. Duplicate keys are an error. */
export function createKeyRing (input: unknown, path = 'encryptionKeys'): KeyRing {
  const list = Array.isArray(input) ? input : [input]
  if (list.length === 0) throw new TokenStoreOptionsError(path, 'at least one key is required')
  const single = !Array.isArray(input)
  const keys = list.map((k, i) => parseEncryptionKey(k, single ? path : `${path}[${i}]`))
  const seen = new Map<string, number>()
  keys.forEach((k, i) => {
    const id = toRingKey(k).id
    const earlier = seen.get(id)
    if (earlier !== undefined) throw new TokenStoreOptionsError(`${path}[${i}]`, `is the same key as ${path}[${earlier}]`)
    seen.set(id, i)
  })
  return new KeyRing(keys)
}
