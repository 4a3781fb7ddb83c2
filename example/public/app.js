// The example page's script: a plain ES module, served as it is from this origin (the page's
// Content-Security-Policy allows no other script), linted by ESLint and type-checked by
// `tsc -b` from its JSDoc (example/public/tsconfig.json).
//
// It holds no token and no secret: the HttpOnly session cookie goes with every same-origin call,
// and the server calls AIHubMix for it.
//
// Every word it shows comes from the page's string tables (example/i18n/*.json, handed over in
// the page's `#strings` block) through show(): the element and how to say it in any language
// are remembered, so switching the language says everything again, dates and numbers included.
// A new section of the page is its HTML in page.ts (static words with `data-i18n` keys), its
// keys in every example/i18n/*.json, and here a function that fills it with show() and tr().

const POPUP_NAME = 'aihubmix_login'

/**
 * The user as `/api/user/info` answers it (fields as far as the granted scopes give them).
 * @typedef {object} UserInfo
 * @property {unknown} [username]
 * @property {unknown} [email]
 * @property {unknown} [quota]
 * @property {unknown} [used_quota]
 * @property {unknown} [balance_formatted]
 * @property {unknown} [created_time]
 */

/**
 * One of the user's sessions as `/auth/sessions` answers it: `id` is an opaque handle (never the
 * session id), `userAgent` the browser's own words, shown only as text.
 * @typedef {object} SessionInfo
 * @property {string} id
 * @property {boolean} current
 * @property {string} createdAt
 * @property {string} lastSeenAt
 * @property {string} userAgent
 */

/** A failed call: `code` is the app's error code (or `network`), `status` the HTTP status. */
class ApiError extends Error {
  /**
   * @param {string} code
   * @param {number} [status]
   */
  constructor (code, status) {
    super(code)
    this.code = code
    this.status = status
  }
}

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function $ (id) {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`the page has no #${id}`)
  return el
}

/**
 * @param {string} id
 * @returns {HTMLButtonElement}
 */
function button (id) {
  const el = $(id)
  if (!(el instanceof HTMLButtonElement)) throw new Error(`#${id} is not a button`)
  return el
}

/** @returns {HTMLSelectElement} the language switch */
function languageSwitch () {
  const el = $('language')
  if (!(el instanceof HTMLSelectElement)) throw new Error('#language is not a select')
  return el
}

// ---- Languages -------------------------------------------------------------------------------

const LANGUAGES = /** @type {const} */ (['en', 'ja', 'zh-CN'])
/** @typedef {typeof LANGUAGES[number]} Language */

/** Where the user's own choice from the switch is kept (only ever a language name). */
const STORAGE_KEY = 'aihubmix-example.language'

/** @type {Record<Language, Record<string, string>>} */
const STRINGS = JSON.parse($('strings').textContent ?? '{}')

/**
 * @param {unknown} value
 * @returns {Language | undefined}
 */
function asLanguage (value) {
  return LANGUAGES.find((l) => l === value)
}

/**
 * The page's language for a language tag, by its primary subtag (as the server does for
 * Accept-Language): every English is `en`, every Japanese `ja`, every Chinese `zh-CN`.
 * @param {string} tag
 * @returns {Language | undefined}
 */
function languageOf (tag) {
  const primary = tag.trim().toLowerCase().split('-')[0]
  if (primary === 'en') return 'en'
  if (primary === 'ja') return 'ja'
  if (primary === 'zh') return 'zh-CN'
  return undefined
}

/** @returns {Language} the first of the browser's languages the page speaks, else English */
function browserLanguage () {
  const tags = navigator.languages.length > 0 ? navigator.languages : [navigator.language]
  for (const tag of tags) {
    const language = languageOf(tag)
    if (language !== undefined) return language
  }
  return 'en'
}

/** @returns {Language | undefined} the user's own choice, if any (storage may be off) */
function chosenLanguage () {
  try {
    return asLanguage(localStorage.getItem(STORAGE_KEY))
  } catch {
    return undefined
  }
}

/** @type {Language} */
let language = chosenLanguage() ?? browserLanguage()

/** @typedef {(language: Language) => string} Words how to say something in any language */

/**
 * @param {Language} lang
 * @param {string} key
 * @returns {string}
 */
function lookUp (lang, key) {
  const table = STRINGS[lang]
  if (table !== undefined && Object.hasOwn(table, key)) return /** @type {string} */ (table[key])
  console.error(`the page has no "${key}" in ${lang}`)
  return STRINGS.en?.[key] ?? key
}

/**
 * The words of `key`, with `{name}` filled in from `args` (a value or how to say it per language).
 * @param {string} key
 * @param {Record<string, string | Words>} [args]
 * @returns {Words}
 */
