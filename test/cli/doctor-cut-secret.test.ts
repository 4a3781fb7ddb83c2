import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { lines, runCli, tempDir } from './capture.js'

// Node.js (so the example server, which reads the env file as Node does since this release) cuts an unquoted value
// at `#`: `SESSION_SECRET=Kq8#vR2!...` is `Kq8`. A deployment whose secret has a `#` got the whole value before the
// upgrade and a different secret after it (sessions end, stored token sets no longer open), or a refusal to start.
// doctor names each secret so cut, and the fix.

const cut = (name: string): string => `warn ${name}: cut at '#' (Node.js reads the rest as a comment): quote the value (${name}="...")`

t.test('doctor warns about each secret whose unquoted value was cut at #, naming it', async (t) => {
  const cwd = await tempDir(t)
  await writeFile(join(cwd, '.env'), [
    'SESSION_SECRET=Kq8#vR2!aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    'TOKEN_ENCRYPTION_KEY="base64:abc#def"', // quoted: read whole
    'AIHUBMIX_CLIENT_SECRET=  s3cr3t # a note', // cut too: Node reads `s3cr3t`
    'REDIS_URL=redis://127.0.0.1:6379/13  # dev', // not a secret: a comment is fine
    'PUBLIC_URL=#nothing' // not a secret, and `#` first: a comment, not a cut
  ].join('\n') + '\n', { mode: 0o600 })
  const result = await runCli(['doctor'], { cwd })
  const said = lines(result.stdout).filter((l) => l.includes('cut at'))
  t.same(said, [cut('SESSION_SECRET'), cut('AIHUBMIX_CLIENT_SECRET')], { output: result.stdout })
  t.notOk(result.stdout.includes('vR2'), 'the value is never shown')
})

t.test('the last definition is the one judged, and a variable the environment sets is not', async (t) => {
  const cwd = await tempDir(t)
  await writeFile(join(cwd, '.env'), 'SESSION_SECRET=a#b\nSESSION_SECRET="a#b"\nTOKEN_ENCRYPTION_KEY=x#y\nAIHUBMIX_CLIENT_SECRET=#whole comment\n', { mode: 0o600 })
  const result = await runCli(['doctor'], { cwd, env: { TOKEN_ENCRYPTION_KEY: 'hex:' + 'ab'.repeat(32) } })
  t.same(lines(result.stdout).filter((l) => l.includes('cut at')), [], { output: result.stdout })
})
