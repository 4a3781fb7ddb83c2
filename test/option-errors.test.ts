import t from 'tap'
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'
import { tokenStore } from '@fastify-aihubmix/token-store'
import { aihubmixProxy } from '@fastify-aihubmix/aihubmix-proxy'
import { resolveOptions as resolveRoutesOptions } from '../src/oauth-routes/options.js'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { oauthRoutes } from '@fastify-aihubmix/oauth-routes'
import { startMockProvider } from '@fastify-aihubmix/mock-provider'
import { createApp } from 'aihubmix-oauth'

// A bad option reads the same in every package: `Invalid <package> option "<path>": expected <what>, got <kind>`,
// what was expected said in words (never TypeBox's "Expected union value"), the value itself never quoted.

const KEY = 'hex:' + 'a1'.repeat(32)
const SECRET = 'secret-value-that-must-not-be-echoed'
const PROXY = { baseUrl: 'http://127.0.0.1:1', clientId: 'client_x', clientSecret: SECRET, redirectUri: 'http://localhost:3000/auth/callback' }

async function registrationError (register: (app: ReturnType<typeof Fastify>) => void): Promise<Error> {
  const app = Fastify({ logger: false })
  register(app)
  const err = await app.ready().then(() => undefined, (e: unknown) => e as Error)
  await app.close().catch(() => {})
  if (err === undefined) throw new Error('registration succeeded')
  return err
}

t.test('token-store: a union is said in words, and a list item by its index', async (t) => {
  const short = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY, sessionCookie: { name: 'sid', secret: 'short' } }) })
  t.equal(short.message, 'Invalid token-store option "sessionCookie.secret": expected a string of 32+ characters or a list of them, got a string of 5 characters')
  const item = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY, sessionCookie: { name: 'sid', secret: [SECRET, 'short'] } }) })
  t.equal(item.message, 'Invalid token-store option "sessionCookie.secret[1]": expected a string of 32+ characters, got a string of 5 characters')
  const backend = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY, backend: 'postgres' as 'redis' }) })
  t.equal(backend.message, 'Invalid token-store option "backend": expected "memory" or "redis", got a string of 8 characters')
  const typo = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY, hooks: { onRefreshed: () => {} } as never }) })
  t.equal(typo.message, 'Invalid token-store option "hooks.onRefreshed": is not an option (did you mean onRefresh?)')
  const far = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY, hooks: { whenever: () => {} } as never }) })
  t.equal(far.message, 'Invalid token-store option "hooks.whenever": is not an option (expected one of onRefresh, onRefreshFailed, onRevoked)', 'nothing close: the list')
})

t.test('a misspelt option is named with the one it was meant to be, also where the one meant is required', async (t) => {
  const required = await registrationError((app) => { app.register(tokenStore, { encryptionKey: KEY } as never) })
  t.equal(required.message, 'Invalid token-store option "encryptionKey": is not an option (did you mean encryptionKeys?)')
  const snake = await registrationError((app) => {
    app.register(tokenStore, { encryptionKeys: KEY })
    app.register(aihubmixProxy, { ...PROXY, clientSecret: undefined, client_secret: SECRET } as never)
  })
  t.equal(snake.message, 'Invalid aihubmix-proxy option "client_secret": is not an option (did you mean clientSecret?)')
  t.notMatch(snake.message, SECRET)
  t.throws(() => resolveRoutesOptions({ publicURL: 'http://localhost:3000' } as never), {
    message: 'Invalid oauth-routes option "publicURL": is not an option (did you mean publicUrl?)'
  })
  t.throws(() => resolveRoutesOptions({ publicUrl: 'http://localhost:3000', onLogot: () => {} } as never), {
    message: 'Invalid oauth-routes option "onLogot": is not an option (did you mean onLogout?)'
  }, 'the hooks are options like the others')
  t.throws(() => resolveRoutesOptions({ publicUrl: 'http://localhost:3000', onLogin: 'log' } as never), {
    message: 'Invalid oauth-routes option "onLogin": expected a function, got a string of 3 characters'
  })
  const timeout = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, timeout: 5 } as never) })
  t.equal(timeout.message, 'Invalid aihubmix-proxy option "timeout": is not an option (did you mean timeoutMs?)')
  // Control: a required option simply missing is still said as missing.
  t.throws(() => resolveRoutesOptions({} as never), { message: /^Invalid oauth-routes option "publicUrl": is required/ })
})

