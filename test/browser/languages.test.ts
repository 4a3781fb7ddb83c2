import t from 'tap'
import { gate, openPage, sharedBrowser, testIdText } from '../helpers/chromium.js'
import { foreignWords, LANGUAGES, LOCALE, visibleText, words, type Language } from '../helpers/languages.js'
import { startStack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

// The page speaks the browser's language (Chromium's `locale`: navigator.languages for the
// script, Accept-Language for the server's first paint): signed out, with an error, while
// signing in and signed in, with its dates and numbers formatted for that language, and no word
// of another language anywhere on it. The sign-in window itself has no words to translate.

/** A user whose balance needs grouping and whose usage a decimal: 1,234,890.00 and 1.2%. */
const USER = { quota: 1250000000, used_quota: 15110000 }

const EXPECTED: Record<Language, { memberSince: string, balance: string, usage: string }> = {
  en: { memberSince: 'AIHubMix member since January 1, 2022', balance: '1,234,890.00', usage: '1.2% of your quota used' },
  ja: { memberSince: 'AIHubMix 登録日：2022年1月1日', balance: '1,234,890.00', usage: '利用枠の 1.2% を使用済み' },
  'zh-CN': { memberSince: 'AIHubMix 注册日期：2022年1月1日', balance: '1,234,890.00', usage: '已使用额度的 1.2%' }
}

for (const language of LANGUAGES) {
  t.test(`a ${LOCALE[language]} browser gets the page in ${language}: signed out, an error, signing in, signed in`, async (t) => {
    const browser = await browserFor(t)
    if (browser === undefined) return
    const stack = await startStack({ mock: { user: USER } })
    t.teardown(() => stack.close())
    const { context, page, watch } = await openPage(t, browser, { locale: LOCALE[language], timezoneId: 'UTC' })
    // The sign-in window posts, then closes: hold the close to read it first.
    await context.addInitScript(() => {
      if (window.name !== 'aihubmix_login') return
      window.close = () => { document.documentElement.dataset.closeRequested = 'yes' }
    })
    const allowed = ['user123', 'user@example.com', stack.mock.url]

    // Signed out, with the error a cancelled sign-in leaves in the address.
    const answer = await page.goto(`${stack.url}/?error=access_denied`)
    t.match(await answer?.text(), `<html lang="${language}">`, 'the server\'s first paint is in the language of Accept-Language')
    await page.getByTestId('login').waitFor({ state: 'visible' })
    t.equal(await page.evaluate(() => document.documentElement.lang), language)
    t.equal(await page.title(), words(language, 'page.title'))
    t.equal(await testIdText(page, 'error'), words(language, 'error.access_denied'))
    t.equal(await testIdText(page, 'login'), words(language, 'login.button'))
    t.equal(await page.locator('#login-title').textContent(), words(language, 'login.title'))
    t.equal(await page.getByTestId('language').inputValue(), language, 'the switch shows the language')
    t.same(foreignWords(language, await visibleText(page), allowed), [], 'signed out: nothing in another language')

    // Signing in (the sign-in held at its start): the page's status, then the sign-in window,
    // which has no words at all.
    const held = gate()
    await context.route((url) => url.pathname === '/auth/login', async (route) => {
      await held.promise
      await route.continue()
    })
    const opened = page.waitForEvent('popup')
    await page.getByTestId('login').click()
    t.equal(await page.locator('#status-text').textContent(), words(language, 'status.popupOpen'))
    t.equal(await testIdText(page, 'login'), words(language, 'login.showWindow'), 'the button brings the open window back')
    held.open()
    const popup = await opened
    await popup.locator('html[data-close-requested="yes"]').waitFor({ state: 'attached' })
    t.equal(new URL(popup.url()).pathname, '/auth/callback')
    t.equal(await popup.evaluate(() => document.body.innerText.trim()), '', 'the sign-in window shows no words')
    t.equal(await popup.title(), 'AIHubMix')
    await popup.close()

    // Signed in: every word, date and number of the language.
    await page.getByTestId('user-info').waitFor({ state: 'visible' })
    t.equal(await page.locator('#welcome').textContent(), words(language, 'user.welcomeNamed', { name: 'user123' }))
    t.equal(await page.locator('#member-since').textContent(), EXPECTED[language].memberSince)
    t.equal(await testIdText(page, 'balance'), EXPECTED[language].balance)
    t.equal(await page.locator('#usage-text').textContent(), EXPECTED[language].usage)
    t.equal(await testIdText(page, 'refresh-balance'), words(language, 'balance.refresh'))
    t.equal(await testIdText(page, 'topup'), words(language, 'topup.button'))
    t.equal(await testIdText(page, 'logout'), words(language, 'logout.button'))
    t.equal(await page.getByTestId('error').isVisible(), false)
    t.same(foreignWords(language, await visibleText(page), allowed), [], 'signed in: nothing in another language')

    // Signed out again, in words of the language.
    await page.getByTestId('logout').click()
    await page.getByTestId('login').waitFor({ state: 'visible' })
    t.equal(await page.locator('#status-text').textContent(), words(language, 'status.signedOut'))
    t.same(await page.evaluate(() => localStorage.length), 0, 'nothing stored: the browser\'s language needs no choice kept')
    t.same(watch.errorsAt(stack.url), [], 'no console error (a missing string would be one)')
  })
}
