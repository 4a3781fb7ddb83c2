import t from 'tap'
import type { Page } from 'playwright-core'
import { sharedBrowser } from '../helpers/chromium.js'
import { signedInPage } from '../helpers/signed-in-page.js'

// What keyboard and screen-reader users met (from the page review): the provider failed at the page's first load,
// the page showed the error and "Try again". Enter on "Try again" hid the focused button while the page asked again,
// so the focus fell to <body>; when that failed too, the button came back but the focus did not, and the user had
// to Tab through the page again to reach it (focus-after-action.test.ts covers the other buttons). "Try again" now
// gets the focus back when it is offered again; a retry that succeeds takes it to the welcome heading, as before.

const browserFor = sharedBrowser(t)

async function focused (page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement
    if (el === null || el === document.body) return 'body'
    return el.id === '' ? el.tagName.toLowerCase() : `#${el.id}`
  })
}

t.test('Enter on "Try again" that fails again: the focus stays on "Try again"', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, page } = await signedInPage(t, browser)
  stack.mock.setFault('userinfo', 'http503')
  await page.reload()
  await page.locator('#retry').waitFor({ state: 'visible' })
  await page.locator('#retry').focus()
  t.equal(await focused(page), '#retry')

  const asked = page.waitForResponse((r) => r.url().endsWith('/api/user/info'))
  await page.keyboard.press('Enter')
  await asked
  await page.locator('#retry').waitFor({ state: 'visible' })
  t.equal(await page.getByTestId('error').isVisible(), true, 'the error again')
  t.equal(await focused(page), '#retry', 'the focus back on "Try again", not lost to <body>')

  // The provider is back: Enter again signs the page in, the focus on the welcome heading.
  stack.mock.setFault('userinfo', null)
  await page.keyboard.press('Enter')
  await page.getByTestId('user-info').waitFor({ state: 'visible', timeout: 5000 })
  t.equal(await page.locator('#retry').isHidden(), true, '"Try again" is gone')
  t.equal(await focused(page), '#welcome', 'the focus on the welcome heading')
})