function tr (key, args = {}) {
  return (lang) => lookUp(lang, key).replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.hasOwn(args, name)) return whole
    const value = args[name]
    return typeof value === 'function' ? value(lang) : String(value)
  })
}

/**
 * @param {string} key
 * @param {Record<string, string | Words>} [args]
 * @returns {string} the words of `key` in the page's language
 */
function t (key, args) {
  return tr(key, args)(language)
}

/**
 * Where dates and times are written for the page's language `lang`: the browser's own variant of it when it asks for
 * one (the first of its languages that is `lang`: en-GB writes "1 January 2022" and a 24-hour clock, en-US "January
 * 1, 2022" and "5:39 PM"), else `lang` itself (a language picked with the switch that the browser does not ask for).
 * @param {Language} lang
 * @returns {string}
 */
function dateLocale (lang) {
  const tags = navigator.languages.length > 0 ? navigator.languages : [navigator.language]
  return tags.find((tag) => languageOf(tag) === lang) ?? lang
}

/** @param {Date} date @returns {Words} the date, long form ("January 1, 2022", "1 January 2022", "2022年1月1日") */
const longDate = (date) => (lang) => new Intl.DateTimeFormat(dateLocale(lang), { dateStyle: 'long' }).format(date)
/** @param {Date} date @returns {Words} the time of day with seconds */
const timeOfDay = (date) => (lang) => new Intl.DateTimeFormat(dateLocale(lang), { timeStyle: 'medium' }).format(date)
/** @param {Date} date @returns {Words} the date and time, short ("Jan 1, 2026, 9:30 AM", "1 Jan 2026, 09:30") */
const dateTime = (date) => (lang) => new Intl.DateTimeFormat(dateLocale(lang), { dateStyle: 'medium', timeStyle: 'short' }).format(date)
/** @param {number} share from 0 to 1 @returns {Words} as a percentage (one decimal under 10%) */
const percent = (share) => (lang) => {
  const digits = share < 0.1 ? 1 : 0
  return new Intl.NumberFormat(lang, { style: 'percent', minimumFractionDigits: digits, maximumFractionDigits: digits }).format(share)
}
/**
 * The provider's balance ("750.00"): as a number of the language, with as many decimals as it
 * sent; anything that is not a plain decimal number is shown as the provider wrote it.
 * @param {string} value
 * @returns {Words}
 */
const decimal = (value) => {
  const match = /^-?\d{1,15}(?:\.(\d{1,6}))?$/.exec(value)
  if (match === null) return () => value
  const digits = match[1]?.length ?? 0
  return (lang) => new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(Number(value))
}

/** Every element whose words depend on the language, and how to say them. */
/** @type {Map<HTMLElement, Words>} */
const shown = new Map()

/**
 * Shows `words` in `el` in the page's language, and again in every language switched to.
 * @param {HTMLElement} el
 * @param {Words} words
 */
function show (el, words) {
  shown.set(el, words)
  el.textContent = words(language)
}

/** Every element whose accessible name (`aria-label`) depends on the language, and how to say it. */
/** @type {Map<HTMLElement, Words>} */
const labelled = new Map()

/**
 * Names `el` for assistive technology with `words` in the page's language, and again in every language switched to.
 * @param {HTMLElement} el
 * @param {Words} words
 */
function label (el, words) {
  labelled.set(el, words)
  el.setAttribute('aria-label', words(language))
}

/**
 * Shows `text` as it is (a user name, an address): the same in every language.
 * @param {HTMLElement} el
 * @param {string} text
 */
function showText (el, text) {
  shown.delete(el)
  el.textContent = text
}

/** @param {Language} lang */
function setLanguage (lang) {
  language = lang
  document.documentElement.lang = lang
  document.title = t('page.title')
  languageSwitch().value = lang
  for (const [el, words] of shown) el.textContent = words(lang)
  for (const [el, words] of labelled) el.setAttribute('aria-label', words(lang))
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-i18n-title]'))) {
    el.title = t(el.dataset.i18nTitle ?? '')
  }
}

/** The switch: the user's choice wins over the browser's languages, here and in every other tab. */
function listenForLanguageChoice () {
  const select = languageSwitch()
  select.addEventListener('change', () => {
    const lang = asLanguage(select.value)
    if (lang === undefined) return
    try {
      localStorage.setItem(STORAGE_KEY, lang)
    } catch {
      // Storage off: the choice holds for this page only.
    }
    setLanguage(lang)
  })
  window.addEventListener('storage', (event) => {
    if (event.key === STORAGE_KEY) setLanguage(asLanguage(event.newValue) ?? browserLanguage())
  })
}

