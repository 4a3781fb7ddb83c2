// The example page's script: a plain ES module, served as it is from this origin (the page's
// Content-Security-Policy allows no other script), linted by ESLint and type-checked by
// `tsc -b` from its JSDoc (example/public/tsconfig.json).
//
// It holds no token and no secret: the HttpOnly session cookie goes with every same-origin call,
// and the server calls AIHubMix for it.

/** What every error code the app's routes can answer means, in words for the user. */
const MESSAGES = {
  invalid_state: 'The sign-in link expired or was already used. Please sign in again.',
  missing_parameters: 'AIHubMix did not send the sign-in back completely. Please try again.',
  invalid_request: 'The sign-in answer was not valid. Please try again.',
  invalid_issuer: 'The sign-in answer came from an unexpected server. Please try again.',
  access_denied: 'You cancelled the sign-in at AIHubMix. Sign in again whenever you like.',
  provider_error: 'AIHubMix could not sign you in. Please try again.',
  token_exchange_failed: 'AIHubMix could not complete the sign-in. Please try again in a moment.',
  unauthenticated: 'You are signed out. Please sign in again.',
  reauth_required: 'Your access to AIHubMix was withdrawn or has expired. Please sign in again.',
  bad_gateway: 'AIHubMix gave an unexpected answer. Please try again in a moment.',
  upstream_timeout: 'AIHubMix is taking too long to answer. Please try again in a moment.',
  upstream_unavailable: 'AIHubMix is busy right now. Please try again in a moment.',
  store_unavailable: 'We cannot reach our session storage right now. Please try again in a moment.',
  refresh_busy: 'Your session is being renewed. Please try again in a moment.',
  insufficient_scope: 'You did not allow this app to see your balance, so it cannot do this.',
  csrf_header_required: 'The request was refused for your safety. Please reload the page.',
  network: 'We could not reach the server. Check your connection and try again.',
  bad_topup_url: 'AIHubMix sent a top-up address we do not trust, so we did not open it.',
  server_error: 'Something went wrong on our side. Please try again.'
}

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

/** @type {Window | null} */
let popup = null
/** @type {ReturnType<typeof setInterval> | undefined} */
let popupTimer
/** @type {ReturnType<typeof setTimeout> | undefined} */
let popupGrace

/**
 * @param {string} [text]
 * @param {boolean} [busy]
 */
function say (text, busy) {
  $('status-text').textContent = text ?? ''
  $('status').classList.toggle('busy', busy === true)
}

/** @param {string | null | undefined} code */
function showError (code) {
  const el = $('error')
  if (!code) {
    el.hidden = true
    el.textContent = ''
    return
  }
  el.textContent = Object.hasOwn(MESSAGES, code) ? MESSAGES[/** @type {keyof MESSAGES} */ (code)] : MESSAGES.server_error
  el.hidden = false
}

/**
 * @param {HTMLButtonElement} btn
 * @param {boolean} busy
 * @param {string} [label] what the button says while busy
 */
function setBusy (btn, busy, label) {
  if (busy) {
    if (!btn.disabled) btn.dataset.label = btn.textContent ?? ''
    btn.textContent = label ?? ''
  } else if (btn.dataset.label) {
    btn.textContent = btn.dataset.label
  }
  btn.disabled = busy
  btn.setAttribute('aria-busy', busy ? 'true' : 'false')
}

/** @param {string} [note] */
function showLogin (note) {
  $('user-info').hidden = true
  $('login-section').hidden = false
  setBusy(button('login'), false)
  $('topup-fallback').hidden = true
  say(note ?? '')
}

/**
 * @param {unknown} value
 * @returns {string | null}
 */
function text (value) {
  return typeof value === 'string' && value !== '' ? value : null
}

