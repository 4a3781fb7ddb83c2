import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ASSET_CACHE_CONTROL, loadAssets, type Asset, type AssetName } from './assets.js'
import { LANGUAGES, languageFromAcceptLanguage, loadStrings, type Language, type Strings } from './i18n.js'

/**
 * The example page: everything the provider's SDK page does (check the login
 * state, one-click login in a popup with a full-page fallback, name, e-mail and
 * balance, refresh the balance, open the top-up page, log out) with nothing but
 * the HttpOnly session cookie, and where the user is signed in (each device's
 * session, ended from here, or every one at once). No token, code or secret ever reaches it.
 *
 * The page is static HTML whose script and style are files of this origin
 * (example/public/app.js and app.css, see assets.ts), so the Content-Security-Policy
 * can forbid every inline script and style, every other origin, and (with Trusted
 * Types) every HTML-from-string sink.
 *
 * It speaks English, Japanese and Simplified Chinese (example/i18n/, see i18n.ts). The server
 * renders it in the language of `Accept-Language`; the script then follows the browser's
 * languages, or the user's own choice from the switch, which it keeps in localStorage (the
 * server never reads it: no cookie, and the page stays the same for every visitor).
 */

export interface PageOptions {
  /** The provider's origin: named in the page's footer; the top-up page opens there. */
  providerOrigin: string
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
}

/** A small indigo diamond; a data: URL, so no request (and no 404) for a favicon. */
const ICON = 'data:image/svg+xml,' + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="6" y="6" width="20" height="20" rx="5" ' +
  'transform="rotate(45 16 16)" fill="#4f46e5"/><circle cx="16" cy="16" r="4.5" fill="#fff"/></svg>'
)

/** Each language's name in itself, for the switch (the same in every language). */
const LANGUAGE_NAMES: Readonly<Record<Language, string>> = { en: 'English', ja: '日本語', 'zh-CN': '简体中文' }

/** JSON that is safe inside a <script> element. */
function scriptJson (value: unknown): string {
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029')
}

/**
 * The page in `language`: its first paint, before the script runs. Every text the script may
 * have to say again in another language carries its key (`data-i18n`, `data-i18n-busy` for a
 * button's busy label, `data-i18n-title`); the script gets every table from the
 * `application/json` block (data, never run: the CSP's `script-src 'self'` does not apply to it).
 */