/** The words the server rendered, registered so that a switch says them again. */
function registerStaticWords () {
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('[data-i18n]'))) {
    show(el, tr(el.dataset.i18n ?? ''))
  }
  const footer = tr('footer.text')
  show($('footer-before'), (lang) => footer(lang).split('{origin}')[0] ?? '')
  show($('footer-after'), (lang) => footer(lang).split('{origin}')[1] ?? '')
}

// ---- The page's states ----------------------------------------------------------------------

/** @type {Window | null} */
let popup = null
/** @type {ReturnType<typeof setInterval> | undefined} */
let popupTimer
/** @type {ReturnType<typeof setTimeout> | undefined} */
let popupGrace

/**
 * How long a sign-in window that is gone from here is waited for (the server asked every second) before the page
 * calls it closed. A provider page that sends `Cross-Origin-Opener-Policy: same-origin` cuts the window off from
 * this page, which then sees it closed while the user is still signing in there; its sign-in still comes over the
 * channel below, however late.
 */
const POPUP_GONE_WAIT_MS = 4000

/**
 * When this page last called a sign-in window closed that it had lost from sight (epoch ms; 0: none). Until the
 * sign-in's own life is over (its state lives 10 minutes), a failure on the channel is still this page's to show:
 * the window may have been cut off (Cross-Origin-Opener-Policy) while the user took their time at the provider.
 */
let gaveUpOnPopupAt = 0
const SIGN_IN_LIFE_MS = 10 * 60 * 1000

/**
 * The status line: `key` (none: empty), with a spinner while `busy`.
 * @param {string | null} key
 * @param {boolean} [busy]
 */
function say (key, busy) {
  if (key === null) showText($('status-text'), '')
  else show($('status-text'), tr(key))
  $('status').classList.toggle('busy', busy === true)
}

/**
 * The error line: the words for `code` (only codes the page knows; anything else is a generic
 * message, never the code itself), or nothing.
 * @param {string | null | undefined} code
 */
function showError (code) {
  const el = $('error')
  if (!code) {
    el.hidden = true
    showText(el, '')
    return
  }
  const key = `error.${code}`
  show(el, tr(STRINGS.en !== undefined && Object.hasOwn(STRINGS.en, key) ? key : 'error.server_error'))
  el.hidden = false
}

/** Buttons that had the focus when they turned busy (disabled, they lost it): they get it back once ready. */
/** @type {WeakSet<HTMLButtonElement>} */
const hadFocus = new WeakSet()

/**
 * Whether "Try again" had the focus when pressed (hidden while the page asks again, it lost it): it gets it back if
 * the page asks again and fails again.
 */
let retryHadFocus = false

/** @returns {boolean} whether the focus is nowhere (on <body>, where it falls from a disabled or removed element) */
function focusLost () {
  return document.activeElement === null || document.activeElement === document.body
}

/**
 * A button busy (its `data-i18n-busy` words, disabled) or ready (its `data-i18n` words; the focus back on it if it
 * had it and nothing else took it meanwhile).
 * @param {HTMLButtonElement} btn
 * @param {boolean} busy
 */
function setBusy (btn, busy) {
  const key = busy ? btn.dataset.i18nBusy : btn.dataset.i18n
  if (key !== undefined) show(btn, tr(key))
  if (busy && document.activeElement === btn) hadFocus.add(btn)
  btn.disabled = busy
  btn.setAttribute('aria-busy', busy ? 'true' : 'false')
  if (!busy && hadFocus.delete(btn) && focusLost() && btn.checkVisibility()) btn.focus()
}

/**
 * Bumped at every sign-out the page shows: an answer to a request made before it (a balance refresh answered after
 * "Sign out") is not shown, or it would put a signed-out account back on the screen.
 */
let signedOutTimes = 0

/** @param {string | null} [note] the status line's key when signed out */
function showLogin (note = null) {
  signedOutTimes++
  $('retry').hidden = true
  retryHadFocus = false
  $('user-info').hidden = true
  $('sessions').hidden = true
  $('login-section').hidden = false
  setBusy(button('login'), false)
  $('topup-fallback').hidden = true
  say(note)
}

/**
 * @param {unknown} value
 * @returns {string | null}
 */
function text (value) {
  return typeof value === 'string' && value !== '' ? value : null
}

/**
 * The balance as the provider last sent it, to tell a refresh that changed it from one that did not.
 * @type {string | null}
 */
let lastBalance = null

/**
 * The first character as the reader sees it: a whole emoji (a surrogate pair, or several joined), never half of one.
 * @param {string} value
 * @returns {string}
 */
