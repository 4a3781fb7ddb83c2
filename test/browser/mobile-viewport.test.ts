import t from 'tap'
import type { Page } from 'playwright-core'
import { openPage, sharedBrowser, signInWithPopup } from '../helpers/chromium.js'
import { LANGUAGES, LOCALE } from '../helpers/languages.js'
import { startStack } from '../helpers/stack.js'

const browserFor = sharedBrowser(t)

// On a 390×844 phone the page fits its width in every language, signed out with an error and
// signed in: nothing scrolls sideways, no element reaches past the screen's edges, and no text
// runs out of its own box.

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, timezoneId: 'UTC' }

interface Fit { innerWidth: number, scrollWidth: number, outside: string[], spilling: string[], checked: number }

async function fit (page: Page): Promise<Fit> {
  return page.evaluate(() => {
    const name = (el: Element): string => `${el.tagName.toLowerCase()}${el.id === '' ? '' : `#${el.id}`}${typeof el.className === 'string' && el.className !== '' ? `.${el.className.split(' ').join('.')}` : ''}`
    const outside: string[] = []
    const spilling: string[] = []
    let checked = 0
    for (const el of document.body.querySelectorAll('*')) {
      if (!el.checkVisibility()) continue
      const box = el.getBoundingClientRect()
      if (box.width === 0 && box.height === 0) continue
      checked++
      if (box.left < -0.5 || box.right > window.innerWidth + 0.5) outside.push(`${name(el)} ${Math.round(box.left)}..${Math.round(box.right)}`)
      // A block whose content is wider than itself (cut off, or spilling over its neighbours);
      // the switch's label is 1px on purpose (there for screen readers only).
      if (el.closest('.visually-hidden') !== null) continue
      if (el instanceof HTMLElement && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) spilling.push(`${name(el)} ${el.scrollWidth} > ${el.clientWidth}`)
    }
    return { innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, outside, spilling, checked }
  })
}

for (const language of LANGUAGES) {
  t.test(`on a 390×844 phone in ${language}, nothing overflows, signed out or in`, async (t) => {
    const browser = await browserFor(t)
    if (browser === undefined) return
    // A balance with grouping and an e-mail address too long for one line.
    const stack = await startStack({ mock: { user: { quota: 1250000000, used_quota: 15110000, email: 'a.very.long.address.for.a.small.screen@subdomain.example.com' } } })
    t.teardown(() => stack.close())
    const { page, watch } = await openPage(t, browser, { ...PHONE, locale: LOCALE[language] })

    await page.goto(`${stack.url}/?error=reauth_required`)
    await page.getByTestId('login').waitFor({ state: 'visible' })
    await page.getByTestId('error').waitFor({ state: 'visible' })
    const signedOut = await fit(page)
    t.equal(signedOut.innerWidth, 390, 'the phone\'s width')
    t.ok(signedOut.scrollWidth <= signedOut.innerWidth, `signed out: no sideways scrolling (${signedOut.scrollWidth}px)`)
    t.same(signedOut.outside, [], 'signed out: every element within the screen')
    t.same(signedOut.spilling, [], 'signed out: no text out of its box')
    t.ok(signedOut.checked > 10, `${signedOut.checked} elements checked`)

    await signInWithPopup(page, stack.url)
    await page.getByTestId('refresh-balance').click()
    await page.locator('#balance-note:not(:empty)').waitFor()
    const signedIn = await fit(page)
    t.equal(signedIn.innerWidth, 390, 'not zoomed out to fit something wider')
    t.ok(signedIn.scrollWidth <= signedIn.innerWidth, `signed in: no sideways scrolling (${signedIn.scrollWidth}px)`)
    t.same(signedIn.outside, [], 'signed in: every element within the screen')
    t.same(signedIn.spilling, [], 'signed in: no text out of its box')
    t.ok(signedIn.checked > 20, `${signedIn.checked} elements checked`)
    t.same(watch.errorsAt(stack.url), [], 'no console error')
  })
}

// What users saw: ordinary-length values the provider sends ran out of the signed-in card. A user name without
// spaces (28 characters) ran out of "Welcome back, {name}!" on a phone (the heading could not wrap, and the
// profile's text column could not shrink below it); a six-figure balance ("123,456.78") ran out of its 240px
// box at 1000px (34px digits). Now headings wrap anywhere, the column shrinks, and the balance's size follows
// its box.

/** Elements of `selectors` whose content is wider than themselves or that end past their card's right edge. */
async function outOfCard (page: Page, selectors: string[]): Promise<string[]> {
  return page.evaluate((selectors) => {
    const out: string[] = []
    for (const sel of selectors) {
      const el = document.querySelector(sel)
      if (!(el instanceof HTMLElement)) continue
      const box = el.getBoundingClientRect()
      const card = el.closest('.card')?.getBoundingClientRect()
      if (el.scrollWidth > el.clientWidth + 1) out.push(`${sel}: content ${el.scrollWidth}px in a ${el.clientWidth}px box`)
      if (card !== undefined && box.right > card.right + 0.5) out.push(`${sel}: ends at ${Math.round(box.right)}px, past the card's edge ${Math.round(card.right)}px`)
    }
    if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page scrolls sideways: ${document.documentElement.scrollWidth}px > ${window.innerWidth}px`)
    return out
  }, selectors)
}

t.test('a 28-character user name on a 390px phone stays inside the card', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack({ mock: { user: { username: 'alexander_wolfeschlegel_1987' } } })
  t.teardown(() => stack.close())
  const { page } = await openPage(t, browser, PHONE)
  await signInWithPopup(page, stack.url)
  t.same(await outOfCard(page, ['#welcome', '#member-since', '.profile']), [], 'nothing runs out of the card')
})

t.test('a balance of 123,456.78 at 1000×700 stays inside its box', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  // balance_formatted = (quota - used_quota) / 1000 = "123456.78"
  const stack = await startStack({ mock: { user: { quota: 123456780, used_quota: 0 } } })
  t.teardown(() => stack.close())
  const { page } = await openPage(t, browser, { viewport: { width: 1000, height: 700 } })
  await signInWithPopup(page, stack.url)
  t.equal(await page.getByTestId('balance').textContent(), '123,456.78')
  t.same(await outOfCard(page, ['#balance', '.balance-box']), [], 'the balance fits its box')
})

// What users saw: a user name that starts with an emoji (or any character beyond the Basic Multilingual Plane) gave
// an avatar of half a character, a lone surrogate drawn as "�". The avatar now takes the first whole character.
t.test('a user name that starts with an emoji: the avatar shows the whole character', async (t) => {
  const browser = await browserFor(t)
  if (browser === undefined) return
  const stack = await startStack({ mock: { user: { username: '😀smile' } } })
  t.teardown(() => stack.close())
  const { page } = await openPage(t, browser, PHONE)
  await signInWithPopup(page, stack.url)
  const avatar = await page.locator('#avatar').textContent() ?? ''
  t.notMatch(avatar, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/, `no lone surrogate in the avatar (${JSON.stringify(avatar)})`)
  t.equal(avatar, '😀')
})