/** @param {UserInfo | null} info */
function showUser (info) {
  info = info ?? {}
  const name = text(info.username)
  $('username').textContent = name ?? 'Not shared'
  $('email').textContent = text(info.email) ?? 'Not shared'
  $('avatar').textContent = name ? name.charAt(0).toUpperCase() : '?'
  $('welcome').textContent = name ? `Welcome back, ${name}!` : 'Welcome back!'
  const since = typeof info.created_time === 'number' && info.created_time > 0 ? new Date(info.created_time * 1000) : null
  $('member-since').textContent = since ? `AIHubMix member since ${since.toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' })}` : ''
  $('balance').textContent = text(info.balance_formatted) ?? 'Not shared'
  const quota = info.quota
  const used = info.used_quota
  if (typeof quota === 'number' && typeof used === 'number' && quota > 0) {
    const share = Math.min(100, Math.max(0, used / quota * 100))
    $('meter-fill').style.width = `${share.toFixed(1)}%`
    $('usage-text').textContent = `${share < 10 ? share.toFixed(1) : Math.round(share)}% of your quota used`
    $('usage').hidden = false
  } else {
    $('usage').hidden = true
  }
  const wasHidden = $('user-info').hidden
  $('login-section').hidden = true
  $('user-info').hidden = false
  if (wasHidden) $('welcome').focus()
}

/**
 * @param {string | null} before
 * @param {string | null} after
 */
function noteUpdated (before, after) {
  const time = new Date().toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
  $('balance-note').textContent = `${before !== null && before !== after ? 'Balance changed, updated at ' : 'Up to date as of '}${time}`
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
  else say('')
}

async function loadUser () {
  say('Loading your account…', true)
  try {
    const info = await api('/api/user/info')
    showError(null)
    say('')
    showUser(info)
    $('balance-note').textContent = ''
  } catch (err) {
    const { code, status } = apiError(err)
    showError(code)
    // Nothing shown yet: offer the sign-in again rather than a page stuck half-way.
    if (status === 401 || $('user-info').hidden) showLogin()
    else say('')
  }
}

/**
 * The probe: /auth/session answers 200 signed in or not, so a signed-out visit logs no error.
 * @param {string} [note] what to say when signed out
 */
async function checkSession (note) {
  say('Checking whether you are signed in…', true)
  /** @type {{ authenticated?: unknown } | null} */
  let session
  try {
    session = await api('/auth/session')
  } catch (err) {
    showError(apiError(err).code)
    showLogin()
    return
  }
  if (session !== null && session.authenticated === true) return loadUser()
  showLogin(note)
}

function stopWatchingPopup () {
  clearInterval(popupTimer)
  clearTimeout(popupGrace)
  popupTimer = undefined
  popupGrace = undefined
  popup = null
}

/**
 * Only our own origin, and only the window we opened, may report a sign-in.
 * @param {MessageEvent} event
 */
function onMessage (event) {
  if (event.origin !== window.location.origin) return
  if (popup === null || event.source !== popup) return
  const data = event.data
  if (!data || typeof data !== 'object' || data.type !== 'aihubmix:login') return
  stopWatchingPopup()
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
    say('Taking you to AIHubMix to sign in…', true)
    setBusy(button('login'), true, 'Signing in…')
    window.location.assign('/auth/login?returnTo=%2F')
    return
  }
  popup = opened
  setBusy(button('login'), true, 'Signing in…')
  say('Finish signing in in the AIHubMix window…', true)
  popupTimer = setInterval(() => {
    if (popup === null || !popup.closed) return
    clearInterval(popupTimer)
    popupTimer = undefined
    askForLandingErrors()
    // The window closed. Its last message may still be on its way (it posts, then closes):
    // give it a moment, then ask the server. A message that comes later is still believed.
    popupGrace = setTimeout(() => {
      popupGrace = undefined
      if (popup !== null) checkSession('The sign-in window was closed before signing in finished.')
    }, 500)
  }, 250)
}