function firstCharacter (value) {
  const first = typeof Intl.Segmenter === 'function'
    ? new Intl.Segmenter().segment(value)[Symbol.iterator]().next().value?.segment
    : Array.from(value)[0]
  return first ?? ''
}

/** @param {UserInfo | null} info */
function showUser (info) {
  info = info ?? {}
  const name = text(info.username)
  const email = text(info.email)
  const balance = text(info.balance_formatted)
  if (name !== null) showText($('username'), name)
  else show($('username'), tr('user.notShared'))
  if (email !== null) showText($('email'), email)
  else show($('email'), tr('user.notShared'))
  showText($('avatar'), name ? firstCharacter(name).toUpperCase() : '?')
  show($('welcome'), name ? tr('user.welcomeNamed', { name }) : tr('user.welcome'))
  const since = typeof info.created_time === 'number' && info.created_time > 0 ? new Date(info.created_time * 1000) : null
  if (since !== null) show($('member-since'), tr('user.memberSince', { date: longDate(since) }))
  else showText($('member-since'), '')
  const amount = $('balance')
  show(amount, balance !== null ? decimal(balance) : tr('user.notShared'))
  // Its length for the style, which sizes a long amount to fit its box on one line (the longest of every language).
  if (balance !== null) amount.style.setProperty('--balance-chars', String(Math.max(...LANGUAGES.map((l) => decimal(balance)(l).length))))
  else amount.style.removeProperty('--balance-chars')
  lastBalance = balance
  const quota = info.quota
  const used = info.used_quota
  if (typeof quota === 'number' && typeof used === 'number' && quota > 0) {
    const share = Math.min(1, Math.max(0, used / quota))
    $('meter-fill').style.width = `${(share * 100).toFixed(1)}%`
    show($('usage-text'), tr('balance.usage', { percent: percent(share) }))
    $('usage').hidden = false
  } else {
    $('usage').hidden = true
  }
  const wasHidden = $('user-info').hidden
  $('retry').hidden = true
  retryHadFocus = false
  $('login-section').hidden = true
  $('user-info').hidden = false
  if (wasHidden) $('welcome').focus()
}

/**
 * Under the balance: whether a refresh changed it, and when.
 * @param {string | null} before the balance the provider sent before the refresh
 */
function noteUpdated (before) {
  const changed = before !== null && before !== lastBalance
  show($('balance-note'), tr(changed ? 'balance.changed' : 'balance.upToDate', { time: timeOfDay(new Date()) }))
}

/**
 * Same-origin JSON calls; the X-CSRF header is what the app's routes require of every call.
 * @param {string} path
 * @param {{ method?: string }} [init]
 * @returns {Promise<any>} the JSON body, or null for a 204
 */
async function api (path, init = {}) {
  /** @type {Response} */
  let res
  try {
    res = await fetch(path, {
      ...init,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'X-CSRF': '1', Accept: 'application/json' }
    })
  } catch {
    throw new ApiError('network')
  }
  if (res.status === 204) return null
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new ApiError(body !== null && typeof body.error === 'string' ? body.error : 'server_error', res.status)
  return body
}

/**
 * @param {unknown} err
 * @returns {ApiError}
 */
function apiError (err) {
  return err instanceof ApiError ? err : new ApiError('server_error')
}

/**
 * A 401 means the session is gone: back to the sign-in button, with the reason.
 * @param {unknown} err
 */
function handleApiError (err) {
  const { code, status } = apiError(err)
  showError(code)
  if (status === 401) showLogin()
  else say(null)
}

async function loadUser () {
  const asked = signedOutTimes
  say('status.loading', true)
  try {
    const info = await api('/api/user/info')
    if (asked !== signedOutTimes) return
    showError(null)
    say(null)
    showUser(info)
    showText($('balance-note'), '')
    loadSessions()
  } catch (err) {
    if (asked !== signedOutTimes) return
    const { code, status } = apiError(err)
    showError(code)
    if (status === 401) showLogin()
    else if ($('user-info').hidden) offerRetry()
    else say(null)
  }
}

/**
 * Signed in, or not known, but nothing to show (the provider or the store failed at the page's first call): the
 * error stays, with "Try again", which asks again from the start. Only a 401 means signed out.
 */
function offerRetry () {
  $('login-section').hidden = true
  say(null)
  $('retry').hidden = false
  if (retryHadFocus && focusLost()) $('retry').focus()
  retryHadFocus = false
}

function retry () {
  retryHadFocus = document.activeElement === $('retry')
  $('retry').hidden = true
  showError(null)
  checkSession()
}

/**
 * The probe: /auth/session answers 200 signed in or not, so a signed-out visit logs no error.
 * @param {string | null} [note] the status line's key when signed out
 */
