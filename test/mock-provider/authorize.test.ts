import t, { type Test } from 'tap'
import {
  authorize,
  authorizeUrl,
  backParams,
  call,
  exchange,
  formBody,
  pkcePair,
  REDIRECT_URI,
  startProvider,
  type Answer
} from '../helpers/mock-client.js'

function assertErrorPage (t: Test, answer: Answer, error: string, name: string): void {
  t.equal(answer.status, 400, `${name}: status`)
  t.equal(answer.headers.location, undefined, `${name}: never a redirect`)
  t.match(answer.headers['content-type'], /^text\/html/, `${name}: an HTML page`)
  t.match(answer.text, `data-error="${error}"`, `${name}: error`)
}

t.test('one-click: 302 straight back with code and state, and no iss', async (t) => {
  const { provider, app } = await startProvider(t)
  const answer = await authorize(provider, app, { state: 'abc XYZ/+=' })
  t.equal(answer.status, 302)
  t.equal(answer.headers['cache-control'], 'no-store')
  const location = answer.headers.location as string
  t.ok(location.startsWith(`${REDIRECT_URI}?`), 'back to the registered redirect URI')
  const params = backParams(answer)
  t.same([...params.keys()], ['code', 'state'])
  t.equal(params.get('state'), 'abc XYZ/+=')
  t.match(params.get('code'), /^code_mock_[A-Za-z0-9_-]{32}$/)
  t.same(provider.issued().codes, [params.get('code')])
  t.equal(provider.counts().authorize, 1)
})

t.test('the redirect keeps the registered URI\'s own query byte for byte', async (t) => {
  const { provider } = await startProvider(t)
  const redirectUri = 'http://localhost:3000/auth/callback?tenant=a%20b&x=1+2'
  const app = provider.createApp({ name: 'With query', redirectUri })
  const answer = await authorize(provider, app)
  const location = answer.headers.location as string
  t.ok(location.startsWith(`${redirectUri}&code=`), location)
  const params = backParams(answer, redirectUri)
  t.equal(params.get('tenant'), 'a b')
  t.equal(params.get('x'), '1 2')
  t.equal(params.get('state'), 'state-1')
})

t.test('unknown client, wrong redirect_uri, wrong response_type: an error page, never a redirect', async (t) => {
  const { provider, app } = await startProvider(t)
  const other = provider.createApp({ name: 'Other', redirectUri: 'http://localhost:4000/cb' })
  const cases: Array<[string, Record<string, string | undefined>, string]> = [
    ['no client_id', { client_id: undefined }, 'invalid_request'],
    ['unknown client_id', { client_id: 'client_unknown' }, 'invalid_client'],
    ['no redirect_uri', { redirect_uri: undefined }, 'invalid_request'],
    ['another app\'s redirect_uri', { redirect_uri: other.redirectUri }, 'invalid_request'],
    ['trailing slash', { redirect_uri: `${REDIRECT_URI}/` }, 'invalid_request'],
    ['added query', { redirect_uri: `${REDIRECT_URI}?x=1` }, 'invalid_request'],
    ['other case', { redirect_uri: REDIRECT_URI.toUpperCase() }, 'invalid_request'],
    ['other host', { redirect_uri: 'http://evil.example/auth/callback' }, 'invalid_request'],
    ['response_type token', { response_type: 'token' }, 'unsupported_response_type'],
    ['no response_type', { response_type: undefined }, 'unsupported_response_type']
  ]
  for (const [name, params, error] of cases) {
    assertErrorPage(t, await authorize(provider, app, params), error, name)
  }
  // repeated client_id or redirect_uri cannot be trusted either
  const repeated = `${authorizeUrl(provider, app)}&redirect_uri=${encodeURIComponent('http://evil.example/cb')}`
  assertErrorPage(t, await call(repeated), 'invalid_request', 'repeated redirect_uri')
  t.same(provider.issued().codes, [], 'no code issued')
})

t.test('the error page reflects nothing from the request', async (t) => {
  const { provider, app } = await startProvider(t)
  const answer = await authorize(provider, app, { redirect_uri: 'http://evil.example/<script>alert(1)</script>' })
  t.equal(answer.status, 400)
  t.notMatch(answer.text, 'evil.example')
  t.notMatch(answer.text, '<script>')
  t.equal(answer.headers['x-frame-options'], 'DENY')
})

