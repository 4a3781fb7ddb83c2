import t from 'tap'
import dc from 'node:diagnostics_channel'
import { REFRESH_CHANNEL, REFRESH_LOCK_WAIT_CHANNEL, STORE_ERROR_CHANNEL } from '@fastify-aihubmix/token-store'
import { UPSTREAM_CHANNEL } from '@fastify-aihubmix/aihubmix-proxy'
import { LOGIN_CHANNEL } from '@fastify-aihubmix/oauth-routes'
import { metricsApp } from '../helpers/metrics-app.js'

// Issue 19: the plugin subscribes when registered and unsubscribes when its app closes; with no subscriber left,
// the publishers build nothing (they check `hasSubscribers` first).

const CHANNELS = [
  `tracing:${UPSTREAM_CHANNEL}:asyncEnd`,
  `tracing:${REFRESH_CHANNEL}:asyncEnd`,
  REFRESH_LOCK_WAIT_CHANNEL,
  STORE_ERROR_CHANNEL,
  LOGIN_CHANNEL
]

t.test('closing the app unsubscribes from every channel', async (t) => {
  t.same(CHANNELS.filter((name) => dc.hasSubscribers(name)), [], 'nobody listens before')
  const app = await metricsApp(t)
  t.same(CHANNELS.filter((name) => dc.hasSubscribers(name)), CHANNELS, 'the plugin listens to each')
  t.equal(dc.tracingChannel(UPSTREAM_CHANNEL).hasSubscribers, true)
  await app.close()
  t.same(CHANNELS.filter((name) => dc.hasSubscribers(name)), [], 'nobody listens after')
  t.equal(dc.tracingChannel(UPSTREAM_CHANNEL).hasSubscribers, false)
  t.equal(dc.tracingChannel(REFRESH_CHANNEL).hasSubscribers, false)
})
