import t from 'tap'
import dc from 'node:diagnostics_channel'
import { LOGIN_CHANNEL, LOGIN_ERROR_CODES } from '@fastify-aihubmix/oauth-routes'
import { TestBrowser } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'

// the callback maps the provider's `error` through a plain object (PROVIDER_ERRORS[query.error] ?? ...).
// A provider error named like an Object.prototype member (`constructor`, `toString`, `__proto__`, ...) is found
// on the prototype: the browser is sent back with something that is not one of LOGIN_ERROR_CODES, and the login
// channel (hence aihubmix_logins_total) gets an outcome that is not one either.
for (const providerError of ['constructor', 'toString', 'hasOwnProperty']) {
  t.test(`a callback with error=${providerError} ends with a code of LOGIN_ERROR_CODES`, async (t) => {
    const stack = await startStack()
    t.teardown(() => stack.close())
    const outcomes: unknown[] = []
    const onLogin = (message: unknown): void => { outcomes.push((message as { outcome: unknown }).outcome) }
    dc.channel(LOGIN_CHANNEL).subscribe(onLogin)
    t.teardown(() => { dc.channel(LOGIN_CHANNEL).unsubscribe(onLogin) })

    const browser = new TestBrowser()
    const start = await browser.get(`${stack.url}/auth/login`)
    const state = new URL(TestBrowser.location(start)).searchParams.get('state') ?? ''
    // What the provider's redirect brings back (the state is this browser's own).
    const back = await browser.get(`${stack.url}/auth/callback?error=${providerError}&state=${state}`)
    t.equal(back.status, 302)
    const location = String(back.headers.location)
    t.comment(`Location: ${location}`)
    t.comment(`published outcome: ${typeof outcomes[0]} ${String(outcomes[0]).slice(0, 40)}`)
    const code = new URL(location, stack.url).searchParams.get('error')
    t.ok((LOGIN_ERROR_CODES as readonly unknown[]).includes(code), `the browser is sent back with a known code (got ${JSON.stringify(code)})`)
    t.same(outcomes.map((o) => typeof o), ['string'], 'one outcome, a string')
    t.ok((LOGIN_ERROR_CODES as readonly unknown[]).includes(outcomes[0]), 'the published outcome is one of LOGIN_ERROR_CODES (provider_error)')
  })
}
