import { MockInvalidArgumentError } from './errors.js'
import { MOCK_ENDPOINTS, MOCK_FAULTS, type MockEndpoint, type MockFault } from './options.js'

/** Calls per endpoint (faulted ones included), and token calls per grant type. */
export interface MockCounts {
  authorize: number
  token: number
  userinfo: number
  topup: number
  oauth_apps: number
  grants: { authorization_code: number, refresh_token: number }
  /** Refresh tokens presented again after a rotation (refused with `invalid_grant`). */
  refreshTokenReuses: number
  /** Calls of the revocation endpoint (`revocationEndpoint`) that authenticated, by what the token was. */
  revocations: { refresh_token: number, access_token: number, unknown: number }
}

export interface SwitchDefaults { envelope: boolean, envelopeErrorCodes: boolean, rotate: boolean, reuseRevokes: boolean }

interface ArmedFault { fault: MockFault, remaining: number | null }

function zeroCounts (): MockCounts {
  return {
    authorize: 0,
    token: 0,
    userinfo: 0,
    topup: 0,
    oauth_apps: 0,
    grants: { authorization_code: 0, refresh_token: 0 },
    refreshTokenReuses: 0,
    revocations: { refresh_token: 0, access_token: 0, unknown: 0 }
  }
}

function zeroLatency (): Record<MockEndpoint, number> {
  return { authorize: 0, token: 0, userinfo: 0, topup: 0, oauth_apps: 0 }
}

function isEndpoint (value: unknown): value is MockEndpoint {
  return (MOCK_ENDPOINTS as readonly unknown[]).includes(value)
}

/**
 * The run-time switches of one provider instance: envelope and rotation modes, per-endpoint
 * latency and faults, and call counts. Setters validate their arguments, because the control API
 * hands them whatever JSON arrived.
 */
export class Switches {
  readonly #defaults: SwitchDefaults
  envelope: boolean
  envelopeErrorCodes: boolean
  rotate: boolean
  reuseRevokes: boolean
  #latency = zeroLatency()
  #faults = new Map<MockEndpoint, ArmedFault>()
  #counts = zeroCounts()

  constructor (defaults: SwitchDefaults) {
    this.#defaults = { ...defaults }
    this.envelope = defaults.envelope
    this.envelopeErrorCodes = defaults.envelopeErrorCodes
    this.rotate = defaults.rotate
    this.reuseRevokes = defaults.reuseRevokes
  }

  setEnvelope (on: unknown, opts?: unknown): void {
    if (typeof on !== 'boolean') throw new MockInvalidArgumentError('on', 'must be a boolean')
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) throw new MockInvalidArgumentError('opts', 'must be an object')
    const errorCodes = (opts as { errorCodes?: unknown } | undefined)?.errorCodes
    if (errorCodes !== undefined && typeof errorCodes !== 'boolean') throw new MockInvalidArgumentError('opts.errorCodes', 'must be a boolean')
    this.envelope = on
    if (errorCodes !== undefined) this.envelopeErrorCodes = errorCodes
  }

  setRotation (opts: unknown): void {
    if (typeof opts !== 'object' || opts === null) throw new MockInvalidArgumentError('opts', 'must be an object')
    const { rotate, reuseRevokes } = opts as Record<string, unknown>
    if (rotate !== undefined && typeof rotate !== 'boolean') throw new MockInvalidArgumentError('opts.rotate', 'must be a boolean')
    if (reuseRevokes !== undefined && typeof reuseRevokes !== 'boolean') {
      throw new MockInvalidArgumentError('opts.reuseRevokes', 'must be a boolean')
    }
    this.rotate = rotate ?? this.rotate
    this.reuseRevokes = reuseRevokes ?? this.reuseRevokes
  }

  setLatency (endpoint: unknown, ms: unknown): void {
    if (endpoint !== 'all' && !isEndpoint(endpoint)) {
      throw new MockInvalidArgumentError('endpoint', `must be 'all' or one of ${MOCK_ENDPOINTS.join(', ')}`)
    }
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new MockInvalidArgumentError('ms', 'must be a finite number >= 0')
    }
    for (const e of endpoint === 'all' ? MOCK_ENDPOINTS : [endpoint]) this.#latency[e] = ms
  }

  latency (endpoint: MockEndpoint): number {
    return this.#latency[endpoint]
  }

  setFault (endpoint: unknown, fault: unknown, opts?: unknown): void {
    if (!isEndpoint(endpoint)) throw new MockInvalidArgumentError('endpoint', `must be one of ${MOCK_ENDPOINTS.join(', ')}`)
    if (fault !== null && !(MOCK_FAULTS as readonly unknown[]).includes(fault)) {
      throw new MockInvalidArgumentError('fault', `must be null or one of ${MOCK_FAULTS.join(', ')}`)
    }
    if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
      throw new MockInvalidArgumentError('opts', 'must be an object')
    }
    const times = (opts as { times?: unknown } | undefined)?.times
    if (times !== undefined && (typeof times !== 'number' || !Number.isInteger(times) || times < 1)) {
      throw new MockInvalidArgumentError('opts.times', 'must be an integer >= 1')
    }
    if (fault === null) {
      this.#faults.delete(endpoint)
    } else {
      this.#faults.set(endpoint, { fault: fault as MockFault, remaining: times ?? null })
    }
  }

  /** The fault for this call of `endpoint`, if one is armed; uses up one of its `times`. */
  takeFault (endpoint: MockEndpoint): MockFault | null {
    const armed = this.#faults.get(endpoint)
    if (armed === undefined) return null
    if (armed.remaining !== null && --armed.remaining === 0) this.#faults.delete(endpoint)
    return armed.fault
  }

  count (endpoint: MockEndpoint): void {
    this.#counts[endpoint]++
  }

  countGrant (grantType: string | undefined): void {
    if (grantType === 'authorization_code' || grantType === 'refresh_token') this.#counts.grants[grantType]++
  }

  countReuse (): void {
    this.#counts.refreshTokenReuses++
  }

  countRevocation (what: keyof MockCounts['revocations']): void {
    this.#counts.revocations[what]++
  }

  counts (): MockCounts {
    return { ...this.#counts, grants: { ...this.#counts.grants }, revocations: { ...this.#counts.revocations } }
  }

  resetCounts (): void {
    this.#counts = zeroCounts()
  }

  /** Faults, latency, counts, envelope and rotation back to what the provider started with. */
  reset (): void {
    this.#faults.clear()
    this.#latency = zeroLatency()
    this.resetCounts()
    this.envelope = this.#defaults.envelope
    this.envelopeErrorCodes = this.#defaults.envelopeErrorCodes
    this.rotate = this.#defaults.rotate
    this.reuseRevokes = this.#defaults.reuseRevokes
  }
}
