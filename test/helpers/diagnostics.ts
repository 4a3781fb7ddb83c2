import dc from 'node:diagnostics_channel'
import { REFRESH_CHANNEL, REFRESH_LOCK_WAIT_CHANNEL, STORE_ERROR_CHANNEL } from '@fastify-aihubmix/token-store'
import { UPSTREAM_CHANNEL } from '@fastify-aihubmix/aihubmix-proxy'
import { LOGIN_CHANNEL } from '@fastify-aihubmix/oauth-routes'

/** The plugins' TracingChannels and plain channels (the READMEs document each). */
export const TRACING_CHANNELS = [REFRESH_CHANNEL, UPSTREAM_CHANNEL] as const
export const PLAIN_CHANNELS = [REFRESH_LOCK_WAIT_CHANNEL, STORE_ERROR_CHANNEL, LOGIN_CHANNEL] as const
const TRACE_EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const

export interface Recorded {
  /** `aihubmix:login`, or `aihubmix:upstream:asyncEnd` for an event of a TracingChannel. */
  channel: string
  /** The message (a TracingChannel's context is the same object at each of its events). */
  message: Record<string, unknown>
  /** A shallow copy taken when it was published (a context gains fields as the span goes on). */
  snapshot: Record<string, unknown>
}

/**
 * Subscribes to every channel of the plugins (all five events of the TracingChannels) and records each message,
 * until teardown.
 */
export function recordDiagnostics (t: { teardown: (fn: () => unknown) => void }): Recorded[] {
  const recorded: Recorded[] = []
  const subscriptions: Array<[dc.Channel, (message: unknown) => void]> = []
  const listen = (channel: dc.Channel, name: string): void => {
    const handler = (message: unknown): void => {
      const m = message as Record<string, unknown>
      recorded.push({ channel: name, message: m, snapshot: { ...m } })
    }
    channel.subscribe(handler)
    subscriptions.push([channel, handler])
  }
  for (const name of TRACING_CHANNELS) {
    const tracing = dc.tracingChannel(name)
    for (const event of TRACE_EVENTS) listen(tracing[event], `${name}:${event}`)
  }
  for (const name of PLAIN_CHANNELS) listen(dc.channel(name), name)
  t.teardown(() => {
    for (const [channel, handler] of subscriptions) channel.unsubscribe(handler)
  })
  return recorded
}

/**
 * Every string a subscriber can reach from `value` by reading properties: own properties (enumerable or not) of
 * objects and arrays, entries of maps and sets, an error's message, stack and cause, and numbers as text. Getters
 * on prototypes are not called and functions are not read; private (#) fields are out of any subscriber's reach.
 */
export function reachableStrings (value: unknown, seen = new Set<unknown>(), out: string[] = []): string[] {
  if (typeof value === 'string') {
    out.push(value)
    return out
  }
  if (typeof value === 'number' || typeof value === 'bigint') {
    out.push(String(value))
    return out
  }
  if (typeof value !== 'object' || value === null || seen.has(value)) return out
  seen.add(value)
  if (value instanceof Map) {
    for (const [k, v] of value) {
      reachableStrings(k, seen, out)
      reachableStrings(v, seen, out)
    }
  } else if (value instanceof Set) {
    for (const v of value) reachableStrings(v, seen, out)
  }
  for (const key of Object.getOwnPropertyNames(value)) {
    out.push(key)
    const descriptor = Object.getOwnPropertyDescriptor(value, key)
    if (descriptor !== undefined && 'value' in descriptor) reachableStrings(descriptor.value, seen, out)
  }
  if (value instanceof Error) {
    reachableStrings(value.message, seen, out)
    reachableStrings(value.stack, seen, out)
    reachableStrings((value as { cause?: unknown }).cause, seen, out)
  }
  return out
}
