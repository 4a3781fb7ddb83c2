import type { FastifyInstance } from 'fastify'

/**
 * The example page: everything the provider's SDK page does (check the login
 * state, one-click login in a popup with a full-page fallback, name, e-mail and
 * balance, refresh the balance, open the top-up page, log out) with nothing but
 * the HttpOnly session cookie. No token, code or secret ever reaches it.
 */

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AIHubMix sign-in example</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<main class="container">
  <header>
    <h1>My AIHubMix app</h1>
    <p class="subtitle">Sign in with AIHubMix, see your balance, top up. Your tokens stay on the server.</p>
  </header>

  <div id="status" class="status" role="status" aria-live="polite">Checking whether you are signed in…</div>
  <div id="error" data-testid="error" class="error" role="alert" hidden></div>

  <section id="login-section" class="card" hidden>
    <h2>Sign in to see your account</h2>
    <p>One click: AIHubMix signs you in and sends you straight back.</p>
    <button id="login" data-testid="login" class="btn btn-primary" type="button">Sign in with AIHubMix</button>
  </section>

  <section id="user-info" data-testid="user-info" class="card" hidden>
    <h2>Welcome back!</h2>
    <dl>
      <dt>User name</dt><dd data-testid="username" id="username"></dd>
      <dt>E-mail</dt><dd data-testid="email" id="email"></dd>
      <dt>Balance</dt><dd><span data-testid="balance" id="balance"></span></dd>
    </dl>
    <div class="actions">
      <button id="refresh-balance" data-testid="refresh-balance" class="btn btn-success" type="button">Refresh balance</button>
      <button id="topup" data-testid="topup" class="btn btn-primary" type="button">Top up</button>
      <button id="logout" data-testid="logout" class="btn btn-secondary" type="button">Sign out</button>
    </div>
  </section>