async function checkSession (note = null) {
  say('status.checking', true)
  /** @type {{ authenticated?: unknown } | null} */
  let session
  try {
    session = await api('/auth/session')
  } catch (err) {
    showError(apiError(err).code)
    offerRetry()
    return
  }
  if (session !== null && session.authenticated === true) return loadUser()
  showLogin(note)
}

/** @returns {Promise<boolean | null>} whether the server says this browser is signed in; null: it could not be asked */
async function serverSaysSignedIn () {
  try {
    const session = await api('/auth/session')
    return session !== null && session.authenticated === true
  } catch {
    return null
  }
}

/**
 * A sign-in that may have finished elsewhere (a window this page no longer holds, another tab): the account, if
 * the server says so; else nothing changes on the page.
 */
async function noticeSignIn () {
  if (!$('user-info').hidden) return
  if (await serverSaysSignedIn() !== true || !$('user-info').hidden) return
  showError(null)
  loadUser()
}

function stopWatchingPopup () {
  clearInterval(popupTimer)
  clearTimeout(popupGrace)
  popupTimer = undefined
  popupGrace = undefined
  popup = null
}

/**
 * Only our own origin, and only the window we opened, may report a sign-in. A success from another window of our
 * origin (the sign-in window of this tab before a reload) is only a reason to ask the server.
 * @param {MessageEvent} event
 */
function onMessage (event) {
  if (event.origin !== window.location.origin) return
  const data = event.data
  if (!data || typeof data !== 'object' || data.type !== 'aihubmix:login') return
  if (popup === null || event.source !== popup) {
    if (data.ok === true && event.source !== null && event.source !== window) noticeSignIn()
    return
  }
  takeSignInMessage(data)
}

/**
 * The sign-in window's own message (`{type: 'aihubmix:login', ok, error?}`): the account, or the error.
 * @param {{ ok?: unknown, error?: unknown }} data
 */
function takeSignInMessage (data) {
  stopWatchingPopup()
  gaveUpOnPopupAt = 0
  if (data.ok === true) {
    showError(null)
    loadUser()
  } else {
    showLogin()
    showError(typeof data.error === 'string' ? data.error : 'server_error')
  }
}

function login () {
  showError(null)
  if (popup !== null && !popup.closed) {
    // The sign-in window is open (behind this page, or elsewhere): to the front, no second sign-in.
    popup.focus()
    return
  }
  stopWatchingPopup()
  const width = 520
  const height = 680
  const left = Math.max(0, Math.round(window.screenX + (window.outerWidth - width) / 2))
  const top = Math.max(0, Math.round(window.screenY + (window.outerHeight - height) / 3))
  const opened = window.open('/auth/login?mode=popup&returnTo=%2F', POPUP_NAME,
    `popup,width=${width},height=${height},left=${left},top=${top}`)
  if (!opened || opened.closed) {
    // Popup blocked: the same sign-in as a full-page redirect, back to this page.
    say('status.redirecting', true)
    setBusy(button('login'), true)
    window.location.assign('/auth/login?returnTo=%2F')
    return
  }
  popup = opened
  // Ready, not busy: a click on the page hides the small window behind it, and this button brings it back.
  show(button('login'), tr('login.showWindow'))
  say('status.popupOpen', true)
  popupTimer = setInterval(() => {
    if (popup === null || !popup.closed) return
    clearInterval(popupTimer)
    popupTimer = undefined
    // Gone from here (closed, or cut off): nothing to bring back, and no second sign-in while the server is asked.
    setBusy(button('login'), true)
    askForLandingErrors()
    waitForGonePopup(Date.now() + POPUP_GONE_WAIT_MS, 500)
  }, 250)
}

/**
 * The window is gone from here: closed, or cut off by the provider's page (see POPUP_GONE_WAIT_MS). Its last message
 * may still be on its way (it posts, then closes), so the server is asked after `delay`, and every second until
 * `deadline`; then the window is called closed. A message that comes meanwhile, or later, is still believed.
 * @param {number} deadline
 * @param {number} delay
 */
function waitForGonePopup (deadline, delay) {
  popupGrace = setTimeout(async () => {
    popupGrace = undefined
    // Could not ask: asked again in a second; at the deadline the window is called closed.
    const signedIn = await serverSaysSignedIn()
    if (popup === null) return // a message took it meanwhile
    if (signedIn === true) {
      stopWatchingPopup()
      showError(null)
      loadUser()
    } else if (Date.now() < deadline) {
      waitForGonePopup(deadline, 1000)
    } else {
      stopWatchingPopup()
      gaveUpOnPopupAt = Date.now()
      showLogin('status.popupClosed')
    }
  }, delay)
}