t.test('aihubmix-proxy: a number out of range, and a pattern said in words', async (t) => {
  const timeout = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, timeoutMs: 0 }) })
  t.equal(timeout.message, 'Invalid aihubmix-proxy option "timeoutMs": expected an integer from 1 to 600000, got 0')
  const header = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, csrfHeader: 'X CSRF' }) })
  t.equal(header.message, 'Invalid aihubmix-proxy option "csrfHeader": expected a header name like x-csrf, got a string of 6 characters')
  const missing = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, clientSecret: undefined } as never) })
  t.equal(missing.message, 'Invalid aihubmix-proxy option "clientSecret": expected a string of 1 to 2048 characters, got nothing')
  t.notMatch(timeout.message + header.message + missing.message, SECRET, 'no option value is echoed')
  // An object with only request() (dispatch() is what the client calls): refused at registration, not at the first call.
  const dispatcher = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, dispatcher: { request () {} } as never }) })
  t.equal(dispatcher.message, 'Invalid aihubmix-proxy option "dispatcher": must be an undici Dispatcher (with dispatch(), such as a Pool, an Agent or a MockAgent)')
})

t.test('aihubmix-proxy: a baseUrl ending in a part of the endpoints\' path (or the AI API\'s /v1) is refused, naming the origin', async (t) => {
  const refused: Array<[string, string]> = [['https://aihubmix.com/api', '/api'], ['https://aihubmix.com/api/', '/api'], ['https://aihubmix.com/v1', '/v1'],
    ['https://gw.example/aihubmix/api/oauth2', '/api/oauth2']]
  for (const [baseUrl, part] of refused) {
    const err = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, baseUrl }) })
    const origin = new URL(baseUrl).origin
    t.equal(err.message, `Invalid aihubmix-proxy option "baseUrl": ends in ${part}, but the endpoints are <baseUrl>/api/oauth2/*, so every call would miss. Fix: the provider's origin without that path (${origin})`)
  }
  // Control: a path prefix of a gateway, and the origin itself, are accepted.
  for (const baseUrl of ['https://gw.example/aihubmix', 'https://aihubmix.com', 'https://aihubmix.com/']) {
    const app = Fastify({ logger: false })
    app.register(tokenStore, { encryptionKeys: KEY })
    app.register(aihubmixProxy, { ...PROXY, baseUrl })
    await t.resolves(async () => { await app.ready() }, `${baseUrl}: accepted`)
    await app.close()
  }
})

// A host without its scheme was refused as "must be an absolute URL" (or, `localhost:4000` parsing as a URL of scheme
// `localhost:`, "must be an http(s) URL"), naming no fix.
t.test('a URL option without its scheme is refused in one line with an example of the option', async (t) => {
  const examples = { baseUrl: 'https://api.aihubmix.com', redirectUri: 'https://app.example/auth/callback', revocationUrl: 'https://api.aihubmix.com/api/oauth2/revoke' }
  for (const value of ['api.aihubmix.com', '127.0.0.1:4000', 'localhost:4000', 'app.example.com:8443/auth/callback']) {
    for (const option of ['baseUrl', 'redirectUri', 'revocationUrl'] as const) {
      const err = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, [option]: value }) })
      t.equal(err.message, `Invalid aihubmix-proxy option "${option}": must be an absolute URL with its scheme, such as ${examples[option]} (http:// only on loopback)`, `${option} ${value}`)
    }
  }
  const ftp = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, baseUrl: 'ftp://api.aihubmix.com' }) })
  t.equal(ftp.message, 'Invalid aihubmix-proxy option "baseUrl": must be an http(s) URL', 'another scheme: named as such')
})

