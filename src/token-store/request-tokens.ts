import type { FastifyRequest } from 'fastify'
import type { GetFreshOptions, Refresher, TokenSet } from './token-set.js'
import type { StoredTokenSet, TokenStoreCore } from './token-store.js'
import { NoSessionError, UnauthenticatedError } from './errors.js'
import { PREFETCH_KEY, PrefetchedTokens } from './session-store.js'

/**
 * `request.tokens`: the token store bound to `request.session.sessionId` (@fastify/session). Without a session it
 * behaves as "no token set": get() is null, getFresh() throws UnauthenticatedError, clear() does nothing, and
 * save() throws NoSessionError.
 */
export interface RequestTokens {
  get (): Promise<TokenSet | null>
  save (set: TokenSet): Promise<void>
  clear (): Promise<void>
  getFresh (refresh: Refresher, opts?: GetFreshOptions): Promise<TokenSet>
}

/**
 * The first read of a request uses the sealed set the session store prefetched with the session (no round trip);
 * any later read, and any read after a save or clear, goes to the store, so it sees the newest set.
 */
export class RequestTokensImpl implements RequestTokens {
  readonly #store: TokenStoreCore
  readonly #request: FastifyRequest

  constructor (store: TokenStoreCore, request: FastifyRequest) {
    this.#store = store
    this.#request = request
  }

  async get (): Promise<TokenSet | null> {
    const sid = this.#sid()
    if (sid === undefined) return null
    const prefetched = await this.#prefetched(sid)
    if (prefetched !== undefined) return prefetched?.set ?? null
    return await this.#store.get(sid)
  }

  async save (set: TokenSet): Promise<void> {
    const sid = this.#sid()
    if (sid === undefined) throw new NoSessionError()
    this.#consume(sid)
    await this.#store.save(sid, set)
  }

  async clear (): Promise<void> {
    const sid = this.#sid()
    if (sid === undefined) return
    this.#consume(sid)
    await this.#store.delete(sid)
  }

  async getFresh (refresh: Refresher, opts?: GetFreshOptions): Promise<TokenSet> {
    const sid = this.#sid()
    if (sid === undefined) throw new UnauthenticatedError()
    return await this.#store.getFreshFrom(sid, await this.#prefetched(sid), refresh, opts)
  }

  #sid (): string | undefined {
    const session = (this.#request as unknown as { session?: { sessionId?: unknown } | null }).session
    const sid = session?.sessionId
    return typeof sid === 'string' && sid !== '' ? sid : undefined
  }

  /** Takes the prefetched set (once): undefined when there is none to use, else the opened set or null. */
  async #prefetched (sid: string): Promise<StoredTokenSet | null | undefined> {
    const prefetch = this.#prefetch(sid)
    if (prefetch === undefined) return undefined
    prefetch.consumed = true
    return await this.#store.open(sid, prefetch.sealed)
  }

  #consume (sid: string): void {
    const prefetch = this.#prefetch(sid)
    if (prefetch !== undefined) prefetch.consumed = true
  }

  #prefetch (sid: string): PrefetchedTokens | undefined {
    const session = (this.#request as unknown as { session?: Record<string, unknown> | null }).session
    const prefetch = session?.[PREFETCH_KEY]
    return prefetch instanceof PrefetchedTokens && !prefetch.consumed && prefetch.owner === this.#store && prefetch.sid === sid
      ? prefetch
      : undefined
  }
}
