import t from 'tap'
import { MockAgent } from 'undici'
import { createAihubmixClient } from '../../src/aihubmix-proxy/client.js'
import { resolveOptions } from '../../src/aihubmix-proxy/options.js'
import { UpstreamInvalidResponseError } from '../../src/aihubmix-proxy/errors.js'

// The browser opens the top-up URL the provider gives: it must be a page it can open safely. An https provider
// may only send the browser to https; a provider on plain http (the mock on loopback, or allowInsecureHttp in
// development) may send it to http as well; no provider may send it to javascript:, data: or anything else.

async function topupVia (baseUrl: string, topupUrl: string, allowInsecureHttp = false): Promise<unknown> {
  const agent = new MockAgent()
  agent.disableNetConnect()
  const origin = new URL(baseUrl).origin
  agent.get(origin).intercept({ path: '/api/oauth2/topup', method: 'GET' }).reply(200, { topup_url: topupUrl }, { headers: { 'content-type': 'application/json' } })
  const client = createAihubmixClient(resolveOptions({
    baseUrl,
    clientId: 'app',
    clientSecret: 'secret-of-the-app',
    redirectUri: 'https://app.example/auth/callback',
    allowInsecureHttp,
    dispatcher: agent
  }))
  try {
    return await client.topup('an-access-token').then((answer) => answer.topup_url, (err: unknown) => err)
  } finally {
    await client.close()
    await agent.close()
  }
}

t.test('an https provider: only an https top-up URL reaches the browser', async (t) => {
  t.equal(await topupVia('https://provider.example', 'https://provider.example/topup?x=1'), 'https://provider.example/topup?x=1')
  t.equal(await topupVia('https://provider.example', 'https://pay.example/topup'), 'https://pay.example/topup', 'another https host is the provider\'s choice')
  for (const bad of [
    'http://provider.example/topup', 'javascript:alert(1)', 'data:text/html,hi', 'ftp://provider.example/topup', 'not a url',
    // A user name reads as the host to a hurried eye: https://provider.example@evil.example/ is evil.example.
    'https://provider.example@evil.example/', 'https://user:pass@pay.example/topup', 'https://:pass@pay.example/'
  ]) {
    const err = await topupVia('https://provider.example', bad)
    t.ok(err instanceof UpstreamInvalidResponseError, `${bad}: refused as an invalid answer`)
  }
})

t.test('a provider on plain http (loopback, or allowInsecureHttp): http top-up URLs too, still nothing else', async (t) => {
  t.equal(await topupVia('http://127.0.0.1:9', 'http://127.0.0.1:9/topup'), 'http://127.0.0.1:9/topup')
  t.equal(await topupVia('http://provider.test', 'http://provider.test/topup', true), 'http://provider.test/topup')
  t.equal(await topupVia('http://127.0.0.1:9', 'https://pay.example/topup'), 'https://pay.example/topup')
  for (const bad of ['javascript:alert(1)', 'data:text/html,hi', 'file:///etc/passwd']) {
    t.ok(await topupVia('http://127.0.0.1:9', bad) instanceof UpstreamInvalidResponseError, `${bad}: refused`)
  }
})
