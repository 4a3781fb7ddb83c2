import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core'
import { openPage, signInWithPopup, type TestLike, type Watch } from './chromium.js'
import { startStack, type Stack } from './stack.js'

/**
 * The example stack (closed at teardown) and a fresh page of `browser` on it, signed in through the popup: the
 * start of most browser tests.
 */
export async function signedInPage (
  t: Pick<TestLike, 'teardown'>,
  browser: Browser,
  options: BrowserContextOptions = {}
): Promise<{ stack: Stack, context: BrowserContext, page: Page, watch: Watch }> {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page, watch } = await openPage(t, browser, options)
  await signInWithPopup(page, stack.url)
  return { stack, context, page, watch }
}

/** The example stack (closed at teardown) and a fresh page of `browser` on it, signed out, its "Sign in" shown. */
export async function signedOutPage (
  t: Pick<TestLike, 'teardown'>,
  browser: Browser
): Promise<{ stack: Stack, context: BrowserContext, page: Page, watch: Watch }> {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const { context, page, watch } = await openPage(t, browser)
  await page.goto(`${stack.url}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  return { stack, context, page, watch }
}