async function refreshBalance () {
  const btn = button('refresh-balance')
  const before = lastBalance
  const asked = signedOutTimes
  setBusy(btn, true)
  say('status.refreshing', true)
  try {
    const info = await api('/api/user/info')
    if (asked === signedOutTimes) {
      showError(null)
      say(null)
      showUser(info)
      noteUpdated(before)
    }
  } catch (err) {
    if (asked === signedOutTimes) handleApiError(err)
  }
  setBusy(btn, false)
}

/**
 * @param {unknown} value
 * @returns {string | null} the URL if it is http(s), else null
 */
function safeUrl (value) {
  if (typeof value !== 'string') return null
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null
  } catch {
    return null
  }
}

/**
 * The tab opens at the click (no popup blocker objects), cut off from this page,
 * and goes to the provider once the app has asked it where.
 */
async function topup () {
  const btn = button('topup')
  showError(null)
  $('topup-fallback').hidden = true
  const tab = window.open('', '_blank')
  if (tab) {
    tab.opener = null
    tab.document.documentElement.lang = language
    tab.document.title = t('topup.tabTitle')
    if (tab.document.body) tab.document.body.textContent = t('topup.tabText')
  }
  setBusy(btn, true)
  try {
    const body = await api('/api/user/topup')
    const url = safeUrl(body?.topup_url)
    if (url === null) throw new ApiError('bad_topup_url')
    if (!tab) {
      // Blocked: the link instead. A tab the user closed meanwhile gets nothing said.
      $('topup-link').setAttribute('href', url)
      $('topup-fallback').hidden = false
    } else if (!tab.closed) {
      tab.location.replace(url)
    }
  } catch (err) {
    if (tab && !tab.closed) tab.close()
    handleApiError(err)
  }
  setBusy(btn, false)
}

async function logout () {
  const btn = button('logout')
  setBusy(btn, true)
  say('status.signingOut', true)
  try {
    await api('/auth/logout', { method: 'POST' })
    showError(null)
    showLogin('status.signedOut')
    button('login').focus()
  } catch (err) {
    handleApiError(err)
  }
  setBusy(btn, false)
}

// ---- Where you're signed in ------------------------------------------------------------------

/**
 * A readable device from a User-Agent: the browser and the system, by the names everyone uses
 * (the same in every language), or "Unknown device". Order matters: Edge and Opera say Chrome
 * too, Chrome says Safari, an iPhone says "like Mac OS X" and Android says Linux.
 * @param {string} ua
 * @returns {Words}
 */
function device (ua) {
  const browser = /Edg(e|A|iOS)?\//.test(ua)
    ? 'Edge'
    : /OPR\/|Opera/.test(ua)
      ? 'Opera'
      : /SamsungBrowser\//.test(ua)
        ? 'Samsung Internet'
        : /Firefox\/|FxiOS\//.test(ua)
          ? 'Firefox'
          : /Chrome\/|CriOS\/|Chromium\//.test(ua)
            ? 'Chrome'
            : /Version\/[\d.]+.*Safari\//.test(ua) ? 'Safari' : null
  const os = /iPhone|iPod/.test(ua)
    ? 'iOS'
    : /iPad/.test(ua)
      ? 'iPadOS'
      : /Android/.test(ua)
        ? 'Android'
        : /CrOS/.test(ua)
          ? 'ChromeOS'
          : /Windows/.test(ua)
            ? 'Windows'
            : /Macintosh|Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : null
  if (browser !== null && os !== null) return tr('sessions.device', { browser, os })
  const one = browser ?? os
  return one !== null ? () => one : tr('sessions.unknownDevice')
}

/**
 * Forgets the words of every element inside `container` (about to be replaced), so that a
 * language switch does not keep them alive.
 * @param {HTMLElement} container
 */
function forgetWordsIn (container) {
  for (const el of shown.keys()) if (container.contains(el)) shown.delete(el)
  for (const el of labelled.keys()) if (container.contains(el)) labelled.delete(el)
}

/**
 * @param {string} tag
 * @param {string} [className]
 * @returns {HTMLElement}
 */
function element (tag, className) {
  const el = document.createElement(tag)
  if (className !== undefined) el.className = className
  return el
}

/**
 * Shows the words of `key` in `el` with its `{date}` as a <time> element of its own (the date and time, short), which
 * the stylesheet keeps whole: on a phone the line breaks before the date rather than inside it ("ログイン：2026/12/02"
 * and "5:39" on the next line). The words around it are elements of their own too, so that a language switch says
 * each part again.
 * @param {HTMLElement} el
 * @param {string} key a string with `{date}` in every language
 * @param {Date} date
 */
