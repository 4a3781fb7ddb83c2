import t from 'tap'
import { openPage, sharedBrowser, signInWithPopup, testIdText } from '../helpers/chromium.js'
import { foreignWords, visibleText, words } from '../helpers/languages.js'
import { startStack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

// The language switch ([data-testid=language]) says everything on the page again in the chosen
// language at once, dates and numbers included, with no request; the choice is kept in
// localStorage (a language name, nothing else; no cookie) and wins over the browser's languages
// after a reload, in every tab.

const STORAGE_KEY = 'aihubmix-example.language'

t.test('switching to Japanese and back: every word at once, no request, and the choice outlives a reload', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page, watch } = await openPage(t, browser, { locale: 'en-US', timezoneId: 'UTC' })

  // Signed out, with an error on the page.
  await page.goto(`${stack.url}/?error=access_denied`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await testIdText(page, 'error'), words('en', 'error.access_denied'))
  const requestsBefore = watch.requests.length
  await page.getByTestId('language').selectOption('ja')
  t.equal(await page.evaluate(() => document.documentElement.lang), 'ja')
  t.equal(await page.title(), words('ja', 'page.title'))
  t.equal(await testIdText(page, 'error'), words('ja', 'error.access_denied'))
  t.equal(await testIdText(page, 'login'), words('ja', 'login.button'))
  t.equal(await page.locator('#login-title').textContent(), words('ja', 'login.title'))
  t.equal(watch.requests.length, requestsBefore, 'no request: the page had every language already')
  t.same(await page.evaluate(() => ({ ...localStorage })), { [STORAGE_KEY]: 'ja' }, 'localStorage holds the language name and nothing else')

  // Signing in and out keeps it; signed in, every word, date and number is Japanese.
  await signInWithPopup(page, stack.url)
  t.equal(await page.locator('#welcome').textContent(), words('ja', 'user.welcomeNamed', { name: 'user123' }))
  t.equal(await page.locator('#member-since').textContent(), 'AIHubMix 登録日：2022年1月1日')
  t.equal(await page.locator('#usage-text').textContent(), '利用枠の 25% を使用済み')
  t.equal(await testIdText(page, 'refresh-balance'), words('ja', 'balance.refresh'))
  t.equal(await page.locator('.badge').getAttribute('title'), words('ja', 'brand.badgeTitle'))
  await page.getByTestId('refresh-balance').click()
  await page.locator('#balance-note', { hasText: /^\d{1,2}:\d{2}:\d{2} 時点で最新です$/ }).waitFor()
  t.same(foreignWords('ja', await visibleText(page), ['user123', 'user@example.com', stack.mock.url]), [], 'no English word on the page')
  t.same((await context.cookies(stack.url)).map((c) => c.name), ['sid'], 'no cookie for the choice')

  // Back to English: what was said in Japanese is said again in English, the time of the note too.
  const beforeEnglish = watch.requests.length
  await page.getByTestId('language').selectOption('en')
  t.equal(await page.locator('#welcome').textContent(), 'Welcome back, user123!')
  t.equal(await page.locator('#member-since').textContent(), 'AIHubMix member since January 1, 2022')
  t.equal(await page.locator('#usage-text').textContent(), '25% of your quota used')
  t.match(await page.locator('#balance-note').textContent(), /^Up to date as of \d{1,2}:\d{2}:\d{2} [AP]M$/)
  t.equal(await testIdText(page, 'balance'), '750.00')
  t.same(foreignWords('en', await visibleText(page), []), [], 'no Japanese left')
  t.equal(watch.requests.length, beforeEnglish, 'no request')
  await page.getByTestId('language').selectOption('ja')

  // A reload: the server still answers in the browser's English, the page then keeps the choice.
  const answer = await page.reload()
  t.match(await answer?.text(), '<html lang="en">', 'the server never learns of the choice')
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  t.equal(await page.evaluate(() => document.documentElement.lang), 'ja')
  t.equal(await page.getByTestId('language').inputValue(), 'ja')
  t.equal(await testIdText(page, 'logout'), words('ja', 'logout.button'))
  t.equal(await page.locator('#welcome').textContent(), words('ja', 'user.welcomeNamed', { name: 'user123' }))

  // Another tab of the same browser opens in it, and follows when the choice changes.
  const other = await context.newPage()
  await other.goto(`${stack.url}/`)
  await other.getByTestId('user-info').waitFor({ state: 'visible' })
  t.equal(await testIdText(other, 'topup'), words('ja', 'topup.button'), 'a new tab opens in the chosen language')

  await page.getByTestId('language').selectOption('zh-CN')
  t.equal(await testIdText(page, 'topup'), words('zh-CN', 'topup.button'))
  await other.locator('html[lang="zh-CN"]').waitFor({ state: 'attached' })
  t.equal(await testIdText(other, 'topup'), words('zh-CN', 'topup.button'), 'the other tab follows')

  await page.getByTestId('language').selectOption('en')
  t.equal(await page.locator('#member-since').textContent(), 'AIHubMix member since January 1, 2022')
  t.equal(await testIdText(page, 'topup'), 'Top up')
  t.same(await page.evaluate(() => ({ ...localStorage })), { [STORAGE_KEY]: 'en' })
  t.same(watch.errorsAt(stack.url), [], 'no console error')
})

t.test('a stored choice that is not a language is ignored: the browser\'s language wins', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page, watch } = await openPage(t, browser, { locale: 'zh-CN' })
  await context.addInitScript((key) => { localStorage.setItem(key, '<b>fr</b>') }, STORAGE_KEY)
  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  t.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN')
  t.equal(await testIdText(page, 'login'), words('zh-CN', 'login.button'))
  t.same(watch.errorsAt(stack.url), [])
})