// Accepted at start, the fragment went to the provider in every sign-in URL, and the provider refused the sign-in as an
// unregistered redirect URI (from a newcomer trial).
t.test('aihubmix-proxy: a redirectUri (or revocationUrl) with a fragment is refused at start, naming the fix', async (t) => {
  for (const redirectUri of ['https://app.example/auth/callback#x', 'https://app.example/auth/callback#']) {
    const err = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, redirectUri }) })
    t.equal(err.message, 'Invalid aihubmix-proxy option "redirectUri": must not have a fragment (#...): OAuth 2.0 forbids one in a redirect URI. Fix: https://app.example/auth/callback', redirectUri)
  }
  const revoke = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, revocationUrl: 'https://api.aihubmix.com/revoke#top' }) })
  t.equal(revoke.message, 'Invalid aihubmix-proxy option "revocationUrl": must not have a fragment (#...)')
})

t.test('a URL with spaces, a line break or quotes around it is refused at start in every package, in the same words', async (t) => {
  // The URL parser drops them, so the URL looked fine; the value used went on holding them (` http://...` reached the
  // provider as redirect_uri=+http..., a redis URL made ioredis throw a TypeError quoting its password).
  const around = 'has spaces, line breaks or quotes around it (a copy-paste, or quotes kept from an env file?): remove them, so that the value is the URL alone'
  const values = [' http://localhost:3000', 'http://localhost:3000\n', '"http://localhost:3000"', "'http://localhost:3000' "]
  for (const value of values) {
    const label = JSON.stringify(value)
    for (const option of ['redirectUri', 'baseUrl', 'revocationUrl'] as const) {
      const wanted = option === 'redirectUri' ? value.replace('3000', '3000/auth/callback') : value
      const err = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, [option]: wanted }) })
      t.equal(err.message, `Invalid aihubmix-proxy option "${option}": ${around}`, `aihubmix-proxy ${option} ${label}`)
    }
    t.throws(() => resolveRoutesOptions({ publicUrl: value }), { message: `Invalid oauth-routes option "publicUrl": ${around}` }, `oauth-routes publicUrl ${label}`)
    const redis = value.replace('http://localhost:3000', 'redis://:S3cretPassw0rd@127.0.0.1:6379')
    const err = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY, redis }) })
    t.equal(err.message, `Invalid token-store option "redis": the URL ${around}`, `token-store redis ${label}`)
    t.notMatch(err.message, 'S3cretPassw0rd')
  }
  const inside = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, redirectUri: 'http://localhost:3000/auth/call back' }) })
  t.equal(inside.message, 'Invalid aihubmix-proxy option "redirectUri": has spaces or control characters in it: remove them (or percent-encode them, a space as %20)')
  t.throws(() => resolveRoutesOptions({ publicUrl: 'http://local\thost:3000' }), { message: 'Invalid oauth-routes option "publicUrl": has spaces or control characters in it: remove them (or percent-encode them, a space as %20)' })
})

t.test('aihubmix-proxy: a clientId or clientSecret with quotes, spaces or control characters is refused in doctor\'s words, never echoed', async (t) => {
  // Docker env_file and Kubernetes secrets keep quotes; the provider then answered every sign-in invalid_client.
  const said = 'contains spaces, quotes or control characters (a copy-paste error, or quotes kept from an env file?): remove them (the provider issues printable ASCII without spaces or quotes, and would refuse it as invalid_client)'
  for (const option of ['clientId', 'clientSecret'] as const) {
    for (const value of [`"${SECRET}"`, `'${SECRET}'`, ` ${SECRET}`, `${SECRET}\n`, `${SECRET}\r`, `sec ret${SECRET}`, `${SECRET}\u0000`, `${SECRET}\u00e9`]) {
      const err = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, [option]: value }) })
      t.equal(err.message, `Invalid aihubmix-proxy option "${option}": ${said}`, `${option} ${JSON.stringify(value.replace(SECRET, '<secret>'))}`)
      t.notMatch(err.message, SECRET)
    }
  }
  // Control: what the provider issues, and a quote inside, are accepted.
  for (const clientSecret of ['secret_a1B2-c3_d4.e5~', 'secret_it\'s']) {
    const app = Fastify({ logger: false })
    app.register(tokenStore, { encryptionKeys: KEY })
    app.register(aihubmixProxy, { ...PROXY, clientSecret })
    await t.resolves(async () => { await app.ready() }, `${clientSecret}: accepted`)
    await app.close()
  }
})

