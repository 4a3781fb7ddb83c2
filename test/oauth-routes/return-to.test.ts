import t from 'tap'
import { safeReturnTo } from '../../src/oauth-routes/return-to.js'

// returnTo: only a path on the app's own origin survives.
// One table, every row a way browsers or servers have been tricked before.
const REJECTED: Array<[string, unknown]> = [
  ['protocol-relative', '//evil.example'],
  ['protocol-relative with path', '//evil.example/path'],
  ['triple slash', '///evil.example'],
  ['backslash after slash', '/\\evil.example'],
  ['double backslash', '\\\\evil.example'],
  ['backslash then slash', '\\/evil.example'],
  ['slash backslash slash', '/\\/evil.example'],
  ['backslash in the middle', '/ok\\..\\..\\evil'],
  ['absolute https', 'https://evil.example'],
  ['absolute http', 'http://evil.example/'],
  ['scheme relative mixed case', 'HTTPS://evil.example'],
  ['javascript scheme', 'javascript:alert(1)'],
  ['javascript with a comment', 'javascript:alert(1)//x'],
  ['data scheme', 'data:text/html,<script>alert(1)</script>'],
  ['vbscript', 'vbscript:msgbox(1)'],
  ['tab between slashes', '/\t/evil.example'],
  ['newline between slashes', '/\n/evil.example'],
  ['carriage return between slashes', '/\r/evil.example'],
  ['CRLF header injection', '/\r\nSet-Cookie: x=y'],
  ['LF header injection', '/ok\nLocation: https://evil.example'],
  ['space between slashes', '/ /evil.example'],
  ['leading space', ' /ok'],
  ['leading tab', '\t/ok'],
  ['trailing space', '/ok '],
  ['NUL byte', '/ok\u0000'],
  ['percent-encoded slash start is fine only as a path: raw //', '//%2e%2e'],
  ['full-width slash', '\uff0f\uff0fevil.example'],
  ['full-width solidus after slash', '/\uff0fevil.example'],
  ['ideographic full stop', '/\u3002evil'],
  ['non-Latin-1 character', '/caf\u00e9\u4e2d'],
  ['right-to-left override', '/\u202eevil'],
  ['zero-width space between slashes', '/\u200b/evil.example'],
  ['userinfo @ host', '@evil.example'],
  ['userinfo absolute', 'https://app@evil.example'],
  ['dot segments into //', '/.//evil.example'],
  ['dot-dot segments into //', '/a/..//evil.example'],
  ['dot segment then backslash', '/./\\evil.example'],
  ['empty string', ''],
  ['relative path', 'ok/path'],
  ['dot relative', './ok'],
  ['query only', '?x=1'],
  ['fragment only', '#top'],
  ['very long', '/' + 'a'.repeat(5000)],
  ['number', 42],
  ['array (repeated parameter)', ['/a', '/b']],
  ['object', { path: '/' }],
  ['null', null],
  ['undefined', undefined],
  ['vertical tab', '/\u000b/evil.example'],
  ['form feed', '/\f/evil.example'],
  ['DEL character', '/ok\u007f'],
  ['encoded CRLF stays encoded but control raw is rejected', '/\u0085evil'],
  ['unicode line separator', '/\u2028evil']
]

const ACCEPTED: Array<[string, string, string]> = [
  ['root', '/', '/'],
  ['simple path', '/dashboard', '/dashboard'],
  ['path with query', '/a/b?x=1&y=2', '/a/b?x=1&y=2'],
  ['path with fragment', '/a#section', '/a#section'],
  ['percent-encoded slashes stay a path', '/%2F%2Fevil.example', '/%2F%2Fevil.example'],
  ['percent-encoded backslash stays a path', '/%5Cevil.example', '/%5Cevil.example'],
  ['dot segments normalised', '/a/./b/../c', '/a/c'],
  ['at sign inside a path', '/users/@me', '/users/@me'],
  ['colon inside a path', '/a:b', '/a:b']
]

t.test('rejected returnTo values fall back to /', async (t) => {
  t.ok(REJECTED.length >= 50, `corpus has ${REJECTED.length} rejected variants`)
  for (const [name, value] of REJECTED) {
    t.equal(safeReturnTo(value), '/', name)
  }
})

t.test('the fallback is configurable', async (t) => {
  t.equal(safeReturnTo('//evil.example', '/home'), '/home')
})

t.test('same-origin paths survive, normalised', async (t) => {
  for (const [name, value, expected] of ACCEPTED) {
    t.equal(safeReturnTo(value), expected, name)
  }
})

t.test('whatever survives is a header-safe same-origin path', async (t) => {
  for (const [, value] of [...REJECTED, ...ACCEPTED]) {
    const out = safeReturnTo(value)
    t.ok(/^\/(?![/\\])[\x21-\x7e]*$/.test(out), `safe: ${JSON.stringify(out)}`)
    t.equal(new URL(out, 'https://app.example').origin, 'https://app.example')
  }
})
