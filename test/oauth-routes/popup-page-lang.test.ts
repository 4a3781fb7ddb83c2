import t from 'tap'
import { popupLanguage, popupPage } from '../../src/oauth-routes/popup-page.js'
import { startStack } from '../helpers/stack.js'
import { TestBrowser } from '../helpers/browser.js'

// The sign-in popup's page had no <html lang>: a screen reader guessed the language of its title. It now has the
// browser's first language (Accept-Language, what the app's page and the provider's go by), else en.

t.test('popupLanguage: the first language the browser asks for, canonical, else en', async (t) => {
  const cases: Array<[string | string[] | undefined, string]> = [
    [undefined, 'en'],
    ['', 'en'],
    ['ja-jp,ja;q=0.9,en;q=0.8', 'ja-JP'],
    ['fr;q=0.5, zh-CN', 'zh-CN'],
    ['zh-Hant-TW, ja;q=1', 'zh-Hant-TW'],
    ['es-419', 'es-419'],
    [['ja', 'en'], 'ja'],
    ['*', 'en'],
    ['en-US;q=0', 'en'],
    ['de;q=abc, x-private, ja', 'ja'],
    ['"><script>alert(1)</script>', 'en'],
    ['ja" onload="x', 'en'],
    [`${'a'.repeat(40)}, ko`, 'ko']
  ]
  for (const [header, lang] of cases) t.equal(popupLanguage(header), lang, JSON.stringify(header))
})

t.test('popupPage: <html lang> is the language given, en by default, and always an attribute\'s text', async (t) => {
  t.match(popupPage({ ok: true }, 'https://app.example', '/').html, /<html lang="en">/)
  t.match(popupPage({ ok: true }, 'https://app.example', '/', 'ja-JP').html, /<html lang="ja-JP">/)
  t.match(popupPage({ ok: true }, 'https://app.example', '/', '"><b>').html, /<html lang="&quot;&gt;&lt;b&gt;">/)
})

t.test('the popup sign-in\'s pages carry the browser\'s language', async (t) => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  for (const [headers, lang] of [[{ 'accept-language': 'ja-JP,ja;q=0.9,en;q=0.8' }, 'ja-JP'], [{}, 'en']] as const) {
    const browser = new TestBrowser()
    const start = await browser.get(`${stack.url}/auth/login?mode=popup`, headers)
    const back = await browser.get(TestBrowser.location(start), headers)
    const done = await browser.get(TestBrowser.location(back), headers)
    t.match(done.body, /"type":"aihubmix:login","ok":true/, 'the popup page of a sign-in that worked')
    t.match(done.body, `<html lang="${lang}">`, `${JSON.stringify(headers)}: lang="${lang}"`)
    // A forged code fails the exchange once the state is verified: the popup page again, with ok: false.
    const again = new TestBrowser()
    const s2 = await again.get(`${stack.url}/auth/login?mode=popup`, headers)
    const b2 = new URL(TestBrowser.location(await again.get(TestBrowser.location(s2), headers)))
    b2.searchParams.set('code', 'code_forged')
    const failed = await again.get(b2.href, headers)
    t.match(failed.body, /"ok":false,"error":"token_exchange_failed"/, 'the popup page of a sign-in that failed')
    t.match(failed.body, `<html lang="${lang}">`)
  }
})
