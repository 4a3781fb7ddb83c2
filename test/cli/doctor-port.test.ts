import t from 'tap'
import { lines, runCli, tempDir } from './capture.js'

// `PORT=99999` without PUBLIC_URL: doctor names PORT, never reports a PUBLIC_URL that was never set, and the
// HTTPS line does not claim that "nothing" uses https. One mistake, one FAIL line: the redirect URI, which cannot be
// checked without the origin, leaves it to the configuration line.

function byName (stdout: string): Map<string, string> {
  return new Map(lines(stdout).map((l) => [l.slice(5, l.indexOf(':')), l]))
}

t.test('a PORT that is not a port number is named; PUBLIC_URL, never set, is not blamed', async (t) => {
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: { PORT: '99999' }, cwd })
  t.equal(result.code, 1)
  const checks = byName(result.stdout)
  t.equal(checks.get('configuration'), 'FAIL configuration: PORT: must be a port number (0-65535)')
  t.equal(checks.get('redirect URI'), undefined, 'said by the configuration line')
  t.same(lines(result.stdout).filter((l) => l.startsWith('FAIL')), ['FAIL configuration: PORT: must be a port number (0-65535)'])
  t.equal(checks.get('HTTPS'), 'warn HTTPS: cannot check: PUBLIC_URL is not set and PORT is not a port number, so its default (http://localhost:$PORT) is unknown')
  t.notMatch(result.stdout, /PUBLIC_URL is not an http\(s\) URL|: {2}use https| use https$/m)
})

t.test('with the provider\'s URL known, HTTPS says what it checked, and what it could not', async (t) => {
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: { PORT: '99999', AIHUBMIX_BASE_URL: 'https://127.0.0.1:1', AIHUBMIX_CLIENT_ID: 'client_x', AIHUBMIX_CLIENT_SECRET: 'secret_x' }, cwd })
  t.equal(byName(result.stdout).get('HTTPS'), 'ok   HTTPS: AIHUBMIX_BASE_URL uses https (not checked: PUBLIC_URL is not set and PORT is not a port number, so its default (http://localhost:$PORT) is unknown)')
})

t.test('a PUBLIC_URL that is set and wrong is still named as such', async (t) => {
  const cwd = await tempDir(t)
  const result = await runCli(['doctor'], { env: { PUBLIC_URL: 'ftp://app.example.com' }, cwd })
  t.same(lines(result.stdout).filter((l) => l.startsWith('FAIL')), ['FAIL configuration: PUBLIC_URL: must be an http: or https: URL'])
  // With another variable refused first, the redirect line still names PUBLIC_URL: a mistake of its own.
  const both = await runCli(['doctor'], { env: { PORT: '99999', PUBLIC_URL: 'ftp://app.example.com' }, cwd })
  t.equal(byName(both.stdout).get('redirect URI'), 'FAIL redirect URI: cannot check: PUBLIC_URL is not an http(s) URL')
})