async function refreshBalance () {
  const btn = button('refresh-balance')
  const before = $('balance').textContent
  setBusy(btn, true, 'Refreshing…')
  say('Refreshing your balance…', true)
  try {
    const info = await api('/api/user/info')
    showError(null)
    say('')
    showUser(info)
    noteUpdated(before, $('balance').textContent)
  } catch (err) {
    handleApiError(err)
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
    tab.document.title = 'Opening the top-up page…'
    if (tab.document.body) tab.document.body.textContent = 'Opening the AIHubMix top-up page…'
  }
  setBusy(btn, true, 'Opening…')
  try {
    const body = await api('/api/user/topup')
    const url = safeUrl(body?.topup_url)
    if (url === null) throw new ApiError('bad_topup_url')
    if (tab && !tab.closed) {
      tab.location.replace(url)
    } else {
      /** @type {HTMLAnchorElement} */ ($('topup-link')).href = url
      $('topup-fallback').hidden = false
    }
  } catch (err) {
    if (tab && !tab.closed) tab.close()
    handleApiError(err)
  }
  setBusy(btn, false)
}

async function logout () {
  const btn = button('logout')
  setBusy(btn, true, 'Signing out…')
  say('Signing you out…', true)
  try {
    await api('/auth/logout', { method: 'POST' })
    showError(null)
    showLogin('You are signed out.')
    button('login').focus()
  } catch (err) {
    handleApiError(err)
  }
  setBusy(btn, false)
}

// A sign-in that fails before the app knows it was a popup sign-in (an expired or unknown
// state) lands on this page inside the sign-in window. This page's Cross-Origin-Opener-Policy
// cuts such a window off from its opener (which then sees it as closed), so the two talk over
// a same-origin BroadcastChannel: the landing page announces its error, and again whenever a
// page whose sign-in window has gone asks; that page shows the error and answers, and the
// landing page closes. Only errors travel this way: a sign-in succeeds only through the server.
const CHANNEL = 'aihubmix-login'
/** @type {BroadcastChannel | null} */
let channel = null

function listenForLandingErrors () {
  if (typeof BroadcastChannel !== 'function') return
  const listening = new BroadcastChannel(CHANNEL)
  listening.onmessage = (event) => {
    const data = event.data
    if (!data || data.type !== 'aihubmix:login-error' || typeof data.error !== 'string') return
    if (popup === null || !popup.closed) return
    stopWatchingPopup()
    showLogin()
    showError(data.error)
    listening.postMessage({ type: 'aihubmix:login-error-taken', id: data.id })
  }
  channel = listening
}

function askForLandingErrors () {
  if (channel !== null) channel.postMessage({ type: 'aihubmix:login-error-query' })
}

/** @param {string} code */
function announceLandingError (code) {
  if (typeof BroadcastChannel !== 'function' || window.opener !== null) return
  const landing = new BroadcastChannel(CHANNEL)
  const id = String(Math.random()).slice(2)
  const announce = () => { landing.postMessage({ type: 'aihubmix:login-error', error: code, id }) }
  landing.onmessage = (event) => {
    const data = event.data
    if (!data) return
    if (data.type === 'aihubmix:login-error-query') announce()
    if (data.type === 'aihubmix:login-error-taken' && data.id === id) {
      landing.close()
      // Closes only a window that a script opened: the sign-in window, never the user's own tab.
      window.close()
    }
  }
  announce()
}

function start () {
  window.addEventListener('message', onMessage)
  button('login').addEventListener('click', login)
  button('refresh-balance').addEventListener('click', refreshBalance)
  button('topup').addEventListener('click', topup)
  button('logout').addEventListener('click', logout)
  window.addEventListener('pageshow', (event) => { if (event.persisted) checkSession() })
  const error = new URLSearchParams(window.location.search).get('error')
  if (error !== null) {
    // Only known codes are shown, as our own words; anything else is a generic message.
    const code = /^[a-z_]{1,40}$/.test(error) ? error : 'server_error'
    window.history.replaceState(null, '', window.location.pathname)
    showError(code)
    announceLandingError(code)
  }
  listenForLandingErrors()
  checkSession()
}

// A module runs once the document is parsed: every element above is there.
start()
