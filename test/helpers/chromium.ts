import { accessSync, constants } from 'node:fs'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core'

/**
 * Real-browser test helpers: Debian's Chromium driven by playwright-core.
 *
 * `launch(t)` starts Chromium for one test and closes it at teardown. When the
 * executable is missing the test is skipped with a loud notice, except under
 * `CI=true`, where a missing browser fails the test: CI must never pass by
 * skipping the browser tests.
 */

/** Where Chromium is looked for: `CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`. */
export function chromiumPath (env: Record<string, string | undefined> = process.env): string {
  const configured = env.CHROMIUM_PATH
  return configured !== undefined && configured !== '' ? configured : '/usr/bin/chromium'
}

/** Headless, no sandbox (CI runs as root), and nothing that talks to the network on its own. */
export const CHROMIUM_ARGS: readonly string[] = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
])

/** The small part of a tap `Test` the helpers use. */
export interface TestLike {
  teardown (fn: () => unknown): void
  comment (...message: unknown[]): void
  fail (message: string): boolean
  plan (n: number, comment?: string): void
}

function isExecutable (path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

type Started = { browser: Browser } | { missing: string } | { failed: string }

async function start (): Promise<Started> {
  const path = chromiumPath()
  if (!isExecutable(path)) {
    return { missing: `Chromium not found at ${path}: set CHROMIUM_PATH or install Debian's chromium (.ci/run does)` }
  }
  try {
    return { browser: await chromium.launch({ executablePath: path, headless: true, args: [...CHROMIUM_ARGS] }) }
  } catch (err) {
    return { failed: `Chromium at ${path} did not start: ${(err as Error).message.split('\n')[0] ?? ''}` }
  }
}

/** The browser, or `undefined` after skipping (browser missing) or failing (CI, or a broken browser) `t`. */
function browserOrStop (t: TestLike, started: Started): Browser | undefined {
  if ('browser' in started) return started.browser
  if ('failed' in started) {
    t.fail(started.failed)
    return undefined
  }
  if (process.env.CI === 'true') {
    t.fail(`${started.missing}; under CI=true the browser tests must run`)
    return undefined
  }
  t.comment('!'.repeat(72))
  t.comment(`!!! BROWSER TEST SKIPPED: ${started.missing}`)
  t.comment('!'.repeat(72))
  t.plan(0, started.missing)
  return undefined
}

/**
 * Launches Chromium for test `t` (closed at its teardown). Returns `undefined` when the test
 * must stop: the browser is missing (skipped, or failed under CI=true) or would not start
 * (always a failure). Call it before any assertion of `t`: the skip is a plan of 0.
 */
export async function launch (t: TestLike): Promise<Browser | undefined> {
  const started = await start()
  if ('browser' in started) t.teardown(() => started.browser.close())
  return browserOrStop(t, started)
}

/**
 * One Chromium for a whole test file: launched on the first call, closed when `file` (the
 * file's root `t`) ends. Each test still gets a fresh context from `openPage()`. The returned
 * function behaves like `launch(t)` for each test: skip, or fail under CI, when it is missing.
 */
export function sharedBrowser (file: Pick<TestLike, 'teardown'>): (t: TestLike) => Promise<Browser | undefined> {
  let started: Promise<Started> | undefined
  return async (t) => {
    if (started === undefined) {
      started = start()
      file.teardown(async () => {
        const s = await started
        if (s !== undefined && 'browser' in s) await s.browser.close()
      })
    }
    return browserOrStop(t, await started)
  }
}

/** One response the browser received, with its body when the browser still had it. */
export interface SeenResponse {
  url: string
  status: number
  headers: Record<string, string>
  /** `undefined` for redirects and bodies the browser no longer held. */
  body: string | undefined
}

/** Everything a context saw, for "no console error" and leak assertions. */
export interface Watch {
  /** `console.error` messages as "<page url>: <text>", failed loads included ("Failed to load resource: ..."). */
  consoleErrors: string[]
  /** Uncaught exceptions in any page of the context, as "<page url>: <message>". */
  pageErrors: string[]
  /** Console errors and uncaught exceptions of the pages at `origin` (other sites' pages have their own faults). */
  errorsAt (origin: string): string[]
  /** Every response of every page of the context, once their bodies are read. */
  responses (): Promise<SeenResponse[]>
  /** URLs of every request the context's pages made, in order. */
  requests: string[]
}

/** Records console errors, page errors, requests and responses of every page of `context`. */
export function watchContext (context: BrowserContext): Watch {
  const consoleErrors: string[] = []
  const pageErrors: string[] = []
  const requests: string[] = []
  const pending: Array<Promise<SeenResponse>> = []
  const attach = (page: Page): void => {
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(`${page.url()}: ${msg.text()}`)
    })
    page.on('pageerror', (err) => { pageErrors.push(`${page.url()}: ${err.message}`) })
  }
  context.on('page', attach)
  for (const page of context.pages()) attach(page)
  context.on('request', (request) => { requests.push(request.url()) })
  context.on('response', (response) => {
    const status = response.status()
    const headers = response.headers()
    const url = response.url()
    const body = status >= 300 && status < 400
      ? Promise.resolve(undefined)
      : response.body().then((b) => b.toString('utf8'), () => undefined)
    pending.push(body.then((text) => ({ url, status, headers, body: text })))
  })
  return {
    consoleErrors,
    pageErrors,
    errorsAt: (origin) => [...consoleErrors, ...pageErrors].filter((line) => line.startsWith(`${origin}/`)),
    requests,
    responses: () => Promise.all(pending)
  }
}

