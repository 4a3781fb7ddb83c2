import t from 'tap'
import type { Page } from 'playwright-core'
import { openPage, sharedBrowser, signInWithPopup, testIdText } from '../helpers/chromium.js'
import { LOCALE, words, type Language } from '../helpers/languages.js'
import { startStack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

// "Where you're signed in": two browsers of one user, a laptop (Chromium as it is) and a phone
// (an iPhone's User-Agent, with markup in it), in English and in Japanese. The laptop sees both,
// ends the phone's session, then signs out everywhere.

const PHONE_UA = '<img src=x onerror=alert(1)> Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'

interface Listed { id: string, current: boolean, createdAt: string, lastSeenAt: string, userAgent: string }

async function sessionsOf (page: Page): Promise<Listed[]> {
  return await page.evaluate(async () => (await (await fetch('/auth/sessions')).json()).sessions)
}

async function authenticated (page: Page): Promise<boolean> {
  return await page.evaluate(async () => (await (await fetch('/auth/session')).json()).authenticated === true)
}

function dateTime (language: Language, iso: string): string {
  return new Intl.DateTimeFormat(language, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(iso))
}

const DEVICES: Record<'en' | 'ja', { laptop: string, phone: string }> = {
  en: { laptop: 'Chrome on Linux', phone: 'Safari on iOS' },
  ja: { laptop: 'Linux の Chrome', phone: 'iOS の Safari' }
}

for (const language of ['en', 'ja'] as const) {
  t.test(`where you're signed in, in ${language}: both devices listed, one ended from the other, then everywhere`, async (t) => {
    const browser = await browserFor(t)
    if (browser === undefined) return
    const stack = await startStack()
    t.teardown(() => stack.close())
    const options = { locale: LOCALE[language], timezoneId: 'UTC' }
    const laptop = await openPage(t, browser, options)
    const phone = await openPage(t, browser, { ...options, userAgent: PHONE_UA, viewport: { width: 390, height: 844 } })
    let dialogs = 0
    for (const { page } of [laptop, phone]) page.on('dialog', (dialog) => { dialogs++; dialog.dismiss().catch(() => {}) })
    await signInWithPopup(laptop.page, stack.url)
    await signInWithPopup(phone.page, stack.url)

    // The laptop's list, once it loads again: the phone first (it signed in last), then itself.
    await laptop.page.reload()
    const items = laptop.page.getByTestId('session-item')
    await items.nth(1).waitFor({ state: 'visible' })
    t.equal(await items.count(), 2)
    t.equal(await laptop.page.locator('#sessions-title').textContent(), words(language, 'sessions.title'))
    const listed = await sessionsOf(laptop.page)
    const [newest, current] = listed as [Listed, Listed]
    const phoneItem = items.nth(0)
    const laptopItem = items.nth(1)
    t.equal(await phoneItem.locator('.session-device').textContent(), DEVICES[language].phone)
    t.equal(await phoneItem.locator('.session-device').getAttribute('title'), PHONE_UA, 'the raw User-Agent only as an attribute\'s text')
    t.equal(await laptop.page.locator('[data-testid="sessions"] img').count(), 0, 'no markup from a User-Agent')
    t.equal(await phoneItem.locator('.this-device').count(), 0)
    t.equal(await phoneItem.locator('.session-meta > span').nth(0).textContent(), words(language, 'sessions.started', { date: dateTime(language, newest.createdAt) }))
    t.equal(await phoneItem.locator('.session-meta > span').nth(1).textContent(), words(language, 'sessions.lastSeen', { date: dateTime(language, newest.lastSeenAt) }))
    t.equal(await testIdText(laptop.page, 'end-session'), words(language, 'sessions.end'), 'one button: for the other device only')
    // Every such button reads "Sign out": its accessible name says which device (a screen reader lists buttons alone).
    t.equal(await laptop.page.getByTestId('end-session').getAttribute('aria-label'), words(language, 'sessions.endLabel', { device: DEVICES[language].phone }), 'named with its device')
    t.equal(await laptopItem.locator('.session-device').textContent(), DEVICES[language].laptop)
    t.equal(await laptopItem.locator('.this-device').textContent(), words(language, 'sessions.thisDevice'))
    t.equal(await laptopItem.locator('.session-meta > span').nth(0).textContent(), words(language, 'sessions.started', { date: dateTime(language, current.createdAt) }))
    t.equal(await laptopItem.locator('.session-meta > span').nth(1).textContent(), words(language, 'sessions.activeNow'))
    t.equal(await laptopItem.getByTestId('end-session').count(), 0)
    t.equal(await testIdText(laptop.page, 'logout-everywhere'), words(language, 'sessions.everywhere'))

    // End the phone's session from the laptop: DELETE with the header, gone from the list at once.
    const deleted = laptop.page.waitForRequest((r) => r.method() === 'DELETE')
    await laptop.page.getByTestId('end-session').click()
    const request = await deleted
    t.equal(new URL(request.url()).pathname, `/auth/sessions/${newest.id}`)
    t.equal(await request.headerValue('x-csrf'), '1')
    await laptop.page.locator('#status-text', { hasText: words(language, 'sessions.ended', { device: DEVICES[language].phone }) }).waitFor()
    await items.nth(1).waitFor({ state: 'detached' })
    t.equal(await items.count(), 1)
    t.equal(await authenticated(phone.page), false, 'the phone is signed out')
    await phone.page.getByTestId('refresh-balance').click()
    await phone.page.getByTestId('login').waitFor({ state: 'visible' })
    t.equal(await authenticated(laptop.page), true, 'the laptop is not')

    // The phone signs in again; then the laptop signs out everywhere.
    await signInWithPopup(phone.page, stack.url)
    await laptop.page.reload()
    await items.nth(1).waitFor({ state: 'visible' })
    const everywhere = laptop.page.waitForRequest((r) => r.url().endsWith('/auth/logout?everywhere=1'))
    await laptop.page.getByTestId('logout-everywhere').click()
    const out = await everywhere
    t.equal(out.method(), 'POST')
    t.equal(await out.headerValue('x-csrf'), '1')
    await laptop.page.getByTestId('login').waitFor({ state: 'visible' })
    t.equal(await laptop.page.locator('#status-text').textContent(), words(language, 'status.signedOutEverywhere'))
    t.equal(await laptop.page.getByTestId('sessions').isVisible(), false)
    t.equal(await authenticated(laptop.page), false)
    t.equal(await authenticated(phone.page), false, 'the phone is signed out too')
    t.equal(dialogs, 0, 'no script ran from a User-Agent')
    t.same(laptop.watch.errorsAt(stack.url), [], 'no console error on the laptop')
  })
}
