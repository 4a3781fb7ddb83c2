import t from 'tap'
import { createHash } from 'node:crypto'
import { randomToken, s256, TOKEN_PATTERN } from '../../src/oauth-routes/pkce.js'

t.test('random tokens: 256 bits, base64url, all different', async (t) => {
  const seen = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const token = randomToken()
    t.match(token, TOKEN_PATTERN)
    seen.add(token)
  }
  t.equal(seen.size, 200)
})

t.test('S256 is RFC 7636 (appendix B example)', async (t) => {
  t.equal(s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
  t.equal(s256('abc'), createHash('sha256').update('abc').digest('base64url'))
})
