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

/** Text safe inside a double-quoted attribute (popupLanguage()'s tags need none of it; a caller's value might). */
function escapeAttribute (value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

/**
 * The BroadcastChannel on which the popup page tells the app's pages (same origin only) when it has no opener.
 * A page that takes the message answers `{type: 'aihubmix:login-taken', id}` with the message's `id`.
 */
const POPUP_CHANNEL = 'aihubmix-login'

/** How long the popup page without an opener waits for a page to take its message before going to `fallbackPath`. */
const TAKEN_WAIT_MS = 1000

/** Tags longer than this are not a language a browser asks for (BCP 47 allows more; none of them is likely). */
const MAX_LANGUAGE_TAG_LENGTH = 35
/** How many entries of an Accept-Language header are read: the first language is what matters. */
const MAX_LANGUAGE_ENTRIES = 16

/**
 * The popup page's `<html lang>`: the browser's own first language (its `Accept-Language`, by `q`, then order), which
 * is what the app's page and the provider's pages around it go by unless the user picked another, canonicalised
 * (`ja-jp` is `ja-JP`); `en` when the header names none that is well-formed. Only a tag that `Intl` accepts and that
 * is letters, digits and hyphens is used: the header is the client's to choose and ends up in the page.
 */
export function popupLanguage (acceptLanguage: string | string[] | undefined): string {
  const header = Array.isArray(acceptLanguage) ? acceptLanguage.join(',') : acceptLanguage
  if (header === undefined) return 'en'
  let best: { tag: string, q: number } | undefined
  for (const entry of header.split(',').slice(0, MAX_LANGUAGE_ENTRIES)) {
    const [range = '', ...params] = entry.split(';').map((part) => part.trim())
    if (range === '*' || range.length > MAX_LANGUAGE_TAG_LENGTH || !/^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$/.test(range)) continue
    const qParam = params.find((p) => /^q=/i.test(p))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (!Number.isFinite(q) || q <= 0 || q > 1) continue
    let tag: string
    try {
      tag = Intl.getCanonicalLocales(range)[0] as string
    } catch {
      continue
    }
    // Strictly greater: of equal weights the first listed wins.
    if (best === undefined || q > best.q) best = { tag, q }
  }
  return best?.tag ?? 'en'
}

/**
 * The page the callback answers in popup mode: it posts
 * `{type: 'aihubmix:login', ok, error?}` to the opener, for the app's exact
 * origin only (never `*`), then closes. Without an opener (a provider page that
 * sends `Cross-Origin-Opener-Policy: same-origin` cuts the popup off from it for
 * good; or the popup became a tab) it posts the same message, with an `id`, on
 * the same-origin BroadcastChannel `aihubmix-login` and closes once a page answers
 * `{type: 'aihubmix:login-taken', id}`; when none does within a second, it goes to
 * `fallbackPath` instead. Carries no token and no code.
 *
 * It has no words: it is gone as soon as its script runs, and the page that opened it (or the
 * page it falls back to) says what happened, in the user's language. Its `<html lang>` is `lang` (popupLanguage()),
 * so that a screen reader reads its title in the voice of the flow around it rather than guessing.
 */
export function popupPage (result: PopupResult, targetOrigin: string, fallbackPath: string, lang = 'en'): { html: string, csp: string } {
  const nonce = randomBytes(16).toString('base64')
  const message = result.ok
    ? { type: 'aihubmix:login', ok: true }
    : { type: 'aihubmix:login', ok: false, error: result.error ?? 'server_error' }
  const html = `<!doctype html>
<html lang="${escapeAttribute(lang)}">
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
    return;
  }
  if (typeof BroadcastChannel !== 'function') {
    window.location.replace(fallback);
    return;
  }
  var channel = new BroadcastChannel(${scriptJson(POPUP_CHANNEL)});
  var id = ${scriptJson(randomBytes(12).toString('base64url'))};
  var giveUp = setTimeout(function () {
    channel.close();
    window.location.replace(fallback);
  }, ${TAKEN_WAIT_MS});
  channel.onmessage = function (event) {
    var data = event.data;
    if (!data || data.type !== 'aihubmix:login-taken' || data.id !== id) return;
    clearTimeout(giveUp);
    channel.close();
    window.close();
    // Still here (a window that only its user may close): the fallback, rather than a blank window.
    setTimeout(function () { window.location.replace(fallback); }, 500);
  };
  message.id = id;
  channel.postMessage(message);
})();
</script>
</body>
</html>
`
  const csp = `default-src 'none'; script-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
  return { html, csp }
}