function showWithDate (el, key, date) {
  /** @param {0 | 1} side @returns {Words} the words before (0) or after (1) the date */
  const part = (side) => (lang) => lookUp(lang, key).split('{date}')[side] ?? ''
  const before = element('span')
  show(before, part(0))
  const when = document.createElement('time')
  when.dateTime = date.toISOString()
  show(when, dateTime(date))
  const after = element('span')
  show(after, part(1))
  el.replaceChildren(before, when, after)
}

/**
 * The list, built from elements and text nodes only (a User-Agent is whatever a browser sent:
 * it is never markup).
 * @param {SessionInfo[]} sessions
 */
function showSessions (sessions) {
  const list = $('session-list')
  forgetWordsIn(list)
  list.replaceChildren()
  sessions.forEach((session) => {
    const item = element('li', 'session')
    item.dataset.testid = 'session-item'
    const main = element('div', 'session-main')
    const name = element('span', 'session-device')
    const words = device(session.userAgent)
    show(name, words)
    // The browser's own words on hover: an attribute's text, never markup.
    name.title = session.userAgent
    main.append(name)
    if (session.current) {
      const here = element('span', 'this-device')
      show(here, tr('sessions.thisDevice'))
      main.append(here)
    }
    const meta = element('p', 'session-meta')
    const started = element('span')
    showWithDate(started, 'sessions.started', new Date(session.createdAt))
    const seen = element('span')
    if (session.current) show(seen, tr('sessions.activeNow'))
    else showWithDate(seen, 'sessions.lastSeen', new Date(session.lastSeenAt))
    meta.append(started, seen)
    main.append(meta)
    item.append(main)
    if (!session.current) {
      const end = document.createElement('button')
      end.type = 'button'
      end.className = 'btn btn-ghost btn-small'
      end.dataset.testid = 'end-session'
      end.dataset.i18n = 'sessions.end'
      end.dataset.i18nBusy = 'sessions.endBusy'
      label(end, tr('sessions.endLabel', { device: words }))
      setBusy(end, false)
      end.addEventListener('click', () => { endSession(session.id, words, end) })
      item.append(end)
    }
    list.append(item)
  })
  $('sessions').hidden = false
}

/**
 * The number of the list's latest request. Requests overlap (a session ended, then another; the tab back into view)
 * and their answers may come in any order: only the latest request's answer is shown, or an older list arriving late
 * would bring back a device ended meanwhile.
 */
let sessionsAsked = 0

/** The user's sessions on every device; a 401 means this one is over too. */
async function loadSessions () {
  const asked = signedOutTimes
  const request = ++sessionsAsked
  try {
    const body = await api('/auth/sessions')
    if (asked === signedOutTimes && request === sessionsAsked) showSessions(Array.isArray(body?.sessions) ? body.sessions : [])
  } catch (err) {
    if (asked === signedOutTimes && request === sessionsAsked) handleApiError(err)
  }
}

/**
 * Ends another device's session, then shows the list as it is now (also when it was already
 * gone: someone else ended it first).
 * @param {string} id the session's handle
 * @param {Words} words the device, for the status line
 * @param {HTMLButtonElement} btn
 */
