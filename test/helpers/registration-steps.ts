/**
 * Registration steps for tests of plugin order and double registration: each registers one plugin with minimal
 * options; `scope(...)` registers steps in a child scope; `startWith` runs steps in order and returns the error
 * app.ready() rejects with, or undefined when the app started.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import tokenStore from '@fastify-aihubmix/token-store'
import aihubmixProxy from '@fastify-aihubmix/aihubmix-proxy'
import oauthRoutes from '@fastify-aihubmix/oauth-routes'
import aihubmixMetrics from '@fastify-aihubmix/metrics'

export const SECRET = 's'.repeat(40)
const PROXY = { baseUrl: 'https://aihubmix.example', clientId: 'c', clientSecret: 'x', redirectUri: 'https://app.example/auth/callback' }
const ROUTES = { publicUrl: 'https://app.example' }

export type Step = (app: FastifyInstance) => Promise<unknown>
export const cookie: Step = async (app) => app.register(fastifyCookie)
export const tokens: Step = async (app) => app.register(tokenStore, { encryptionKeys: SECRET })
export const proxy: Step = async (app) => app.register(aihubmixProxy, PROXY)
export const session: Step = async (app) => app.register(fastifySession, { secret: SECRET, store: app.tokenStore.sessionStore, saveUninitialized: false })
export const routes: Step = async (app) => app.register(oauthRoutes, ROUTES)
export const metrics: Step = async (app) => app.register(aihubmixMetrics)
export const scope = (...steps: Step[]): Step => async (app) => app.register(async (inner) => { for (const step of steps) await step(inner) })

export async function startWith (steps: Step[]): Promise<(Error & { code?: string }) | undefined> {
  const app = Fastify()
  try {
    for (const step of steps) await step(app)
    await app.ready()
    return undefined
  } catch (err) {
    return err as Error & { code?: string }
  } finally {
    await app.close().catch(() => {})
  }
}
