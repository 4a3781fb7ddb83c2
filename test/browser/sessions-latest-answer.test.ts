import t from 'tap'
import type { Page, Request } from 'playwright-core'
import { IPAD, IPHONE, gate, sharedBrowser, signedInDevice } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

// What users saw (from the page review): on a slow connection, a user ended two other devices one after the other.
// The list reload after the first "Sign out" was answered after the one after the second, and the page showed that
// older list: the tablet, already signed out, was back in "Where you're signed in" with a live "Sign out" button
// (which then answered "That device was already signed out."). The page now numbers its list requests and shows
// only the latest one's answer, and an older request's failure shows no error over the latest list.

const browserFor = sharedBrowser(t)

async function listed (page: Page): Promise<string[]> {
  return page.locator('[data-testid="session-item"] .session-device').allTextContents()
}

async function authenticated (page: Page): Promise<boolean> {
  return await page.evaluate(async () => (await (await fetch('/auth/session')).json()).authenticated === true)
}

// `late503`: the first reload's answer, when it finally reaches the page, is the list as the server had it then, or
// a failure (503 store_unavailable).
for (const late503 of [false, true]) {
  t.test(late503
    ? 'two devices ended in a row, the first list reload failing last: no error over the latest list, which stays'
    : 'two devices ended in a row, the first list reload answered last: the ended devices stay out of the list', async (t) => {
    const browser = await browserFor(t)
    if (browser === undefined) return
    const stack = await startStack()
    t.teardown(() => stack.close())
    const phone = await signedInDevice(t, browser, stack.url, IPHONE)
    const tablet = await signedInDevice(t, browser, stack.url, IPAD)
    const laptop = await signedInDevice(t, browser, stack.url)
    await laptop.page.getByTestId('end-session').nth(1).waitFor()
    t.same(await listed(laptop.page), ['Chrome on Linux', 'Safari on iPadOS', 'Safari on iOS'])

    // The first list reload is answered at once by the server (the tablet still in it), or fails, but that answer
    // reaches the page only when the test lets it go; the later reloads are quick.
    const held = gate()
    let late: Request | undefined
    await laptop.context.route(`${stack.url}/auth/sessions`, async (route) => {
      if (route.request().method() !== 'GET' || late !== undefined) return await route.continue()
      late = route.request()
      if (late503) {
        await held.promise
        return await route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'store_unavailable', message: 'The session store is unavailable.' }) })
      }
      const response = await route.fetch()
      await held.promise
      await route.fulfill({ response })
    })

    await laptop.page.getByRole('button', { name: 'Sign out Safari on iOS' }).click()
    await laptop.page.locator('#status-text', { hasText: 'Safari on iOS is signed out.' }).waitFor()
    // The list still shows the tablet (its reload is on its way): the user ends it too, and the quick reload shows
    // this device alone.
    await laptop.page.getByRole('button', { name: 'Sign out Safari on iPadOS' }).click()
    await laptop.page.locator('#status-text', { hasText: 'Safari on iPadOS is signed out.' }).waitFor()
    await laptop.page.getByTestId('session-item').nth(1).waitFor({ state: 'detached' })
    t.same(await listed(laptop.page), ['Chrome on Linux'], 'the second reload\'s list')

    // Now the first reload's answer, the older list, arrives.
    const arrived = laptop.page.waitForEvent('requestfinished', (request) => request === late)
    held.open()
    await arrived
    await laptop.page.waitForTimeout(300)

    t.equal(await authenticated(tablet.page), false, 'the server: the tablet is signed out')
    t.equal(await authenticated(phone.page), false, 'the server: the phone is signed out')
    t.same(await listed(laptop.page), ['Chrome on Linux'], 'the list still shows this device only, not an ended one')
    t.equal(await laptop.page.getByTestId('end-session').count(), 0, 'no "Sign out" button for a device already signed out')
    t.equal(await laptop.page.getByTestId('error').isVisible(), false, 'no error shown')
    t.equal(await laptop.page.locator('#status-text').textContent(), 'Safari on iPadOS is signed out.', 'the status line as the latest answer left it')
  })
}