async function endSession (id, words, btn) {
  setBusy(btn, true)
  try {
    await api(`/auth/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' })
    showError(null)
    show($('status-text'), tr('sessions.ended', { device: words }))
  } catch (err) {
    const { code, status } = apiError(err)
    if (status === 401) {
      handleApiError(err)
      return
    }
    showError(code)
  } finally {
    // Ready again, also when the list cannot be reloaded below (then it is the list still shown).
    setBusy(btn, false)
  }
  await loadSessions()
  // The button was in the list, which is new: the focus to the list's heading rather than nowhere.
  if (focusLost() && !$('sessions').hidden) $('sessions-title').focus()
}

async function logoutEverywhere () {
  const btn = button('logout-everywhere')
  setBusy(btn, true)
  say('status.signingOut', true)
  try {
    await api('/auth/logout?everywhere=1', { method: 'POST' })
    showError(null)
    showLogin('status.signedOutEverywhere')
    button('login').focus()
  } catch (err) {
    handleApiError(err)
  }
  setBusy(btn, false)
}

// A sign-in window cut off from this page talks to it over a same-origin BroadcastChannel.
// - The sign-in popup's own page (oauth-routes' popup page), when a provider page's
//   Cross-Origin-Opener-Policy cut it off from its opener: it posts its `aihubmix:login`
//   message there, and closes once a page answers `aihubmix:login-taken`.
// - A sign-in that fails before the app knows it was a popup sign-in (an expired or unknown
//   state) lands on this page inside the sign-in window, which this page's own
//   Cross-Origin-Opener-Policy cuts off: the landing page announces its error, and again
//   whenever a page whose sign-in window has gone asks; that page shows the error and answers,
//   and the landing page closes.
// A success heard this way is only a reason to ask the server: a sign-in succeeds only there.
const CHANNEL = 'aihubmix-login'
/** @type {BroadcastChannel | null} */
let channel = null
/** This page's last query for landing errors: only the landing page's answer to it, or its own first word, is taken. */
let landingQuery = ''
/** This page's own announcement, if it landed on an error: never taken by this page itself. */
let ownLandingId = ''
/** How long a landing page announces its error: the page whose window it was is waiting for it by then, if at all. */
const LANDING_ANNOUNCE_MS = 10000

function listenOnChannel () {
  if (typeof BroadcastChannel !== 'function') return
  const listening = new BroadcastChannel(CHANNEL)
  listening.onmessage = (event) => {
    const data = event.data
    if (!data || typeof data !== 'object') return
    if (data.type === 'aihubmix:login') {
      if (popup === null) {
        if (data.ok !== true) {
          // A failure: this page's only while the window it called closed may still be at work (see gaveUpOnPopupAt).
          if (Date.now() - gaveUpOnPopupAt > SIGN_IN_LIFE_MS) return
          gaveUpOnPopupAt = 0
          takeSignInMessage(data)
        } else {
          // Another tab's sign-in (or this one's before a reload): a reason to ask the server.
          gaveUpOnPopupAt = 0
          noticeSignIn()
        }
      } else {
        // A failure only for the page whose window is gone (another page's window may have failed).
        if (data.ok !== true && !popup.closed) return
        takeSignInMessage(data)
      }
      listening.postMessage({ type: 'aihubmix:login-taken', id: data.id })
      return
    }
    if (data.type !== 'aihubmix:login-error' || typeof data.error !== 'string') return
    if ((data.query !== undefined && data.query !== landingQuery) || data.id === ownLandingId) return
    if (popup === null || !popup.closed) return
    stopWatchingPopup()
    showLogin()
    showError(data.error)
    listening.postMessage({ type: 'aihubmix:login-error-taken', id: data.id })
  }
  channel = listening
}

function askForLandingErrors () {
  landingQuery = String(Math.random()).slice(2)
  if (channel !== null) channel.postMessage({ type: 'aihubmix:login-error-query', query: landingQuery })
}

/** @param {string} code */
function announceLandingError (code) {
  // Not the window's name to tell the sign-in window from a tab: the Cross-Origin-Opener-Policy switch clears it.
  if (typeof BroadcastChannel !== 'function' || window.opener !== null) return
  const landing = new BroadcastChannel(CHANNEL)
  const id = String(Math.random()).slice(2)
  ownLandingId = id
  /** @param {string} [query] */
  const announce = (query) => { landing.postMessage({ type: 'aihubmix:login-error', error: code, id, query }) }
  const stop = setTimeout(() => { landing.close() }, LANDING_ANNOUNCE_MS)
  landing.onmessage = (event) => {
    const data = event.data
    if (!data) return
    if (data.type === 'aihubmix:login-error-query' && typeof data.query === 'string') announce(data.query)
    if (data.type === 'aihubmix:login-error-taken' && data.id === id) {
      clearTimeout(stop)
      landing.close()
      // Closes only a window that a script opened: the sign-in window, never the user's own tab.
      window.close()
    }
  }
  announce()
}

function start () {
  registerStaticWords()
  setLanguage(language)
  listenForLanguageChoice()
  window.addEventListener('message', onMessage)
  button('login').addEventListener('click', login)
  button('retry').addEventListener('click', retry)
  button('refresh-balance').addEventListener('click', refreshBalance)
  button('topup').addEventListener('click', topup)
  button('logout').addEventListener('click', logout)
  button('logout-everywhere').addEventListener('click', logoutEverywhere)
  // Back to this tab: the list as it is now (another device may have ended a session, this one included); signed
  // out, whether the user signed in in another tab meanwhile.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return
    if (!$('sessions').hidden) loadSessions()
    else if (!$('login-section').hidden && popup === null) noticeSignIn()
  })
  window.addEventListener('pageshow', (event) => { if (event.persisted) checkSession() })
  const error = new URLSearchParams(window.location.search).get('error')
  if (error !== null) {
    // Only known codes are shown, as our own words; anything else is a generic message.
    const code = /^[a-z_]{1,40}$/.test(error) ? error : 'server_error'
    window.history.replaceState(null, '', window.location.pathname)
    showError(code)
    announceLandingError(code)
  }
  listenOnChannel()
  checkSession()
}

// A module runs once the document is parsed: every element above is there.
start()