</main>
</body>
</html>
`

const CSS = `:root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; background: #f4f6fb; color: #1d2433; }
.container { max-width: 720px; margin: 0 auto; padding: 32px 20px; }
header h1 { margin: 0 0 4px; font-size: 28px; }
.subtitle { margin: 0 0 24px; color: #5b6475; }
.card { background: #fff; border-radius: 12px; padding: 24px; box-shadow: 0 1px 3px rgba(16,24,40,.1); margin: 16px 0; }
.card h2 { margin-top: 0; font-size: 20px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 8px 24px; margin: 0 0 20px; }
dt { color: #5b6475; }
dd { margin: 0; font-weight: 600; }
.actions { display: flex; gap: 12px; flex-wrap: wrap; }
.btn { padding: 10px 20px; border: 0; border-radius: 8px; cursor: pointer; font-size: 15px; font-weight: 600; }
.btn:disabled { opacity: .6; cursor: progress; }
.btn-primary { background: #2563eb; color: #fff; }
.btn-success { background: #16a34a; color: #fff; }
.btn-secondary { background: #64748b; color: #fff; }
.status { color: #5b6475; min-height: 1.5em; }
.error { background: #fdecec; color: #9b1c1c; border-radius: 8px; padding: 12px 16px; margin: 12px 0; }
[hidden] { display: none !important; }
`

const JS = `'use strict';
(function () {
  var MESSAGES = {
    invalid_state: 'The sign-in link expired or was already used. Please sign in again.',
    missing_parameters: 'AIHubMix did not send the sign-in back completely. Please try again.',
    invalid_request: 'The sign-in answer was not valid. Please try again.',
    invalid_issuer: 'The sign-in answer came from an unexpected server. Please try again.',
    access_denied: 'You cancelled the sign-in at AIHubMix.',
    provider_error: 'AIHubMix could not sign you in. Please try again.',
    token_exchange_failed: 'AIHubMix could not complete the sign-in. Please try again in a moment.',
    server_error: 'Something went wrong on our side. Please try again.',
    unauthenticated: 'You are signed out. Please sign in.',
    reauth_required: 'Your access to AIHubMix was withdrawn or has expired. Please sign in again.',
    bad_gateway: 'AIHubMix gave an unexpected answer. Please try again in a moment.',
    upstream_timeout: 'AIHubMix is taking too long to answer. Please try again in a moment.',
    upstream_unavailable: 'AIHubMix is busy right now. Please try again in a moment.',
    store_unavailable: 'Our session storage is unavailable. Please try again in a moment.',
    refresh_busy: 'Your session is being renewed. Please try again in a moment.',
    insufficient_scope: 'You did not allow this app to see your balance.',
    network: 'Could not reach the server. Check your connection and try again.',
    popup_closed: 'The sign-in window was closed before signing in finished.'
  };
  var $ = function (id) { return document.getElementById(id); };
  var popup = null;
  var popupTimer = null;

  function say (text) { $('status').textContent = text || ''; }
  function showError (code) {
    var el = $('error');
    if (!code) { el.hidden = true; el.textContent = ''; return; }
    el.textContent = MESSAGES[code] || MESSAGES.server_error;
    el.hidden = false;
  }
  function showLogin () { $('user-info').hidden = true; $('login-section').hidden = false; $('login').disabled = false; say(''); }
  function showUser (info) {
    $('username').textContent = info.username || '(not shared)';
    $('email').textContent = info.email || '(not shared)';
    $('balance').textContent = info.balance_formatted !== undefined ? info.balance_formatted : '(not shared)';
    $('login-section').hidden = true;
    $('user-info').hidden = false;
    say('');
  }

  function api (path, init) {
    init = init || {};
    init.credentials = 'same-origin';
    init.headers = Object.assign({ 'X-CSRF': '1', Accept: 'application/json' }, init.headers || {});
    return fetch(path, init).then(function (res) {
      if (res.status === 204) return null;
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok) { var e = new Error(body.error || 'server_error'); e.code = body.error || 'server_error'; e.status = res.status; throw e; }
        return body;
      });
    }, function () { var e = new Error('network'); e.code = 'network'; throw e; });
  }

  function handleApiError (err) {
    if (err.status === 401) { showError(err.code); showLogin(); return; }
    showError(err.code);
  }

  function loadUser () {
    say('Loading your account…');
    return api('/api/user/info').then(function (info) { showError(null); showUser(info); }, function (err) {
      say(''); handleApiError(err);
    });
  }

  function checkSession () {
    return fetch('/auth/session', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (res) { return res.json(); })
      .then(function (s) { if (s.authenticated) return loadUser(); showLogin(); },
        function () { showError('network'); showLogin(); });
  }

  function onMessage (event) {
    if (event.origin !== window.location.origin) return;
    if (popup === null || event.source !== popup) return;
    var data = event.data;
    if (!data || data.type !== 'aihubmix:login') return;
    clearInterval(popupTimer);
    popup = null;
    if (data.ok) { showError(null); loadUser(); } else { showError(data.error); showLogin(); }
  }

  function login () {
    showError(null);
    $('login').disabled = true;
    say('Signing you in…');
    popup = window.open('/auth/login?mode=popup&returnTo=/', 'aihubmix_login', 'popup,width=520,height=680');
    if (!popup) {
      // Popup blocked: the same login as a full-page redirect.
      window.location.assign('/auth/login?returnTo=/');
      return;
    }
    clearInterval(popupTimer);
    popupTimer = setInterval(function () {
      if (popup && popup.closed) {
        clearInterval(popupTimer);
        popup = null;
        // The window may have closed right after a successful sign-in.
        checkSession();
      }
    }, 500);
  }

  function refreshBalance () {
    var btn = $('refresh-balance');
    btn.disabled = true;
    say('Refreshing your balance…');
    api('/api/user/info').then(function (info) { showError(null); showUser(info); }, handleApiError)
      .then(function () { btn.disabled = false; say(''); });
  }

  function topup () {
    var btn = $('topup');
    btn.disabled = true;
    api('/api/user/topup').then(function (body) {
      var w = window.open(body.topup_url, '_blank', 'noopener');
      if (!w) window.location.assign(body.topup_url);
    }, handleApiError).then(function () { btn.disabled = false; });
  }

  function logout () {
    $('logout').disabled = true;
    api('/auth/logout', { method: 'POST' }).then(function () { showError(null); showLogin(); }, handleApiError)
      .then(function () { $('logout').disabled = false; });
  }

  document.addEventListener('DOMContentLoaded', function () {
    window.addEventListener('message', onMessage);
    $('login').addEventListener('click', login);
    $('refresh-balance').addEventListener('click', refreshBalance);
    $('topup').addEventListener('click', topup);
    $('logout').addEventListener('click', logout);
    var params = new URLSearchParams(window.location.search);
    var error = params.get('error');
    if (error) {
      showError(/^[a-z_]{1,40}$/.test(error) ? error : 'server_error');
      window.history.replaceState(null, '', window.location.pathname);
    }
    checkSession();
  });
})();
`

export interface PageOptions {
  /** The provider's origin: the top-up page opens there. */
  providerOrigin: string
}

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // Keeps `window.opener` for the sign-in popup, severs it for everything else.
  'cross-origin-opener-policy': 'same-origin-allow-popups',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()'
}

export async function pageRoutes (fastify: FastifyInstance, _opts: PageOptions): Promise<void> {
  fastify.addHook('onSend', async (_request, reply) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      if (!reply.hasHeader(name)) reply.header(name, value)
    }
  })
  fastify.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(HTML))
  fastify.get('/assets/app.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(JS))
  fastify.get('/assets/app.css', async (_request, reply) => reply.type('text/css; charset=utf-8').header('cache-control', 'no-cache').send(CSS))
}