t.test('aihubmix-proxy: a client secret given as clientId (the two swapped) is refused, never echoed: the id goes to the browser', async (t) => {
  // Swapped, the app started and /auth/login sent the secret to the browser as client_id.
  const said = 'Invalid aihubmix-proxy option "clientId": looks like the client secret (it starts with secret_, or equals clientSecret): are clientId and ' +
    'clientSecret swapped? The client id (client_...) goes to the browser in the sign-in URL; the secret must stay on the server'
  for (const [label, clientId, clientSecret] of [
    ['swapped', 'secret_mock_Zq81xY', 'client_mock_1a2b'],
    ['the secret twice', 'secret_mock_Zq81xY', 'secret_mock_Zq81xY'],
    ['the same value of another shape', 'app-credential-77', 'app-credential-77']
  ] as const) {
    const err = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, clientId, clientSecret }) })
    t.equal(err.message, said, label)
    t.notMatch(err.message, clientId === clientSecret ? clientId : 'secret_mock_Zq81xY')
  }
  // Control: an id of another shape, and a secret of any shape, are the provider's business.
  const app = Fastify({ logger: false })
  app.register(tokenStore, { encryptionKeys: KEY })
  app.register(aihubmixProxy, { ...PROXY, clientId: 'my-app', clientSecret: 'client_looking_secret' })
  await t.resolves(async () => { await app.ready() })
  await app.close()
})

t.test('oauth-routes: a cookie name and a path said in words', async (t) => {
  t.throws(() => resolveRoutesOptions({ publicUrl: 'http://localhost:3000', cookieName: 'my sid' }), {
    message: 'Invalid oauth-routes option "cookieName": expected a cookie name (letters, digits and !#$%&\'*+-.^_`|~), got a string of 6 characters'
  })
  t.throws(() => resolveRoutesOptions({ publicUrl: 'http://localhost:3000', prefix: 'auth' }), {
    message: 'Invalid oauth-routes option "prefix": expected a path prefix like /auth (or empty), without a trailing /, got a string of 4 characters'
  })
})

t.test('mock-provider: a nested option', async (t) => {
  const err = await startMockProvider({ port: 0, user: { quota: 'lots' as unknown as number } }).then(() => undefined, (e: unknown) => e as Error)
  t.equal(err?.message, 'Invalid mock provider option "options.user.quota": expected an integer, got a string of 4 characters')
})

t.test('aihubmix-oauth (the CLI\'s building blocks): a number out of range', async (t) => {
  const err = await createApp({ developerToken: 'dev_x', name: 'x', redirectUri: 'https://app.example.com/auth/callback', timeoutMs: 0 }).then(() => undefined, (e: unknown) => e as Error)
  t.equal(err?.message, 'Invalid aihubmix-oauth option "timeoutMs": expected an integer from 1 to 600000, got 0')
})

t.test('every package formats with the same code (each is published alone, so each has its copy)', async (t) => {
  const source = (pkg: string): string => readFileSync(new URL(`../src/${pkg}/option-errors.ts`, import.meta.url), 'utf8')
  for (const pkg of ['aihubmix-proxy', 'oauth-routes', 'mock-provider', 'cli', 'metrics']) {
    t.equal(source(pkg), source('token-store'), `src/${pkg}/option-errors.ts is src/token-store/option-errors.ts`)
  }
})

