import t from 'tap'
import { randomBytes } from 'node:crypto'
import { UnsealFailedError, TokenStoreOptionsError } from '@fastify-aihubmix/token-store'
import { createKeyRing, sealKeyFromSecret } from '../../src/token-store/crypto.js'
import { KEY_A, KEY_B } from '../helpers/token-store.js'

t.test('seal/unseal round trip; the sealed value shows no plaintext', async t => {
  const ring = createKeyRing(KEY_A)
  const plaintext = JSON.stringify({ accessToken: 'AT-SECRET-roundtrip', emoji: 'キー🔑' })
  const sealed = ring.seal(plaintext, 'tok:s1')
  t.match(sealed, /^v1\.[A-Za-z0-9_-]+$/, 'versioned, base64url')
  t.notMatch(sealed, 'AT-SECRET', 'no plaintext in the sealed value')
  t.equal(ring.unseal(sealed, 'tok:s1'), plaintext)
  t.not(ring.seal(plaintext, 'tok:s1'), sealed, 'a random IV per seal')
})

t.test('changing any character of a sealed value makes it fail', async t => {
  const ring = createKeyRing(KEY_A)
  const sealed = ring.seal('{"a":"secret value"}', 'tok:s1')
  let failures = 0
  for (let i = 0; i < sealed.length; i++) {
    const original = sealed[i] as string
    const replacement = original === 'A' ? 'B' : (original === '.' ? ',' : 'A')
    const tampered = sealed.slice(0, i) + replacement + sealed.slice(i + 1)
    try {
      ring.unseal(tampered, 'tok:s1')
    } catch (err) {
      if (err instanceof UnsealFailedError && (err as { code?: string }).code === 'FST_AIHUBMIX_UNSEAL_FAILED') failures++
    }
  }
  t.equal(failures, sealed.length, 'every single-character change is rejected')
  // and every bit of the decoded payload
  const body = Buffer.from(sealed.slice(3), 'base64url')
  let bitFailures = 0
  for (let i = 0; i < body.length; i++) {
    const copy = Buffer.from(body)
    copy[i] = (copy[i] as number) ^ 0x01
    t.throws(() => ring.unseal('v1.' + copy.toString('base64url'), 'tok:s1'), { code: 'FST_AIHUBMIX_UNSEAL_FAILED' }) && bitFailures++
  }
  t.equal(bitFailures, body.length)
})

t.test('truncated, extended, garbage and other versions fail', async t => {
  const ring = createKeyRing(KEY_A)
  const sealed = ring.seal('x', 'c')
  for (const bad of [sealed.slice(0, -1), sealed + 'A', '', 'v1.', 'v2' + sealed.slice(2), 'garbage', sealed.slice(0, 20)]) {
    t.throws(() => ring.unseal(bad, 'c'), { code: 'FST_AIHUBMIX_UNSEAL_FAILED' })
  }
})

t.test('a value sealed for one storage key does not open under another (AAD)', async t => {
  const ring = createKeyRing(KEY_A)
  const sealed = ring.seal('{"accessToken":"x"}', 'tok:session-1')
  t.throws(() => ring.unseal(sealed, 'tok:session-2'), { code: 'FST_AIHUBMIX_UNSEAL_FAILED' })
  t.throws(() => ring.unseal(sealed, 'rec:session-1'), { code: 'FST_AIHUBMIX_UNSEAL_FAILED' })
  t.equal(ring.unseal(sealed, 'tok:session-1'), '{"accessToken":"x"}')
})

t.test('a value sealed with another key does not open', async t => {
  const sealed = createKeyRing(KEY_A).seal('x', 'c')
  t.throws(() => createKeyRing(KEY_B).unseal(sealed, 'c'), {
    code: 'FST_AIHUBMIX_UNSEAL_FAILED',
    message: /not in the key ring/
  })
})

