import t from 'tap'
import { sharedBrowser, testIdText } from '../helpers/chromium.js'
import { signedInPage } from '../helpers/signed-in-page.js'

const browserFor = sharedBrowser(t)

t.test('top up opens the provider\'s top-up page in a new tab, cut off from the app', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, context, page, watch } = await signedInPage(t, browser)
  const before = stack.mock.counts().topup

  const newTab = context.waitForEvent('page')
  await page.getByTestId('topup').click()
  const tab = await newTab
  await tab.waitForURL(`${stack.mock.url}/topup`)
  t.equal(tab.url(), `${stack.mock.url}/topup`, 'the URL the provider gave')
  t.equal(await tab.locator('h1').textContent(), 'Top up your AIHubMix balance')
  t.equal(await tab.evaluate(() => window.opener), null, 'the provider\'s page cannot reach the app\'s window')
  t.equal(await tab.evaluate(() => document.referrer), '', 'no referrer')
  t.equal(stack.mock.counts().topup, before + 1, 'one top-up call at the provider')

  t.equal(page.url(), `${stack.url}/`, 'the app stays where it was')
  t.equal(await page.getByTestId('user-info').isVisible(), true)
  t.equal(await testIdText(page, 'topup'), 'Top up', 'the button is ready again')
  t.equal(await page.getByTestId('topup').isEnabled(), true)
  t.equal(await page.getByTestId('error').isVisible(), false)
  t.equal(context.pages().length, 2, 'exactly one new tab')
  t.same(watch.errorsAt(stack.url), [], 'no console error on the app\'s pages')
})

t.test('top up with the provider down: a readable error, and no tab left behind', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, context, page } = await signedInPage(t, browser)
  stack.mock.setFault('topup', 'http500')
  let tabs = 0
  context.on('page', () => { tabs++ })

  await page.getByTestId('topup').click()
  await page.getByTestId('error').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'error'), 'AIHubMix gave an unexpected answer. Please try again in a moment.')
  await page.getByTestId('topup').and(page.locator(':enabled')).waitFor()
  t.equal(tabs, 1, 'the click opened a tab at once')
  t.equal(context.pages().filter((p) => !p.isClosed()).length, 1, 'and closed it again')
  t.equal(await page.getByTestId('user-info').isVisible(), true, 'still signed in')
})

// What users saw: a top-up tab closed before it loaded (it says "Opening the AIHubMix top-up page…") made the page
// say "Your browser blocked the new tab." with a link, although nothing was blocked and the user chose to close
// it. A tab closed by the user now gets nothing said.
t.test('the top-up tab closed by the user while it loads: no "your browser blocked" notice', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const { stack, context, page } = await signedInPage(t, browser)
  stack.mock.setLatency('topup', 1500)
  const opened = context.waitForEvent('page')
  await page.getByTestId('topup').click()
  const tab = await opened
  await tab.close()
  await page.getByTestId('topup').and(page.locator(':enabled')).waitFor()
  t.equal(await page.locator('#topup-fallback').isVisible(), false, `no blocked-tab notice (shown: ${JSON.stringify(await page.locator('#topup-fallback').textContent())})`)
  t.equal(await page.getByTestId('error').isVisible(), false, 'and no error')
})