// The pattern `^/[^/\\]*` had no end and `*` matches nothing: `//evil.example` and `/\evil.example` passed as
// errorPath and defaultReturnTo, and the latter is where every refused returnTo goes, so a mistyped configuration
// sent every sign-in off-site. Dot segments, spaces and control characters passed too (`/.//host`, `/<tab>/host`).
t.test('errorPath and defaultReturnTo: a path of the app only; what would leave the origin is refused at start', async (t) => {
  for (const name of ['errorPath', 'defaultReturnTo'] as const) {
    for (const value of ['//evil.example', '/\\evil.example', 'evil.example', 'https://evil.example/']) {
      t.throws(() => resolveRoutesOptions({ publicUrl: 'http://localhost:3000', [name]: value }), {
        message: `Invalid oauth-routes option "${name}": expected a path of this app like / (not //host, nor /\\host), got a string of ${value.length} characters`
      }, `${name} ${JSON.stringify(value)}`)
    }
    for (const value of ['/.//evil.example', '/\t/evil.example', '/a b', '/\n']) {
      t.throws(() => resolveRoutesOptions({ publicUrl: 'http://localhost:3000', [name]: value }), {
        message: `Invalid oauth-routes option "${name}": must be a path of this app like / (not //host, nor /\\host), in printable characters without dot segments that lead off the origin, such as /login`
      }, `${name} ${JSON.stringify(value)}`)
    }
    for (const value of ['/', '/login', '/app/home?tab=1', '/%2F/encoded']) {
      t.equal(resolveRoutesOptions({ publicUrl: 'http://localhost:3000', [name]: value })[name], value, `${name} ${value}: accepted as it is`)
    }
  }
})

// `${errorPath}?error=<code>` made `/login?from=oauth?error=invalid_state` (no `error` parameter) of an errorPath with
// a query, and put the code inside the fragment of one with a `#`.
t.test('errorPath with a query of its own gets the code as one more parameter; one with a fragment is refused', async (t) => {
  t.throws(() => resolveRoutesOptions({ publicUrl: 'http://localhost:3000', errorPath: '/login#signin' }), {
    message: 'Invalid oauth-routes option "errorPath": must not have a fragment (#...): the ?error=<code> that follows it would be part of the fragment, which never reaches the server'
  })
  t.equal(resolveRoutesOptions({ publicUrl: 'http://localhost:3000', defaultReturnTo: '/home#top' }).defaultReturnTo, '/home#top', 'defaultReturnTo may have one')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyCookie)
  await app.register(tokenStore, { encryptionKeys: KEY, sessionCookie: { name: 'sid', secret: 's'.repeat(40) } })
  await app.register(aihubmixProxy, PROXY)
  await app.register(async (scope) => {
    await scope.register(fastifySession, { secret: 's'.repeat(40), cookieName: 'sid', store: scope.tokenStore.sessionStore, saveUninitialized: false, cookie: { secure: false } })
    await scope.register(oauthRoutes, { publicUrl: 'http://localhost:3000', errorPath: '/login?from=oauth' })
  })
  const res = await app.inject('/auth/callback?code=x&state=y')
  t.equal(res.statusCode, 302)
  t.equal(res.headers.location, '/login?from=oauth&error=invalid_state')
})

t.test('aihubmix-proxy: a URL option with a blank inside (a padded origin before the path) is said as such, not as "no scheme"', async (t) => {
  const padded = await registrationError((app) => { app.register(tokenStore, { encryptionKeys: KEY }); app.register(aihubmixProxy, { ...PROXY, redirectUri: 'http://localhost:3000 /auth/callback' }) })
  t.equal(padded.message, 'Invalid aihubmix-proxy option "redirectUri": has spaces or control characters in it: remove them (or percent-encode them, a space as %20)')
})