t.test('rotation: the first key seals, every key opens', async t => {
  const oldRing = createKeyRing(KEY_A)
  const oldSealed = oldRing.seal('old', 'c')
  const rotated = createKeyRing([KEY_B, KEY_A])
  t.equal(rotated.unseal(oldSealed, 'c'), 'old', 'a value sealed with the old key opens')
  const newSealed = rotated.seal('new', 'c')
  t.equal(createKeyRing(KEY_B).unseal(newSealed, 'c'), 'new', 'new values are sealed with the first key')
  t.throws(() => oldRing.unseal(newSealed, 'c'), { code: 'FST_AIHUBMIX_UNSEAL_FAILED' }, 'the old key alone cannot open them')
  t.same(rotated.keyIds.length, 2)
})

t.test('key formats: Buffer, base64:, hex:, passphrase', async t => {
  const raw = randomBytes(32)
  const fromBuffer = createKeyRing(raw)
  const sealed = fromBuffer.seal('same key', 'c')
  t.equal(createKeyRing('base64:' + raw.toString('base64')).unseal(sealed, 'c'), 'same key')
  t.equal(createKeyRing('base64:' + raw.toString('base64url')).unseal(sealed, 'c'), 'same key', 'base64url accepted too')
  t.equal(createKeyRing('hex:' + raw.toString('hex')).unseal(sealed, 'c'), 'same key')
  t.equal(createKeyRing(new Uint8Array(raw)).unseal(sealed, 'c'), 'same key', 'a plain Uint8Array works')

  const passphrase = 'correct horse battery staple, twice over'
  const fromPassphrase = createKeyRing(passphrase).seal('p', 'c')
  t.equal(createKeyRing(sealKeyFromSecret(passphrase)).unseal(fromPassphrase, 'c'), 'p', 'sealKeyFromSecret derives the same key')
  t.equal(sealKeyFromSecret(passphrase).length, 32)
  t.notSame(sealKeyFromSecret(passphrase), Buffer.from(passphrase).subarray(0, 32), 'derived, not truncated')
  t.throws(() => createKeyRing('another passphrase of enough length!!').unseal(fromPassphrase, 'c'))
})

t.test('bad keys: a clear error that names the option, never the key', async t => {
  const cases: Array<[unknown, RegExp]> = [
    [Buffer.alloc(16), /"encryptionKeys".*exactly 32 bytes, got 16/],
    ['short passphrase', /"encryptionKeys".*at least 32 characters/],
    ['base64:' + randomBytes(16).toString('base64'), /"encryptionKeys".*exactly 32 bytes, got 16/],
    ['base64:not base64 at all!', /"encryptionKeys".*not valid base64/],
    ['hex:abcd', /"encryptionKeys".*64 hex digits/],
    ['hex:' + 'zz'.repeat(32), /"encryptionKeys".*64 hex digits/],
    [42, /"encryptionKeys".*string or a 32-byte Buffer/],
    [[], /"encryptionKeys".*at least one key/],
    [[KEY_A, 'too short'], /"encryptionKeys\[1\]".*at least 32 characters/],
    [[KEY_A, KEY_B, KEY_A], /"encryptionKeys\[2\]".*same key as encryptionKeys\[0\]/]
  ]
  for (const [input, message] of cases) {
    let thrown: unknown
    try {
      createKeyRing(input)
    } catch (err) {
      thrown = err
    }
    t.ok(thrown instanceof TokenStoreOptionsError, `rejected: ${message}`)
    t.match(thrown, { code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS', message })
    if (typeof input === 'string') t.notMatch((thrown as Error).message, input, 'the key is not echoed')
  }
  t.throws(() => sealKeyFromSecret('too short'), { code: 'FST_AIHUBMIX_TOKEN_STORE_OPTIONS' })
})

t.test('printing a key ring shows no key material', async t => {
  const raw = randomBytes(32)
  const ring = createKeyRing(raw)
  const { inspect } = await import('node:util')
  const printed = inspect(ring, { depth: 10, showHidden: true }) + JSON.stringify(ring)
  t.notMatch(printed, raw.toString('hex'))
  t.notMatch(printed, raw.toString('base64'))
})