t.test('errors sent back to the client: state, scope, PKCE, repeated parameters', async (t) => {
  const { provider, app } = await startProvider(t)
  const cases: Array<[string, Record<string, string | undefined>, string, string | null]> = [
    ['no state', { state: undefined }, 'invalid_request', null],
    ['empty state', { state: '' }, 'invalid_request', null],
    ['unknown scope', { scope: 'profile admin' }, 'invalid_scope', 'state-1'],
    ['comma-separated scope', { scope: 'profile,balance' }, 'invalid_scope', 'state-1'],
    ['plain PKCE', { code_challenge: pkcePair().verifier, code_challenge_method: 'plain' }, 'invalid_request', 'state-1'],
    ['PKCE method missing (means plain)', { code_challenge: pkcePair().challenge }, 'invalid_request', 'state-1'],
    ['unknown PKCE method', { code_challenge: pkcePair().challenge, code_challenge_method: 'S512' }, 'invalid_request', 'state-1'],
    ['PKCE method without challenge', { code_challenge_method: 'S256' }, 'invalid_request', 'state-1'],
    ['malformed challenge', { code_challenge: 'short', code_challenge_method: 'S256' }, 'invalid_request', 'state-1']
  ]
  for (const [name, params, error, state] of cases) {
    const answer = await authorize(provider, app, params)
    t.equal(answer.status, 302, name)
    const back = backParams(answer)
    t.equal(back.get('error'), error, name)
    t.type(back.get('error_description'), 'string', name)
    t.equal(back.get('state'), state, `${name}: state`)
    t.equal(back.get('code'), null, `${name}: no code`)
  }
  const twice = await call(`${authorizeUrl(provider, app)}&state=again`)
  t.equal(backParams(twice).get('error'), 'invalid_request', 'repeated state')
  t.equal(backParams(twice).get('state'), null, 'a repeated state is not echoed')
  const scopeTwice = await call(`${authorizeUrl(provider, app)}&scope=profile`)
  t.equal(backParams(scopeTwice).get('error'), 'invalid_request', 'repeated scope')
  t.equal(backParams(scopeTwice).get('state'), 'state-1')
  t.same(provider.issued().codes, [], 'no code issued')
})

t.test('scope: missing means both; a subset is granted as asked, in canonical order', async (t) => {
  const { provider, app } = await startProvider(t)
  const granted = async (scope: string | undefined): Promise<string> => {
    const code = backParams(await authorize(provider, app, { scope })).get('code') as string
    return (await exchange(provider, app, code)).json().scope
  }
  t.equal(await granted(undefined), 'profile balance')
  t.equal(await granted(''), 'profile balance')
  t.equal(await granted('balance'), 'balance')
  t.equal(await granted('profile'), 'profile')
  t.equal(await granted('balance  profile balance'), 'profile balance')
})

t.test('consent page: approve gives a code, deny gives access_denied', async (t) => {
  const { provider, app } = await startProvider(t)
  const { challenge, verifier } = pkcePair()
  const page = await authorize(provider, app, {
    auto_authorize: undefined,
    state: '"><script>alert(1)</script>',
    scope: 'balance',
    code_challenge: challenge,
    code_challenge_method: 'S256'
  })
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.match(page.text, '<form method="post" action="/api/oauth2/authorize/decision">')
  t.match(page.text, 'Test app')
  t.match(page.text, 'user123')
  t.notMatch(page.text, '<script>alert(1)</script>', 'the state is escaped')
  t.match(page.text, 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
  t.same(provider.issued().codes, [], 'no code before the decision')

  // the form's hidden fields, as a browser would post them
  const fields: Record<string, string> = {}
  for (const [, name, value] of page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[name as string] = (value as string).replace(/&quot;/g, '"').replace(/&gt;/g, '>').replace(/&lt;/g, '<').replace(/&#39;/g, "'").replace(/&amp;/g, '&')
  }
  t.same(fields, {
    client_id: app.clientId,
    redirect_uri: app.redirectUri,
    response_type: 'code',
    scope: 'balance',
    state: '"><script>alert(1)</script>',
    code_challenge: challenge,
    code_challenge_method: 'S256'
  })
  const decide = async (form: Record<string, string | undefined>): Promise<Answer> => call(`${provider.url}/api/oauth2/authorize/decision`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: formBody(form)
  })

  const denied = backParams(await decide({ ...fields, decision: 'deny' }))
  t.equal(denied.get('error'), 'access_denied')
  t.equal(denied.get('state'), '"><script>alert(1)</script>')
  t.equal(denied.get('code'), null)

  const approved = backParams(await decide({ ...fields, decision: 'approve' }))
  t.equal(approved.get('state'), '"><script>alert(1)</script>')
  const token = await exchange(provider, app, approved.get('code') as string, { code_verifier: verifier })
  t.equal(token.status, 200, 'the PKCE challenge travelled with the form')
  t.equal(token.json().scope, 'balance')

  // the decision is checked like the request itself
  assertErrorPage(t, await decide({ ...fields, redirect_uri: 'http://evil.example/cb', decision: 'approve' }), 'invalid_request', 'tampered redirect_uri')
  assertErrorPage(t, await decide({ ...fields, decision: 'maybe' }), 'invalid_request', 'unknown decision')
  assertErrorPage(t, await call(`${provider.url}/api/oauth2/authorize/decision`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...fields, decision: 'approve' })
  }), 'invalid_request', 'JSON decision')
  t.equal(provider.counts().authorize, 1, 'the decision post is not an authorize call')
})

t.test('HEAD does not issue a code', async (t) => {
  const { provider, app } = await startProvider(t)
  const res = await fetch(authorizeUrl(provider, app), { method: 'HEAD', redirect: 'manual' })
  t.not(res.status, 302)
  t.same(provider.issued().codes, [])
})