function html (language: Language, strings: Strings, providerOrigin: string, assets: Readonly<Record<AssetName, Asset>>): string {
  const table = strings[language]
  const t = (key: string): string => {
    const text = table[key]
    if (text === undefined) throw new Error(`the example page names "${key}", which example/i18n/${language}.json does not have`)
    return escapeHtml(text)
  }
  const [footerBefore = '', footerAfter = ''] = t('footer.text').split('{origin}')
  const options = LANGUAGES.map((l) => `<option value="${l}" lang="${l}"${l === language ? ' selected' : ''}>${escapeHtml(LANGUAGE_NAMES[l])}</option>`).join('')
  return `<!doctype html>
<html lang="${language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${t('page.title')}</title>
<link rel="icon" href="${ICON}">
<link rel="stylesheet" href="${assets['app.css'].url}">
<script type="module" src="${assets['app.js'].url}"></script>
<script type="application/json" id="strings">${scriptJson(strings)}</script>
</head>
<body>
<header class="topbar">
  <div class="topbar-inner">
    <div class="brand"><img class="brand-logo" src="${ICON}" alt="" width="28" height="28"><span data-i18n="brand.name">${t('brand.name')}</span></div>
    <div class="topbar-end">
      <span class="badge" data-i18n="brand.badge" data-i18n-title="brand.badgeTitle" title="${t('brand.badgeTitle')}">${t('brand.badge')}</span>
      <label class="language"><span class="visually-hidden" data-i18n="language.label">${t('language.label')}</span><select id="language" data-testid="language" autocomplete="off">${options}</select></label>
    </div>
  </div>
</header>

<main class="container">
  <noscript><div class="alert">${t('page.noscript')}</div></noscript>
  <p id="status" class="status" role="status" aria-live="polite"><span class="spinner" aria-hidden="true"></span><span id="status-text">${t('status.checking')}</span></p>
  <div id="error" data-testid="error" class="alert" role="alert" hidden></div>
  <button id="retry" class="btn btn-primary retry" type="button" data-i18n="error.retry" hidden>${t('error.retry')}</button>

  <section id="login-section" class="card login" aria-labelledby="login-title" hidden>
    <h1 id="login-title" data-i18n="login.title">${t('login.title')}</h1>
    <p class="lead" data-i18n="login.lead">${t('login.lead')}</p>
    <button id="login" data-testid="login" class="btn btn-primary btn-large" type="button" data-i18n="login.button" data-i18n-busy="login.busy">${t('login.button')}</button>
    <p class="hint" data-i18n="login.hint">${t('login.hint')}</p>
  </section>

  <section id="user-info" data-testid="user-info" class="card" aria-labelledby="welcome" hidden>
    <div class="profile">
      <div id="avatar" class="avatar" aria-hidden="true"></div>
      <div class="profile-text">
        <h1 id="welcome" tabindex="-1" data-i18n="user.welcome">${t('user.welcome')}</h1>
        <p id="member-since" class="muted"></p>
      </div>
    </div>
    <div class="grid">
      <dl class="facts">
        <div><dt data-i18n="user.username">${t('user.username')}</dt><dd data-testid="username" id="username"></dd></div>
        <div><dt data-i18n="user.email">${t('user.email')}</dt><dd data-testid="email" id="email"></dd></div>
      </dl>
      <div class="balance-box">
        <div class="balance-label" data-i18n="balance.label">${t('balance.label')}</div>
        <div class="balance-amount" data-testid="balance" id="balance"></div>
        <div id="usage" class="usage" hidden>
          <div class="meter" aria-hidden="true"><span id="meter-fill"></span></div>
          <div id="usage-text" class="muted small"></div>
        </div>
        <div id="balance-note" class="muted small" aria-live="polite"></div>
      </div>
    </div>
    <div class="actions">
      <button id="refresh-balance" data-testid="refresh-balance" class="btn btn-success" type="button" data-i18n="balance.refresh" data-i18n-busy="balance.refreshBusy">${t('balance.refresh')}</button>
      <button id="topup" data-testid="topup" class="btn btn-primary" type="button" data-i18n="topup.button" data-i18n-busy="topup.busy">${t('topup.button')}</button>
      <button id="logout" data-testid="logout" class="btn btn-ghost" type="button" data-i18n="logout.button" data-i18n-busy="logout.busy">${t('logout.button')}</button>
    </div>
    <p id="topup-fallback" class="muted small" hidden><span data-i18n="topup.blocked">${t('topup.blocked')}</span> <a id="topup-link" href="#" target="_blank" rel="noopener noreferrer" data-i18n="topup.link">${t('topup.link')}</a></p>
  </section>

  <section id="sessions" data-testid="sessions" class="card sessions" aria-labelledby="sessions-title" hidden>
    <div class="sessions-head">
      <h2 id="sessions-title" tabindex="-1" data-i18n="sessions.title">${t('sessions.title')}</h2>
      <button id="logout-everywhere" data-testid="logout-everywhere" class="btn btn-ghost btn-small" type="button" data-i18n="sessions.everywhere" data-i18n-busy="sessions.everywhereBusy">${t('sessions.everywhere')}</button>
    </div>
    <ul id="session-list" class="session-list"></ul>
  </section>

  <footer class="footer">
    <p><span id="footer-before">${footerBefore}</span><strong id="provider-origin">${escapeHtml(providerOrigin)}</strong><span id="footer-after">${footerAfter}</span></p>
  </footer>
</main>
</body>
</html>
`
}

/**
 * Only this origin's script, style, images (and data: icons) and fetches; nothing may frame the
 * page; no <base>, no forms, no plugins; Trusted Types with no policy, so no string ever becomes
 * HTML or script.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'"
].join('; ')

export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': PAGE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // Keeps `window.opener` for the sign-in popup, severs it for everything else.
  'cross-origin-opener-policy': 'same-origin-allow-popups',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()'
})

/** The page's answer (`GET /`): the HTML of one language. */
export const PageReply = Type.String()

/** `GET /` (the page, in the language of `Accept-Language`), its script and style, and a `/favicon.ico` that answers 204. */
export async function pageRoutes (fastify: FastifyInstance, opts: PageOptions): Promise<void> {
  const assets = await loadAssets()
  const strings = await loadStrings()
  const pages = Object.fromEntries(LANGUAGES.map((l) => [l, html(l, strings, opts.providerOrigin, assets)])) as Record<Language, string>
  fastify.addHook('onSend', async (request, reply) => {
    for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) {
      if (!reply.hasHeader(name)) reply.header(name, value)
    }
    if (request.protocol === 'https' && !reply.hasHeader('strict-transport-security')) {
      reply.header('strict-transport-security', 'max-age=31536000')
    }
  })
  // Typed from the schemas (types only: at run time this is `fastify`). The page's 200 is a string of HTML: sent as
  // it is, never through the serialiser (text/html), so its schema only makes `send` refuse anything but a string.
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  app.get('/', { schema: { response: { 200: PageReply } } }, async (request, reply) => {
    const language = languageFromAcceptLanguage(request.headers['accept-language'])
    return reply.type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('vary', 'Accept-Language')
      .header('content-language', language)
      .send(pages[language])
  })
  // The assets' bodies are bytes (a Buffer) and the favicon's 204 has none: no JSON schema says either, so none.
  for (const asset of Object.values(assets)) {
    app.get(asset.url, async (_request, reply) => reply.type(asset.contentType).header('cache-control', ASSET_CACHE_CONTROL).send(asset.body))
  }
  // Browsers ask for it on every page of the origin (the sign-in popup's too); a 404 is a console error.
  app.get('/favicon.ico', async (_request, reply) => reply.header('cache-control', 'public, max-age=86400').code(204).send())
}
