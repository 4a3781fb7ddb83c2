import t from 'tap'
import { buildApp, KEY_A, KEY_B, sid as newSid, sleep } from '../helpers/token-store.js'
import { cleanupPrefix, connectRedis, uniquePrefix } from '../helpers/redis.js'

// Key rotation as the README prescribes it ([A] -> [A, B] -> [B, A] -> [B] once "nothing sealed with the old key can
// remain: after the longest a stored value lives"). An index entry whose session ended without endSession (its
// record expired, nobody listed) was only dropped by a listing or a trim while its key was still in the ring; each
// new sign-in of the user pushes the hash's TTL further. Once the old key was gone the entry could never be dropped
// (unknown-key entries are "neither listed, nor ended, nor dropped"): it stayed in the hash as long as the user
// kept signing in, and every listing logged an error asking to add back a key that the README said to drop. Now
// each sign-in tidies the index and seals live entries again with the current key.

t.test('an index entry of a long-ended session does not outlive the key rotation', async (t) => {
  const redis = await connectRedis(t)
  if (redis === undefined) return
  const prefix = uniquePrefix('fr-rot')
  cleanupPrefix(t, redis, prefix)

  // Sealed with A: sessions that may live 1.5 s at most (ttlMs), never listed, ended by their records' TTL.
  const v1 = await buildApp(t, { redis, keyPrefix: prefix, encryptionKeys: KEY_A })
  await v1.tokenStore.addUserSession('12345', newSid(), { userAgent: 'old', ttlMs: 1500 })
  await v1.close()
  await sleep(500)

  // Deploys 1 and 2 of the rotation; the user signs in again meanwhile (no listing).
  const v2 = await buildApp(t, { redis, keyPrefix: prefix, encryptionKeys: [KEY_B, KEY_A] })
  const current = newSid()
  await v2.tokenStore.addUserSession('12345', current, { userAgent: 'new', ttlMs: 3600_000 })
  await v2.close()
  await sleep(1200)

  // Deploy 3: A dropped, after the longest life of anything sealed with it (1.5 s).
  const logs: Array<Record<string, unknown>> = []
  const v3 = await buildApp(t, { redis, keyPrefix: prefix, encryptionKeys: [KEY_B] }, { logs })
  await v3.tokenStore.listUserSessions('12345')
  const fields = await redis.hkeys(`${prefix}{u:12345}:sessions`)
  t.equal(fields.length, 1, 'the index holds only the entry of a session that can still live')
  t.same(logs.filter((l) => (l.level as number) >= 50).map((l) => l.msg), [], 'no error asks for the dropped key back')
  t.ok(await redis.pttl(`${prefix}{u:12345}:sessions`) > 3000_000, '(the hash lives on with the new sign-in)')
})
