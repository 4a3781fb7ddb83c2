import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Every line of SECURITY.md (the project's security model, ../shared/SECURITY.md)
 * and the tests that prove it. This file is the table the issue asks for; the test
 * below keeps it honest: every named test exists, under that exact title, and
 * (where SECURITY.md is at hand) every line of it has an entry.
 */
type Proof = [file: string, title: string]
export const SECURITY_MAP: Array<{ line: string, proofs: Proof[] }> = [
  // Starting a login
  { line: 'State and PKCE verifier: fresh CSPRNG values', proofs: [['security/login-start.test.ts', 'state and PKCE values are fresh, 256-bit, base64url, per login'], ['security/login-start.test.ts', 'a login state expires (its life is configurable, 10 minutes by default)'], ['oauth-routes/callback-state.test.ts', 'reused state: the second visit is refused'], ['oauth-routes/callback-state.test.ts', 'state from another browser (login CSRF / code injection)'], ['oauth-routes/pkce.test.ts', 'S256 is RFC 7636 (appendix B example)'], ['oauth-routes/login-cookie-checks.test.ts', 'the verifier never reaches the page, an answer or a log line'], ['oauth-routes/login-cookie-checks.test.ts', 'single use: a replayed callback never reaches the token endpoint, concurrent or later'], ['oauth-routes/login-cookie-checks.test.ts', 'a tampered, swapped, renamed, forged or expired login cookie fails as invalid_state']] },
  { line: 'Several tabs may start logins at once', proofs: [['oauth-routes/login-flow.test.ts', 'several tabs can log in at once; each finishes on its own'], ['oauth-routes/login-cookie-bounds.test.ts', 'a browser keeps a handful of pending logins at most: the oldest are dropped, the newest all finish']] },
  { line: 'The authorize URL is built only from configuration', proofs: [['oauth-routes/callback-state.test.ts', 'query parameters of /auth/login cannot steer the authorize URL'], ['security/session-cookie.test.ts', 'https public URL: __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain']] },
  { line: 'Anonymous traffic to `/auth/login` cannot fill the store', proofs: [['security/login-start.test.ts', 'anonymous sign-in starts write nothing to Redis: no session, no login record'], ['oauth-routes/anonymous-visitors.test.ts', 'a visitor who never signs in writes nothing to the session store or any other store'], ['oauth-routes/login-cookie-bounds.test.ts', 'a pending login\'s cookie is small whatever returnTo is; a returnTo too long to carry falls back']] },
  // returnTo
  { line: 'Only a path on the app\'s own origin survives', proofs: [['oauth-routes/return-to.test.ts', 'rejected returnTo values fall back to /'], ['oauth-routes/return-to.test.ts', 'whatever survives is a header-safe same-origin path'], ['oauth-routes/callback-state.test.ts', 'returnTo cannot leave the origin through the whole flow']] },
  // Callback
  { line: 'State missing, wrong, unknown, expired, already used, repeated', proofs: [['oauth-routes/callback-state.test.ts', 'missing state'], ['oauth-routes/callback-state.test.ts', 'wrong (unknown) state'], ['oauth-routes/callback-state.test.ts', 'repeated state (?state=a&state=b)'], ['oauth-routes/callback-state.test.ts', 'reused state: the second visit is refused'], ['oauth-routes/callback-state.test.ts', 'state from another browser (login CSRF / code injection)'], ['security/login-start.test.ts', 'a login state expires (its life is configurable, 10 minutes by default)'], ['oauth-routes/login-cookie-checks.test.ts', 'a tampered, swapped, renamed, forged or expired login cookie fails as invalid_state'], ['oauth-routes/login-cookie-checks.test.ts', 'single use: a replayed callback never reaches the token endpoint, concurrent or later'], ['oauth-routes/login-cookie-checks.test.ts', 'a login started on one instance finishes on another, once']] },
  { line: 'Comparing state must not throw on a length mismatch', proofs: [['oauth-routes/pkce.test.ts', 'safeEqual never throws, whatever the lengths'], ['oauth-routes/callback-state.test.ts', 'malformed state, short and long (no throw on length mismatch)']] },
  { line: '`error=` from the provider: mapped to a fixed set of codes', proofs: [['oauth-routes/callback-state.test.ts', 'provider error= is mapped to a fixed code, never reflected'], ['browser/error-states.test.ts', 'an error parameter carrying markup is never echoed']] },
  { line: 'Oversize or badly encoded parameters: 4xx, never 5xx.', proofs: [['oauth-routes/callback-state.test.ts', 'oversize and badly encoded parameters: 4xx or a clean refusal, never 5xx']] },
  { line: 'Success: the session id is regenerated', proofs: [['token-store/cookie-sessions.test.ts', 'logout and a new login end the old cookie; endSession deletes the record and the token set'], ['security/callback-success.test.ts', 'the pre-login session is destroyed in the store at login'], ['oauth-routes/login-flow.test.ts', 'the pre-login session id does not authenticate after login'], ['oauth-routes/login-flow.test.ts', 'the whole flow: login → provider → callback → info and top-up → logout']] },
  { line: 'Popup mode: `postMessage` to the app\'s exact origin', proofs: [['oauth-routes/login-flow.test.ts', 'popup mode answers a page that posts to the app origin only, then closes'], ['browser/popup-messages.test.ts', 'synthetic message events: only the page\'s own origin, from its own popup, is believed'], ['browser/popup-messages.test.ts', 'a sign-in message posted from the provider\'s origin inside the popup is ignored']] },
  // Token endpoint answers
  { line: 'Non-JSON, `null`, missing `access_token`, a 200 that carries an error', proofs: [['security/token-exchange-faults.test.ts', 'a broken token endpoint fails the login cleanly'], ['security/callback-success.test.ts', 'the scopes actually granted are stored and used'], ['oauth-routes/user-sessions.test.ts', 'userinfo failing at sign-in refuses the sign-in with userinfo_failed; no session is created']] },
  // Session cookie
  { line: '`HttpOnly`, `SameSite=Lax`', proofs: [['security/session-cookie.test.ts', 'https public URL: __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain'], ['oauth-routes/login-flow.test.ts', 'the whole flow: login → provider → callback → info and top-up → logout'], ['security/session-timeouts.test.ts', 'an idle session ends; its token set is gone'], ['security/session-timeouts.test.ts', 'an active session stays; the absolute timeout ends it anyway'], ['oauth-routes/user-sessions.test.ts', 'a session past its idle timeout leaves the listing and is ended']] },
  { line: '`@fastify/session` with `secure: true` silently sets no cookie', proofs: [['security/session-cookie.test.ts', 'a Secure cookie is never sent over plain http (why trustProxy matters behind TLS)'], ['security/session-cookie.test.ts', 'X-Forwarded-* from an untrusted peer is not believed'], ['oauth-routes/insecure-cookie.test.ts', 'a Secure session cookie over plain http: insecure_cookie and one warning that names the fix'], ['oauth-routes/insecure-cookie.test.ts', 'an https publicUrl reached over plain http (trustProxy missing or the proxy not trusted): insecure_cookie']] },
  // Proxy routes
  { line: 'Every method needs `X-CSRF: 1`', proofs: [['aihubmix-proxy/upstream-faults.test.ts', 'without the X-CSRF header: 403, for every method'], ['security/proxy-hardening.test.ts', 'no CORS for foreign origins'], ['oauth-routes/user-sessions.test.ts', 'DELETE /auth/sessions/:id and logout everywhere need X-CSRF: 1; without it nothing ends']] },
  { line: 'Without a session: 401 JSON, never a redirect to the provider.', proofs: [['aihubmix-proxy/upstream-faults.test.ts', 'without a session: 401 JSON, never a redirect to the provider'], ['token-store/cookie-sessions.test.ts', 'no cookie, a forged or a foreign cookie: no session, and getFresh answers 401'], ['token-store/cookie-sessions.test.ts', 'a session id without a session record is no session, even with a token set and a valid signature']] },
  { line: 'Upstream origin and path prefix are pinned', proofs: [['security/proxy-hardening.test.ts', 'a path from the browser never reaches another host or path upstream'], ['aihubmix-proxy/upstream-faults.test.ts', 'the provider\'s Set-Cookie never comes back, the browser\'s cookie never goes up']] },
  { line: 'Timeouts, body caps and client aborts are enforced', proofs: [['aihubmix-proxy/upstream-faults.test.ts', 'provider faults on userinfo and top-up'], ['security/proxy-hardening.test.ts', 'a client that goes away cancels its upstream call']] },
  // Refresh
  { line: 'Before expiry (5 minutes by default), and once after a 401', proofs: [['aihubmix-proxy/refresh.test.ts', 'a token inside the skew window is refreshed once, before use'], ['aihubmix-proxy/refresh.test.ts', 'a fresh token is never refreshed'], ['aihubmix-proxy/refresh.test.ts', 'a provider 401 costs one refresh and one retry, never a loop']] },
  { line: 'Single flight: concurrent requests of one session', proofs: [['aihubmix-proxy/refresh.test.ts', '50 concurrent requests on an expired token: exactly 1 refresh, all succeed'], ['aihubmix-proxy/refresh.test.ts', '50 concurrent requests that all get a provider 401: exactly 1 refresh'], ['aihubmix-proxy/refresh.test.ts', 'a slow refresh (1.5 s) is shared by its waiters'], ['example/redis-instances.test.ts', '50 concurrent requests split over both, on an expired token: exactly 1 refresh'], ['token-store/multi-instance.test.ts', 'the lease is renewed while a refresh outlasts it: the other instance does not refresh too'], ['token-store/multi-instance.test.ts', 'a crashed lock holder: the lease expires and the waiter refreshes'], ['token-store/dead-lock-owner.test.ts', 'a lock left by a process killed (SIGKILL) mid-refresh frees within the lease; the waiter then refreshes'], ['token-store/client-cache.test.ts', 'two example instances with the cache, 50 concurrent requests on an expired and refused token: exactly 1 refresh']] },
  { line: 'The newest refresh token is stored before any response', proofs: [['aihubmix-proxy/refresh.test.ts', 'when the provider does not rotate, the old refresh token is kept'], ['aihubmix-proxy/refresh.test.ts', '50 concurrent requests on an expired token: exactly 1 refresh, all succeed'], ['token-store/pending-save.test.ts', 'a save that fails: the set is served from the process, the lock stays held, and it is stored when Redis is back'], ['example/redis-restart-refresh.test.ts', 'Redis restarted while refreshes are in flight: nobody is logged out, no refresh token is used twice']] },
  { line: '`invalid_grant` / `invalid_client`', proofs: [['aihubmix-proxy/refresh.test.ts', 'a revoked grant: 401 reauth_required, then no more token requests'], ['aihubmix-proxy/refresh.test.ts', 'a 503 from the token endpoint keeps the session; it backs off for the Retry-After, then recovers'], ['aihubmix-proxy/refresh.test.ts', 'token endpoint timeouts and connection failures keep the session'], ['token-store/user-sessions-revoked.test.ts', 'with endUserSessionsOnRevoked, a refused refresh ends every session of that user']] },
  { line: 'A slow request that finishes last must not write back older tokens', proofs: [['aihubmix-proxy/refresh.test.ts', 'a slow request that finishes last does not write back older tokens']] },
  // Logout
  { line: '`POST` only (GET: 404/405)', proofs: [['security/logout.test.ts', 'logout is POST only'], ['security/logout.test.ts', 'a request in flight during logout cannot bring the session back'], ['oauth-routes/login-flow.test.ts', 'the whole flow: login → provider → callback → info and top-up → logout'], ['example/redis-instances.test.ts', 'logout on one ends the session on the other'], ['token-store/client-cache.test.ts', 'end to end, the example with REDIS_CLIENT_CACHE=on, two instances: a sign-out on one is refused on the other'], ['oauth-routes/user-sessions.test.ts', 'ending the current session is a logout: the cookie is cleared'], ['oauth-routes/user-sessions.test.ts', 'POST /auth/logout?everywhere=1 ends every session of the user and none of another user\'s'], ['oauth-routes/user-sessions.test.ts', 'ending another session of mine ends it at once; an id that is not one of mine is 404 and ends nothing'], ['example/user-sessions-instances.test.ts', 'a session ended on one instance is refused on the other at once'], ['example/user-sessions-instances.test.ts', 'a session ended on one instance is refused on the other at once, with the client-side cache'], ['token-store/user-sessions.test.ts', 'ending a session by its handle ends it as a logout does; another user\'s handle ends nothing']] },
  // Secrets
  { line: 'Seed the mock provider with recognisable token and secret values', proofs: [['security/secrets-sweep.test.ts', 'a full session leaves no secret anywhere the outside can see'], ['browser/no-leaks.test.ts', 'a normal session: no console error, and no token or secret reaches the browser'], ['oauth-routes/log-redaction.test.ts', 'Fastify\'s request logging with loggerOptions() writes no code, state, returnTo or cookie'], ['oauth-routes/redirect-uri-check.test.ts', 'no answer echoes a callback\'s query: a mistyped callback path, under the prefix or elsewhere'], ['security/diagnostics-sweep.test.ts', 'no diagnostics message carries a token, a code, a secret, a session id or an e-mail'], ['example/metrics-listener.test.ts', 'the metrics listener counts what happened, and only on its own port'], ['oauth-routes/user-sessions.test.ts', 'a listing never carries a session id, a cookie value or a token'], ['token-store/user-sessions.test.ts', 'a user\'s sessions are listed newest first, each under a handle that is not its session id']] },
  { line: 'Tokens at rest are encrypted', proofs: [['example/redis-instances.test.ts', 'no token in plain text in Redis, and every key has a TTL'], ['token-store/crypto.test.ts', 'rotation: the first key seals, every key opens'], ['token-store/crypto.test.ts', 'a value sealed for one storage key does not open under another (AAD)'], ['token-store/user-sessions.test.ts', 'in Redis: hash-tagged keys, each with a TTL that follows its session, nothing readable in them']] },
  { line: 'Production refuses unsafe configuration at start', proofs: [['example/config.test.ts', 'refusals name the variable in one line']] }
]

const testDir = resolve(dirname(fileURLToPath(import.meta.url)), '..')

t.test('every proof names a test that exists under that title', async (t) => {
  for (const { line, proofs } of SECURITY_MAP) {
    t.ok(proofs.length > 0, `${line}: has proofs`)
    for (const [file, title] of proofs) {
      const path = join(testDir, file)
      if (!existsSync(path)) {
        t.fail(`${line}: ${file} does not exist`)
        continue
      }
      const source = readFileSync(path, 'utf8')
      const quoted = [`'${title.replaceAll('\'', '\\\'')}'`, `"${title}"`, `\`${title}\``]
      t.ok(quoted.some((q) => source.includes(q)), `${line}: "${title}" in ${file}`)
    }
  }
})

t.test('every line of SECURITY.md has an entry', async (t) => {
  const candidates = [resolve(testDir, '../../shared/SECURITY.md'), resolve(testDir, '../shared/SECURITY.md')]
  const path = candidates.find((p) => existsSync(p))
  if (path === undefined) {
    t.comment('SECURITY.md is not beside this checkout; the map above still lists every line')
    t.equal(SECURITY_MAP.length, 27, 'the map covers the 27 lines of SECURITY.md')
    return
  }
  const bullets = readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('- ')).map((l) => l.slice(2))
  t.equal(bullets.length, SECURITY_MAP.length, 'one entry per line')
  for (const bullet of bullets) {
    t.ok(SECURITY_MAP.some((entry) => bullet.startsWith(entry.line)), `covered: ${bullet.slice(0, 70)}`)
  }
})
