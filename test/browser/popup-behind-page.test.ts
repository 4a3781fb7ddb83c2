import t from 'tap'
import { openPage, sharedBrowser, testIdText } from '../helpers/chromium.js'
import { startStack } from '../helpers/stack.js'

// What users met (from the page review): the sign-in window opened, the user clicked back into the page (which then
// covered the small window, as any click on the main window does). The page said "Finish signing in in the AIHubMix
// window…", and its only button, "Signing in…", was disabled: nothing on the page brought the window back. login()
// had the code for it (an open window is focused, no second one opened), but it never ran: the busy button could not
// be clicked. While the window is open the button now stays ready, says "Show the sign-in window" (in the page's
// language, see languages.test.ts), and brings it to the front.

const browserFor = sharedBrowser(t)

t.test('a sign-in window lost behind the page: "Show the sign-in window" brings it back, no second sign-in', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  // The consent screen (no auto-authorize) keeps the window open while the user looks for it.
  const stack = await startStack({ oauth: { autoAuthorize: false } })
  t.teardown(() => stack.close())
  const { page, watch } = await openPage(t, browser)
  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  await popup.waitForLoadState()
  await page.bringToFront()

  t.equal(await page.locator('#status-text').textContent(), 'Finish signing in in the AIHubMix window…')
  t.equal(await testIdText(page, 'login'), 'Show the sign-in window', 'the button says what it does now')
  t.equal(await page.getByTestId('login').isEnabled(), true, 'and can be clicked')
  t.equal(await page.getByTestId('login').getAttribute('aria-busy'), 'false', 'not announced as busy')

  // (Headless Chromium fires no focus event for window.focus(), so the click itself is what is checked: it reaches
  // login(), which focuses the window it holds, opens no second one and starts no second sign-in.)
  let second = false
  page.on('popup', () => { second = true })
  const logins = (): number => watch.requests.filter((url) => new URL(url).pathname === '/auth/login').length
  const before = logins()
  await page.getByTestId('login').click({ timeout: 2000 })
  await page.waitForTimeout(300)
  t.equal(second, false, 'no second sign-in window')
  t.equal(logins(), before, 'no second sign-in started')
  t.equal(popup.isClosed(), false, 'the window is still there')
  t.equal(await page.locator('#status-text').textContent(), 'Finish signing in in the AIHubMix window…', 'still waiting for it')

  // Closed by hand: the usual "Sign in" again.
  await popup.close()
  await page.getByText('The sign-in window was closed before signing in finished.').waitFor()
  t.equal(await testIdText(page, 'login'), 'Sign in with AIHubMix')
  t.equal(await page.getByTestId('login').isEnabled(), true)
})
