import type { FastifyInstance } from 'fastify'
import { ASSET_CACHE_CONTROL, loadAssets, type Asset, type AssetName } from './assets.js'

/**
 * The example page: everything the provider's SDK page does (check the login
 * state, one-click login in a popup with a full-page fallback, name, e-mail and
 * balance, refresh the balance, open the top-up page, log out) with nothing but
 * the HttpOnly session cookie. No token, code or secret ever reaches it.
 *
 * The page is static HTML whose script and style are files of this origin
 * (example/public/app.js and app.css, see assets.ts), so the Content-Security-Policy
 * can forbid every inline script and style, every other origin, and (with Trusted
 * Types) every HTML-from-string sink.
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

function html (providerOrigin: string, assets: Readonly<Record<AssetName, Asset>>): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>AIHubMix sign-in example</title>
<link rel="icon" href="${ICON}">
<link rel="stylesheet" href="${assets['app.css'].url}">
<script type="module" src="${assets['app.js'].url}"></script>
</head>
<body>
<header class="topbar">
  <div class="topbar-inner">
    <div class="brand"><img class="brand-logo" src="${ICON}" alt="" width="28" height="28"><span>My AIHubMix app</span></div>
    <span class="badge" title="The session cookie is HttpOnly; the tokens stay on the server">Tokens stay on the server</span>
  </div>
</header>

<main class="container">
  <noscript><div class="alert">This page needs JavaScript to sign you in.</div></noscript>
  <p id="status" class="status" role="status" aria-live="polite"><span class="spinner" aria-hidden="true"></span><span id="status-text">Checking whether you are signed in…</span></p>
  <div id="error" data-testid="error" class="alert" role="alert" hidden></div>

  <section id="login-section" class="card login" aria-labelledby="login-title" hidden>
    <h1 id="login-title">Sign in to see your account</h1>
    <p class="lead">One click: AIHubMix signs you in and sends you straight back.</p>
    <button id="login" data-testid="login" class="btn btn-primary btn-large" type="button">Sign in with AIHubMix</button>
    <p class="hint">A small AIHubMix window opens. If your browser blocks it, this page goes to AIHubMix instead and comes back.</p>
  </section>

  <section id="user-info" data-testid="user-info" class="card" aria-labelledby="welcome" hidden>
    <div class="profile">
      <div id="avatar" class="avatar" aria-hidden="true"></div>
      <div>
        <h1 id="welcome" tabindex="-1">Welcome back!</h1>
        <p id="member-since" class="muted"></p>
      </div>
    </div>
    <div class="grid">
      <dl class="facts">
        <div><dt>User name</dt><dd data-testid="username" id="username"></dd></div>
        <div><dt>E-mail</dt><dd data-testid="email" id="email"></dd></div>
      </dl>
      <div class="balance-box">
        <div class="balance-label">Balance</div>
        <div class="balance-amount" data-testid="balance" id="balance"></div>
        <div id="usage" class="usage" hidden>
          <div class="meter" aria-hidden="true"><span id="meter-fill"></span></div>
          <div id="usage-text" class="muted small"></div>
        </div>
        <div id="balance-note" class="muted small" aria-live="polite"></div>
      </div>
    </div>
    <div class="actions">
      <button id="refresh-balance" data-testid="refresh-balance" class="btn btn-success" type="button">Refresh balance</button>
      <button id="topup" data-testid="topup" class="btn btn-primary" type="button">Top up</button>
      <button id="logout" data-testid="logout" class="btn btn-ghost" type="button">Sign out</button>
    </div>
    <p id="topup-fallback" class="muted small" hidden>Your browser blocked the new tab. <a id="topup-link" href="#" target="_blank" rel="noopener noreferrer">Open the top-up page</a></p>
  </section>

  <footer class="footer">
    <p>AIHubMix at <strong>${escapeHtml(providerOrigin)}</strong> signs you in. This page holds no token and no secret:
    it only has an HttpOnly session cookie, and the server calls AIHubMix for it.</p>
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

/** `GET /` (the page), its script and style, and a `/favicon.ico` that answers 204. */
export async function pageRoutes (fastify: FastifyInstance, opts: PageOptions): Promise<void> {
  const assets = await loadAssets()
  const page = html(opts.providerOrigin, assets)
  fastify.addHook('onSend', async (request, reply) => {
    for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) {
      if (!reply.hasHeader(name)) reply.header(name, value)
    }
    if (request.protocol === 'https' && !reply.hasHeader('strict-transport-security')) {
      reply.header('strict-transport-security', 'max-age=31536000')
    }
  })
  fastify.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page))
  for (const asset of Object.values(assets)) {
    fastify.get(asset.url, async (_request, reply) => reply.type(asset.contentType).header('cache-control', ASSET_CACHE_CONTROL).send(asset.body))
  }
  // Browsers ask for it on every page of the origin (the sign-in popup's too); a 404 is a console error.
  fastify.get('/favicon.ico', async (_request, reply) => reply.header('cache-control', 'public, max-age=86400').code(204).send())
}
