import type { AppRegistry } from './apps.js'
import type { GrantBook } from './grants.js'
import type { MockUser, ResolvedMockProviderOptions } from './options.js'
import type { Switches } from './switches.js'

/** Everything the routes of one provider instance share. Nothing of it lives at module level. */
export interface ProviderContext {
  readonly options: ResolvedMockProviderOptions
  readonly apps: AppRegistry
  readonly grants: GrantBook
  readonly switches: Switches
  /**
   * The user signed in at the provider: authorizations are theirs. `setUser()` patches it in place (tokens already
   * issued to them see the change); `signIn()` replaces it (their tokens keep their user).
   */
  user: MockUser
  /** Aborted when `close()` starts: releases hanging and delayed requests. */
  readonly closing: AbortSignal
  /** `http://host:port`, known once the server listens. */
  baseUrl: string
}