/** A fresh context (closed at teardown) with one page, watched from its first request. */
export async function openPage (
  t: Pick<TestLike, 'teardown'>,
  browser: Browser,
  options: BrowserContextOptions = {}
): Promise<{ context: BrowserContext, page: Page, watch: Watch }> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 }, ...options })
  t.teardown(() => context.close())
  const watch = watchContext(context)
  const page = await context.newPage()
  return { context, page, watch }
}

/** Safari on an iPhone and on an iPad, as the device list names them ("Safari on iOS", "Safari on iPadOS"). */
export const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
export const IPAD = 'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'

/** Another device of the same user: a fresh context (`userAgent`, or the browser's own) signed in at `appUrl`. */
export async function signedInDevice (
  t: Pick<TestLike, 'teardown'>,
  browser: Browser,
  appUrl: string,
  userAgent?: string
): Promise<{ context: BrowserContext, page: Page, watch: Watch }> {
  const device = await openPage(t, browser, userAgent === undefined ? {} : { userAgent })
  await signInWithPopup(device.page, appUrl)
  return device
}

/** A promise with its resolver outside, to hold a routed request until the test lets it go. */
export function gate (): { promise: Promise<void>, open: () => void } {
  let open: () => void = () => {}
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

/** The trimmed text of the element with `data-testid=<id>`. */
export async function testIdText (page: Page, id: string): Promise<string> {
  return ((await page.getByTestId(id).textContent()) ?? '').trim()
}

/** Waits until the element with `data-testid=<id>` is visible and its whole text is `text`. */
export async function waitForTestIdText (page: Page, id: string, text: string): Promise<void> {
  const exact = new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`)
  await page.locator(`[data-testid="${id}"]`, { hasText: exact }).waitFor({ state: 'visible' })
}

/**
 * Opens the example page at `appUrl`, waits for the sign-in button, clicks it and follows the
 * popup through the provider until it has closed itself and the page shows the user. Returns
 * the (closed) popup.
 */
export async function signInWithPopup (page: Page, appUrl: string): Promise<Page> {
  if (!page.url().startsWith(appUrl)) await page.goto(`${appUrl}/`)
  await page.getByTestId('login').waitFor({ state: 'visible' })
  const opened = page.waitForEvent('popup')
  await page.getByTestId('login').click()
  const popup = await opened
  if (!popup.isClosed()) await popup.waitForEvent('close')
  await page.getByTestId('user-info').waitFor({ state: 'visible' })
  return popup
}

/**
 * Matches the provider's authorize endpoint (any query) at `providerUrl`, for `waitForURL()`.
 * (A route cannot catch it: in the sign-in flow it is the target of a redirect.)
 */
export function isAuthorize (providerUrl: string): (url: URL) => boolean {
  return (url) => url.origin === providerUrl && url.pathname === '/api/oauth2/authorize'
}
