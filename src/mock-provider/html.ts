import type { FastifyReply } from 'fastify'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
}

function page (title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
button { font-size: 1rem; padding: .5rem 1.25rem; margin-right: .5rem; cursor: pointer; }
.muted { color: #666; font-size: .9rem; }
</style>
</head>
<body>
${body}
</body>
</html>
`
}

/** Sends an HTML page that no other site may frame, and that no cache keeps. */
export function sendPage (reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
    .send(page(title, body))
}

/**
 * The provider's own error page, for authorization requests it cannot send back to the client
 * (unknown client, unregistered redirect URI): RFC 6749 4.1.2.1 forbids redirecting those. The
 * message is one of ours, never text from the request.
 */
export function sendErrorPage (reply: FastifyReply, error: string, message: string): FastifyReply {
  return sendPage(reply, 400, 'Authorization error', `<h1>Authorization error</h1>
<p data-error="${escapeHtml(error)}"><strong>${escapeHtml(error)}</strong>: ${escapeHtml(message)}</p>`)
}

/** The consent page: a form that posts the (validated) request back with the user's decision. */
export function consentPageBody (params: { appName: string, username: string, scopes: string[], action: string, fields: Record<string, string> }): string {
  const hidden = Object.entries(params.fields)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n')
  const scopes = params.scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')
  return `<h1>Authorize ${escapeHtml(params.appName)}</h1>
<p>Signed in as <strong>${escapeHtml(params.username)}</strong>. <em>${escapeHtml(params.appName)}</em> asks for:</p>
<ul>${scopes}</ul>
<form method="post" action="${escapeHtml(params.action)}">
${hidden}
<button type="submit" name="decision" value="approve" data-testid="approve">Approve</button>
<button type="submit" name="decision" value="deny" data-testid="deny">Deny</button>
</form>
<p class="muted">Mock AIHubMix provider</p>`
}

export function topupPageBody (username: string): string {
  return `<h1>Top up your AIHubMix balance</h1>
<p>Signed in as <strong>${escapeHtml(username)}</strong>.</p>
<p class="muted">Mock AIHubMix provider: this page only stands in for the real top-up page.</p>`
}
