import t from 'tap'
import type { Page } from 'playwright-core'
import { openPage, sharedBrowser, signInWithPopup } from '../helpers/chromium.js'
import { words } from '../helpers/languages.js'
import { startStack } from '../helpers/stack.js'

// What British (Australian, Indian, Irish…) users saw (from the page review): the page in English, as it should be,
// but every date and time American ("AIHubMix member since January 1, 2022", "Signed in Dec 1, 2026, 5:39 PM", "Up
// to date as of 5:39:12 PM") where their browser writes "1 January 2022", "1 Dec 2026, 17:39" and "17:39:12": the
// script formatted with the page's language tag, 'en'. It now formats with the browser's own variant of the page's
// language (the first of navigator.languages that is that language), and the same for Chinese and Japanese.

const browserFor = sharedBrowser(t)

/** The "Signed in …" line of this device's session, as a browser of `locale` writes the date. */
async function expectedStarted (page: Page, locale: string, say: (date: string) => string): Promise<string> {
  const sessions = await page.evaluate(async () => (await (await fetch('/auth/sessions')).json()).sessions as Array<{ createdAt: string }>)
  const date = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(sessions[0]?.createdAt ?? 0))
  return say(date)
}

t.test('an en-GB browser: English words, British dates and times', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page } = await openPage(t, browser, { locale: 'en-GB', timezoneId: 'UTC' })
  await signInWithPopup(page, stack.url)
  await page.getByTestId('session-item').first().waitFor()
  t.equal(await page.locator('#welcome').textContent(), 'Welcome back, user123!', 'the page is in English')
  t.equal(await page.locator('#member-since').textContent(), 'AIHubMix member since 1 January 2022', 'the long date as en-GB writes it')
  t.equal(await page.locator('.session-meta > span').first().textContent(), await expectedStarted(page, 'en-GB', (date) => `Signed in ${date}`), 'the session\'s start as en-GB writes it')
  await page.getByTestId('refresh-balance').click()
  await page.locator('#balance-note:not(:empty)').waitFor()
  t.match(await page.locator('#balance-note').textContent(), /^Up to date as of \d\d:\d\d:\d\d$/, 'a 24-hour clock, as the browser\'s')

  // Japanese picked with the switch (the browser asks for no Japanese): Japanese dates.
  await page.getByTestId('language').selectOption('ja')
  t.equal(await page.locator('#member-since').textContent(), words('ja', 'user.memberSince', { date: '2022年1月1日' }), 'the page\'s own language when the browser has no variant of it')
})

t.test('a zh-TW browser: the Simplified Chinese page writes times as the browser does', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { page } = await openPage(t, browser, { locale: 'zh-TW', timezoneId: 'UTC' })
  await signInWithPopup(page, stack.url)
  await page.getByTestId('session-item').first().waitFor()
  t.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN', 'the page is in Simplified Chinese')
  t.equal(await page.locator('.session-meta > span').first().textContent(), await expectedStarted(page, 'zh-TW', (date) => words('zh-CN', 'sessions.started', { date })), 'the session\'s start as zh-TW writes it (下午…)')
})
