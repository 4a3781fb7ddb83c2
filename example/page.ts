import type { FastifyInstance } from 'fastify'

/**
 * The example page: everything the provider's SDK page does (check the login
 * state, one-click login in a popup with a full-page fallback, name, e-mail and
 * balance, refresh the balance, open the top-up page, log out) with nothing but
 * the HttpOnly session cookie. No token, code or secret ever reaches it.
 *
 * The page is three static strings (HTML, CSS, JS) served from this origin, so
 * the Content-Security-Policy can forbid every inline script and style, every
 * other origin, and (with Trusted Types) every HTML-from-string sink.
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

function html (providerOrigin: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>AIHubMix sign-in example</title>
<link rel="icon" href="${ICON}">
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
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

const CSS = `:root {
  color-scheme: light;
  --bg: #f4f6fb; --card: #fff; --text: #1d2433; --muted: #5b6475; --line: #e4e7ef;
  --primary: #4f46e5; --primary-dark: #4338ca; --success: #15803d; --success-dark: #166534;
  --danger-bg: #fdecec; --danger: #9b1c1c;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 16px; line-height: 1.5;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
.topbar { background: var(--card); border-bottom: 1px solid var(--line); }
.topbar-inner { max-width: 760px; margin: 0 auto; padding: 12px 20px; display: flex; align-items: center; justify-content: space-between; gap: 12px; }
.brand { display: flex; align-items: center; gap: 10px; font-weight: 700; font-size: 18px; white-space: nowrap; }
.badge { font-size: 13px; color: var(--success-dark); background: #e8f6ee; border: 1px solid #c5e8d3; border-radius: 999px; padding: 3px 12px; white-space: nowrap; }
.container { max-width: 760px; margin: 0 auto; padding: 20px 20px 32px; }
.status { display: flex; align-items: center; gap: 10px; margin: 0 0 12px; min-height: 24px; color: var(--muted); }
.status:not(.busy) .spinner { display: none; }
.spinner { width: 16px; height: 16px; border-radius: 50%; border: 2px solid #c7cbe0; border-top-color: var(--primary); animation: spin .8s linear infinite; flex: none; }
@keyframes spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .spinner { animation-duration: 3s; } }
.alert { background: var(--danger-bg); color: var(--danger); border: 1px solid #f5c2c2; border-radius: 10px; padding: 12px 16px; margin: 0 0 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 16px; padding: 28px; box-shadow: 0 1px 2px rgba(16,24,40,.04), 0 8px 24px rgba(16,24,40,.06); }
.card h1 { margin: 0; font-size: 24px; line-height: 1.25; }
.card h1:focus { outline: none; }
.login { text-align: center; padding: 44px 28px; }
.lead { color: var(--muted); margin: 8px 0 24px; }
.hint { color: var(--muted); font-size: 13px; margin: 20px auto 0; max-width: 420px; }
.profile { display: flex; align-items: center; gap: 16px; margin-bottom: 24px; }
.avatar { width: 56px; height: 56px; border-radius: 50%; background: linear-gradient(135deg, #6366f1, #8b5cf6); color: #fff; display: grid; place-items: center; font-size: 24px; font-weight: 700; flex: none; }
.muted { color: var(--muted); margin: 2px 0 0; }
.small { font-size: 13px; }
.grid { display: grid; grid-template-columns: 1fr 240px; gap: 20px; margin-bottom: 24px; }
@media (max-width: 640px) { .grid { grid-template-columns: 1fr; } .card { padding: 22px; } }
@media (max-width: 480px) { .badge { display: none; } }
.facts { margin: 0; display: grid; gap: 14px; align-content: start; }
.facts dt { color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
.facts dd { margin: 2px 0 0; font-size: 17px; font-weight: 600; overflow-wrap: anywhere; }
.balance-box { background: #f7f7fe; border: 1px solid #e2e1fb; border-radius: 12px; padding: 16px 18px; }
.balance-label { color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
.balance-amount { font-size: 34px; font-weight: 700; letter-spacing: -.01em; font-variant-numeric: tabular-nums; margin: 2px 0 8px; }
.meter { height: 6px; background: #e2e1fb; border-radius: 999px; overflow: hidden; margin-bottom: 4px; }
.meter span { display: block; height: 100%; width: 0; background: var(--primary); border-radius: 999px; }
.actions { display: flex; gap: 12px; flex-wrap: wrap; }
.btn { font: inherit; font-size: 15px; font-weight: 600; padding: 10px 20px; border-radius: 10px; border: 1px solid transparent; cursor: pointer; transition: background-color .15s; }
.btn:focus-visible { outline: 3px solid #a5b4fc; outline-offset: 2px; }
.btn:disabled { opacity: .65; cursor: progress; }
.btn-large { font-size: 17px; padding: 13px 28px; }
.btn-primary { background: var(--primary); color: #fff; }
.btn-primary:hover:not(:disabled) { background: var(--primary-dark); }
.btn-success { background: var(--success); color: #fff; }
.btn-success:hover:not(:disabled) { background: var(--success-dark); }
.btn-ghost { background: #fff; color: var(--text); border-color: #cfd4e0; margin-left: auto; }
.btn-ghost:hover:not(:disabled) { background: #f1f3f8; }
.footer { color: var(--muted); font-size: 13px; margin-top: 24px; }
.footer p { margin: 0; }
a { color: var(--primary); }
[hidden] { display: none !important; }
`

const JS = `'use strict';
(function () {
  // What every error code the app's routes can answer means, in words for the user.
  var MESSAGES = {
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
  };
  var POPUP_NAME = 'aihubmix_login';
  var $ = function (id) { return document.getElementById(id); };
  var popup = null;
  var popupTimer = null;
  var popupGrace = null;

  function say (text, busy) {
    $('status-text').textContent = text || '';
    $('status').classList.toggle('busy', Boolean(busy));
  }
  function showError (code) {
    var el = $('error');
    if (!code) { el.hidden = true; el.textContent = ''; return; }
    el.textContent = Object.prototype.hasOwnProperty.call(MESSAGES, code) ? MESSAGES[code] : MESSAGES.server_error;
    el.hidden = false;
  }
  function setBusy (button, busy, label) {
    if (busy) {
      if (!button.disabled) button.dataset.label = button.textContent;
      button.textContent = label;
    }
    else if (button.dataset.label) { button.textContent = button.dataset.label; }
    button.disabled = busy;
    button.setAttribute('aria-busy', busy ? 'true' : 'false');
  }

  function showLogin (note) {
    $('user-info').hidden = true;
    $('login-section').hidden = false;
    setBusy($('login'), false);
    $('topup-fallback').hidden = true;
    say(note || '');
  }

  function text (value) { return typeof value === 'string' && value !== '' ? value : null; }
  function showUser (info) {
    info = info || {};
    var name = text(info.username);
    $('username').textContent = name || 'Not shared';
    $('email').textContent = text(info.email) || 'Not shared';
    $('avatar').textContent = name ? name.charAt(0).toUpperCase() : '?';
    $('welcome').textContent = name ? 'Welcome back, ' + name + '!' : 'Welcome back!';
    var since = typeof info.created_time === 'number' && info.created_time > 0 ? new Date(info.created_time * 1000) : null;
    $('member-since').textContent = since ? 'AIHubMix member since ' + since.toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' }) : '';
    $('balance').textContent = text(info.balance_formatted) || 'Not shared';
    var quota = info.quota, used = info.used_quota;
    if (typeof quota === 'number' && typeof used === 'number' && quota > 0) {
      var share = Math.min(100, Math.max(0, used / quota * 100));
      $('meter-fill').style.width = share.toFixed(1) + '%';
      $('usage-text').textContent = (share < 10 ? share.toFixed(1) : Math.round(share)) + '% of your quota used';
      $('usage').hidden = false;
    } else {
      $('usage').hidden = true;
    }
    var wasHidden = $('user-info').hidden;
    $('login-section').hidden = true;
    $('user-info').hidden = false;
    if (wasHidden) $('welcome').focus();
  }
  function noteUpdated (before, after) {
    var time = new Date().toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    $('balance-note').textContent = (before !== null && before !== after ? 'Balance changed, updated at ' : 'Up to date as of ') + time;
  }

  // Same-origin JSON calls; the X-CSRF header is what the app's routes require of every call.
  function api (path, init) {
    init = init || {};
    init.credentials = 'same-origin';
    init.cache = 'no-store';
    init.headers = { 'X-CSRF': '1', Accept: 'application/json' };
    return fetch(path, init).then(function (res) {
      if (res.status === 204) return null;
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok) {
          var code = body && typeof body.error === 'string' ? body.error : 'server_error';
          var err = new Error(code); err.code = code; err.status = res.status;
          throw err;
        }
        return body;
      });
    }, function () { var err = new Error('network'); err.code = 'network'; throw err; });
  }

  // A 401 means the session is gone: back to the sign-in button, with the reason.
  function handleApiError (err) {
    showError(err.code);
    if (err.status === 401) showLogin(); else say('');
  }

  function loadUser () {
    say('Loading your account…', true);
    return api('/api/user/info').then(function (info) {
      showError(null); say(''); showUser(info); $('balance-note').textContent = '';
    }, function (err) {
      showError(err.code);
      // Nothing shown yet: offer the sign-in again rather than a page stuck half-way.
      if (err.status === 401 || $('user-info').hidden) showLogin(); else say('');
    });
  }

  // The probe: /auth/session answers 200 signed in or not, so a signed-out visit logs no error.
  function checkSession (note) {
    say('Checking whether you are signed in…', true);
    return api('/auth/session').then(function (s) {
      if (s && s.authenticated === true) return loadUser();
      showLogin(note);
    }, function (err) { showError(err.code); showLogin(); });
  }

  function stopWatchingPopup () {
    clearInterval(popupTimer);
    clearTimeout(popupGrace);
    popupTimer = null;
    popupGrace = null;
    popup = null;
  }

  // Only our own origin, and only the window we opened, may report a sign-in.
  function onMessage (event) {
    if (event.origin !== window.location.origin) return;
    if (popup === null || event.source !== popup) return;
    var data = event.data;
    if (!data || typeof data !== 'object' || data.type !== 'aihubmix:login') return;
    stopWatchingPopup();
    if (data.ok === true) { showError(null); loadUser(); }
    else { showLogin(); showError(typeof data.error === 'string' ? data.error : 'server_error'); }
  }

  function login () {
    showError(null);
    if (popup !== null && !popup.closed) { popup.focus(); return; }
    stopWatchingPopup();
    var width = 520, height = 680;
    var left = Math.max(0, Math.round(window.screenX + (window.outerWidth - width) / 2));
    var top = Math.max(0, Math.round(window.screenY + (window.outerHeight - height) / 3));
    var opened = window.open('/auth/login?mode=popup&returnTo=%2F', POPUP_NAME,
      'popup,width=' + width + ',height=' + height + ',left=' + left + ',top=' + top);
    if (!opened || opened.closed) {
      // Popup blocked: the same sign-in as a full-page redirect, back to this page.
      say('Taking you to AIHubMix to sign in…', true);
      setBusy($('login'), true, 'Signing in…');
      window.location.assign('/auth/login?returnTo=%2F');
      return;
    }
    popup = opened;
    setBusy($('login'), true, 'Signing in…');
    say('Finish signing in in the AIHubMix window…', true);
    popupTimer = setInterval(function () {
      if (popup === null || !popup.closed) return;
      clearInterval(popupTimer);
      popupTimer = null;
      askForLandingErrors();
      // The window closed. Its last message may still be on its way (it posts, then closes):
      // give it a moment, then ask the server. A message that comes later is still believed.
      popupGrace = setTimeout(function () {
        popupGrace = null;
        if (popup !== null) checkSession('The sign-in window was closed before signing in finished.');
      }, 500);
    }, 250);
  }

  function refreshBalance () {
    var btn = $('refresh-balance');
    var before = $('balance').textContent;
    setBusy(btn, true, 'Refreshing…');
    say('Refreshing your balance…', true);
    api('/api/user/info').then(function (info) {
      showError(null); say(''); showUser(info);
      noteUpdated(before, $('balance').textContent);
    }, handleApiError).then(function () { setBusy(btn, false); });
  }

  function safeUrl (value) {
    try {
      var url = new URL(value);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (e) { return null; }
  }

  // The tab opens at the click (no popup blocker objects), cut off from this page,
  // and goes to the provider once the app has asked it where.
  function topup () {
    var btn = $('topup');
    showError(null);
    $('topup-fallback').hidden = true;
    var tab = window.open('', '_blank');
    if (tab) {
      tab.opener = null;
      tab.document.title = 'Opening the top-up page…';
      if (tab.document.body) tab.document.body.textContent = 'Opening the AIHubMix top-up page…';
    }
    setBusy(btn, true, 'Opening…');
    api('/api/user/topup').then(function (body) {
      var url = safeUrl(body && body.topup_url);
      if (url === null) { var err = new Error('bad_topup_url'); err.code = 'bad_topup_url'; throw err; }
      if (tab && !tab.closed) { tab.location.replace(url); return; }
      $('topup-link').href = url;
      $('topup-fallback').hidden = false;
    }).catch(function (err) {
      if (tab && !tab.closed) tab.close();
      handleApiError(err);
    }).then(function () { setBusy(btn, false); });
  }

  function logout () {
    var btn = $('logout');
    setBusy(btn, true, 'Signing out…');
    say('Signing you out…', true);
    api('/auth/logout', { method: 'POST' }).then(function () {
      showError(null); showLogin('You are signed out.'); $('login').focus();
    }, handleApiError).then(function () { setBusy(btn, false); });
  }

  // A sign-in that fails before the app knows it was a popup sign-in (an expired or unknown
  // state) lands on this page inside the sign-in window. This page's Cross-Origin-Opener-Policy
  // cuts such a window off from its opener (which then sees it as closed), so the two talk over
  // a same-origin BroadcastChannel: the landing page announces its error, and again whenever a
  // page whose sign-in window has gone asks; that page shows the error and answers, and the
  // landing page closes. Only errors travel this way: a sign-in succeeds only through the server.
  var CHANNEL = 'aihubmix-login';
  var channel = null;
  function listenForLandingErrors () {
    if (typeof BroadcastChannel !== 'function') return;
    channel = new BroadcastChannel(CHANNEL);
    channel.onmessage = function (event) {
      var data = event.data;
      if (!data || data.type !== 'aihubmix:login-error' || typeof data.error !== 'string') return;
      if (popup === null || !popup.closed) return;
      stopWatchingPopup();
      showLogin();
      showError(data.error);
      channel.postMessage({ type: 'aihubmix:login-error-taken', id: data.id });
    };
  }
  function askForLandingErrors () {
    if (channel !== null) channel.postMessage({ type: 'aihubmix:login-error-query' });
  }
  function announceLandingError (code) {
    if (typeof BroadcastChannel !== 'function' || window.opener !== null) return;
    var landing = new BroadcastChannel(CHANNEL);
    var id = String(Math.random()).slice(2);
    var announce = function () { landing.postMessage({ type: 'aihubmix:login-error', error: code, id: id }); };
    landing.onmessage = function (event) {
      var data = event.data;
      if (!data) return;
      if (data.type === 'aihubmix:login-error-query') announce();
      if (data.type === 'aihubmix:login-error-taken' && data.id === id) {
        landing.close();
        // Closes only a window that a script opened: the sign-in window, never the user's own tab.
        window.close();
      }
    };
    announce();
  }

  document.addEventListener('DOMContentLoaded', function () {
    window.addEventListener('message', onMessage);
    $('login').addEventListener('click', login);
    $('refresh-balance').addEventListener('click', refreshBalance);
    $('topup').addEventListener('click', topup);
    $('logout').addEventListener('click', logout);
    window.addEventListener('pageshow', function (event) { if (event.persisted) checkSession(); });
    var params = new URLSearchParams(window.location.search);
    var error = params.get('error');
    if (error !== null) {
      // Only known codes are shown, as our own words; anything else is a generic message.
      var code = /^[a-z_]{1,40}$/.test(error) ? error : 'server_error';
      window.history.replaceState(null, '', window.location.pathname);
      showError(code);
      announceLandingError(code);
    }
    listenForLandingErrors();
    checkSession();
  });
})();
`

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
  const page = html(opts.providerOrigin)
  fastify.addHook('onSend', async (request, reply) => {
    for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) {
      if (!reply.hasHeader(name)) reply.header(name, value)
    }
    if (request.protocol === 'https' && !reply.hasHeader('strict-transport-security')) {
      reply.header('strict-transport-security', 'max-age=31536000')
    }
  })
  fastify.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page))
  fastify.get('/assets/app.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(JS))
  fastify.get('/assets/app.css', async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(CSS))
  // Browsers ask for it on every page of the origin (the sign-in popup's too); a 404 is a console error.
  fastify.get('/favicon.ico', async (_request, reply) => reply.header('cache-control', 'public, max-age=86400').code(204).send())
}
