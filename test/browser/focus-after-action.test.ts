import t from 'tap'
import type { Page } from 'playwright-core'
import { IPHONE, sharedBrowser, signedInDevice } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

// What users saw (keyboard and screen reader): after "Refresh balance", a failed "Top up" or ending another device's
// session, the focus was on <body>: the busy button was disabled (which drops the focus) and nothing gave it back,
// and ending a session rebuilt the list without the focused button. A screen reader then read from the top of the
// document, or nothing. The button now gets the focus back when it is ready, and after a session is ended it goes
// to the list's heading.

const browserFor = sharedBrowser(t)

async function focused (page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement
    if (el === null || el === document.body) return 'body'
    return el.getAttribute('data-testid') ?? `${el.tagName.toLowerCase()}#${el.id}`
  })
}

t.test('Enter on "Refresh balance", "Top up" (provider down) and "Sign out" of another device: focus stays in place', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  await signedInDevice(t, browser, stack.url, IPHONE) // another device, whose session is ended below
  const { page } = await signedInDevice(t, browser, stack.url)
  await page.getByTestId('end-session').waitFor({ state: 'visible' })

  await page.getByTestId('refresh-balance').focus()
  await page.keyboard.press('Enter')
  await page.locator('#balance-note:not(:empty)').waitFor()
  t.equal(await focused(page), 'refresh-balance', 'after a refresh: still on "Refresh balance"')

  stack.mock.setFault('topup', 'http503')
  await page.getByTestId('topup').focus()
  await page.keyboard.press('Enter')
  await page.getByTestId('error').waitFor({ state: 'visible' })
  await page.getByTestId('topup').and(page.locator(':enabled')).waitFor()
  t.equal(await focused(page), 'topup', 'after a failed top-up: still on "Top up"')

  await page.getByTestId('end-session').focus()
  await page.keyboard.press('Enter')
  await page.getByText('Safari on iOS is signed out.').waitFor()
  t.not(await focused(page), 'body', 'after ending a session: focus is somewhere in the sessions card, not lost')
})
