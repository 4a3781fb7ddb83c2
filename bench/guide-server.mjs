// The pattern of the AIHubMix developer guide (its steps 2 to 4 and its "server-side
// API proxy"): Express, express-session (its in-memory store, the options its README
// recommends), tokens in the session, and a fetch per request to the provider. The guide
// uses node-fetch; Node's built-in fetch stands in for it here (same shape, and faster).
//
// env: BENCH_PORT, BENCH_UPSTREAM, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SESSION_SECRET
import { randomBytes } from 'node:crypto'
import express from 'express'
import session from 'express-session'
import { failStart, serveUntilStopped } from './lib.mjs'

async function main () {
  const env = process.env
  const port = Number(env.BENCH_PORT)
  const publicUrl = `http://127.0.0.1:${port}`
  const redirectUri = `${publicUrl}/oauth/callback`
  const authServer = env.BENCH_UPSTREAM

  const app = express()
  app.use(session({ secret: env.BENCH_SESSION_SECRET, resave: false, saveUninitialized: false }))

  app.get('/auth/oauth/start', (req, res) => {
    const state = randomBytes(16).toString('hex')
    req.session.oauth_state = state
    const authUrl = new URL(`${authServer}/api/oauth2/authorize`)
    authUrl.searchParams.append('client_id', env.BENCH_CLIENT_ID)
    authUrl.searchParams.append('redirect_uri', redirectUri)
    authUrl.searchParams.append('response_type', 'code')
    authUrl.searchParams.append('scope', 'profile balance')
    authUrl.searchParams.append('state', state)
    authUrl.searchParams.append('auto_authorize', 'true')
    res.redirect(authUrl.toString())
  })

  app.get('/oauth/callback', async (req, res) => {
    const { code, state, error } = req.query
    if (error) return res.redirect(`/?error=${encodeURIComponent(error)}`)
    if (!code || !state) return res.redirect('/?error=missing_parameters')
    if (state !== req.session.oauth_state) return res.redirect('/?error=invalid_state')
    try {
      const tokenResponse = await fetch(`${authServer}/api/oauth2/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code,
          redirect_uri: redirectUri,
          client_id: env.BENCH_CLIENT_ID,
          client_secret: env.BENCH_CLIENT_SECRET
        })
      })
      const tokenData = await tokenResponse.json()
      if (!tokenResponse.ok) throw new Error(tokenData.error || 'token exchange failed')
      req.session.access_token = tokenData.access_token
      req.session.refresh_token = tokenData.refresh_token
      req.session.token_expires_at = Date.now() + (tokenData.expires_in * 1000)
      delete req.session.oauth_state
      res.redirect('/?login=success')
    } catch {
      res.redirect('/?error=server_error')
    }
  })

  app.get('/api/user/info', async (req, res) => {
    const accessToken = req.session.access_token
    if (!accessToken) return res.status(401).json({ error: 'unauthenticated' })
    try {
      const response = await fetch(`${authServer}/api/oauth2/userinfo`, {
        headers: { Authorization: `Bearer ${accessToken}` }
      })
      if (!response.ok) throw new Error('userinfo request failed')
      const userInfo = await response.json()
      res.json(userInfo)
    } catch {
      res.status(500).json({ error: 'server_error' })
    }
  })

  const server = app.listen(port, '127.0.0.1', (err) => {
    if (err) {
      failStart(err)
      return
    }
    serveUntilStopped(publicUrl, () => new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }))
  })
}

main().catch(failStart)
