import { randomBytes } from 'node:crypto'

export interface PopupResult {
  ok: boolean
  error?: string
}

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
 * The page the callback answers in popup mode: it posts
 * `{type: 'aihubmix:login', ok, error?}` to the opener, for the app's exact
 * origin only (never `*`), then closes. Without an opener (the popup became a
 * tab) it goes to `fallbackPath` instead. Carries no token and no code.
 *
 * It has no words: it is gone as soon as its script runs, and the page that opened it (or the
 * page it falls back to) says what happened, in the user's language.
 */
export function popupPage (result: PopupResult, targetOrigin: string, fallbackPath: string): { html: string, csp: string } {
  const nonce = randomBytes(16).toString('base64')
  const message = result.ok
    ? { type: 'aihubmix:login', ok: true }
    : { type: 'aihubmix:login', ok: false, error: result.error ?? 'server_error' }
  const html = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AIHubMix</title>
</head>
<body>
<script nonce="${nonce}">
(function () {
  var message = ${scriptJson(message)};
  var origin = ${scriptJson(targetOrigin)};
  var fallback = ${scriptJson(fallbackPath)};
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage(message, origin);
    window.close();
  } else {
    window.location.replace(fallback);
  }
})();
</script>
</body>
</html>
`
  const csp = `default-src 'none'; script-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
  return { html, csp }
}
