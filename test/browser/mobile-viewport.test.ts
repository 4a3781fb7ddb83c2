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
