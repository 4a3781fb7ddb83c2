import t from 'tap'
import { MockInvalidArgumentError, MockInvalidOptionError, startMockProvider } from '@fastify-aihubmix/mock-provider'
import { bearerGet, call, login, refresh, startProvider, userinfo } from '../helpers/mock-client.js'

// The guide's envelope errors are `{success: false, message}`, with no code: `envelopeErrorCodes: false` answers
// them so; by default an enveloped error keeps its `error` code beside the message.

t.test('envelopeErrorCodes: false: token, userinfo and topup errors are {success: false, message} alone, with their statuses', async (t) => {
  const { provider, app } = await startProvider(t, { envelopeErrorCodes: false })
  const narrow = await login(provider, app, { scope: 'profile' })
  provider.setEnvelope(true)

  const token = await refresh(provider, app, 'rt_never_issued')
  t.equal(token.status, 400)
  t.same(Object.keys(token.json()).sort(), ['message', 'success'])
  t.equal(token.json().success, false)
  const info = await userinfo(provider, 'at_never_issued')
  t.equal(info.status, 401)
  t.same(Object.keys(info.json()).sort(), ['message', 'success'])
  const topup = await bearerGet(provider, '/api/oauth2/topup', narrow.access_token)
  t.equal(topup.status, 403)
  t.same(Object.keys(topup.json()).sort(), ['message', 'success'])

  provider.setEnvelope(true, { errorCodes: true })
  t.same((await refresh(provider, app, 'rt_never_issued')).json().error, 'invalid_grant', 'switched back: the code again')
  provider.reset()
  t.equal((await refresh(provider, app, 'rt_never_issued')).json().error, 'invalid_grant', 'reset: envelope off, RFC 6749 again')
  provider.setEnvelope(true)
  t.same(Object.keys((await refresh(provider, app, 'rt_never_issued')).json()).sort(), ['message', 'success'], 'reset keeps the start option')
})

t.test('by default an enveloped error carries its code; the option and the setter refuse what is not a boolean', async (t) => {
  const { provider, app } = await startProvider(t, { envelope: true })
  t.same((await refresh(provider, app, 'rt_never_issued')).json(), { success: false, message: 'the refresh token is invalid', error: 'invalid_grant' })
  t.throws(() => { provider.setEnvelope(true, { errorCodes: 'no' as never }) }, MockInvalidArgumentError)
  await t.rejects(startMockProvider({ envelopeErrorCodes: 'no' as never }), MockInvalidOptionError)
})

t.test('the control API sets it: POST /envelope {on, errorCodes}', async (t) => {
  const { provider, app } = await startProvider(t, { controlApi: true })
  const set = await call(`${provider.url}/__mock/envelope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ on: true, errorCodes: false }) })
  t.equal(set.status, 204)
  t.same(Object.keys((await refresh(provider, app, 'rt_never_issued')).json()).sort(), ['message', 'success'])
  const bad = await call(`${provider.url}/__mock/envelope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ on: true, errorCodes: 1 }) })
  t.equal(bad.status, 400)
  t.equal(bad.json().error, 'invalid_argument')
})
