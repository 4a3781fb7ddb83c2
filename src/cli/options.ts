import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { Dispatcher } from 'undici'
import { CliInvalidArgumentError, CliInvalidOptionError } from './errors.js'
import { firstOptionProblem } from './option-errors.js'
import {
  baseUrlProblem,
  descriptionProblem,
  developerTokenProblem,
  nameProblem,
  normalizeBaseUrl,
  redirectUriProblem
} from './validate.js'

/**
 * The provider's API origin: the one host the provider's guide names (for app creation, `/api/oauth_apps`); its
 * OAuth2 endpoints (`/api/oauth2/*`) are shown on a placeholder host, under the same `/api/` prefix, so the same
 * origin is what `create-app` writes as `AIHUBMIX_BASE_URL` and what the README suggests for it.
 */
export const DEFAULT_BASE_URL = 'https://api.aihubmix.com'
/** The variable the example server reads the provider's origin from; `create-app --base-url` writes it. */
export const BASE_URL_VARIABLE = 'AIHUBMIX_BASE_URL'
/** Where `create-app` writes and `doctor` reads (relative to the working directory). */
export const DEFAULT_ENV_FILE = '.env'
/** Whole-call deadline of one request (provider or Redis). */
export const DEFAULT_TIMEOUT_MS = 10_000
/** Answers larger than this are refused without being read further. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** The variable `create-app` reads the developer token from (never from an argument). */
export const DEVELOPER_TOKEN_VARIABLE = 'AIHUBMIX_DEVELOPER_TOKEN'
/** The keys `create-app` writes. */
export const ENV_KEYS = ['AIHUBMIX_CLIENT_ID', 'AIHUBMIX_CLIENT_SECRET', 'AIHUBMIX_REDIRECT_URI'] as const

const Timeout = Type.Integer({ minimum: 1, maximum: 600_000 })

export const CreateAppOptionsSchema = Type.Object({
  developerToken: Type.String({ minLength: 1, maxLength: 4096 }),
  name: Type.String(),
  redirectUri: Type.String(),
  description: Type.Optional(Type.String()),
  baseUrl: Type.Optional(Type.String({ minLength: 1 })),
  timeoutMs: Type.Optional(Timeout),
  maxBodyBytes: Type.Optional(Type.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024 }))
}, { additionalProperties: false })

/**
 * `T` (a schema's `Static`) with `| undefined` on every optional property, nested ones too, as they are accepted at
 * run time: under `exactOptionalPropertyTypes`, `description: env.DESCRIPTION` compiles. Each property keeps its documentation (a
 * homomorphic mapped type).
 */
type UndefinedWhenOptional<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends readonly unknown[]
    ? T
    : T extends object
      ? { [K in keyof T]: {} extends Pick<T, K> ? UndefinedWhenOptional<T[K]> | undefined : UndefinedWhenOptional<T[K]> }
      : T

export type CreateAppOptions = UndefinedWhenOptional<Static<typeof CreateAppOptionsSchema>> & {
  /** An undici dispatcher to use instead of the one created (and closed) per call. */
  dispatcher?: Dispatcher | undefined
}

export interface ResolvedCreateAppOptions {
  developerToken: string
  /** Trimmed. */
  name: string
  redirectUri: string
  description: string
  /** Origin plus optional path prefix, no trailing slash. */
  baseUrl: string
  timeoutMs: number
  maxBodyBytes: number
  dispatcher: Dispatcher | undefined
}

export const DoctorOptionsSchema = Type.Object({
  /** The process environment (the env file only fills what it leaves unset). */
  env: Type.Record(Type.String(), Type.Union([Type.String(), Type.Undefined()])),
  /**
   * The env file to read; default `ENV_FILE` from `env`, else `.env`; resolved against `cwd`. A file named here that
   * does not exist is the report's one line, a failure (the default or ENV_FILE's missing: a warning, checks go on).
   */
  envFile: Type.Optional(Type.String({ minLength: 1 })),
  cwd: Type.Optional(Type.String({ minLength: 1 })),
  timeoutMs: Type.Optional(Timeout)
}, { additionalProperties: false })

export type DoctorOptions = UndefinedWhenOptional<Static<typeof DoctorOptionsSchema>> & {
  dispatcher?: Dispatcher | undefined
}

export interface ResolvedDoctorOptions {
  env: Record<string, string | undefined>
  envFile: string
  cwd: string
  timeoutMs: number
  dispatcher: Dispatcher | undefined
}

const checkCreateApp = TypeCompiler.Compile(CreateAppOptionsSchema)
const checkDoctor = TypeCompiler.Compile(DoctorOptionsSchema)

function checkShape<T extends TSchema> (check: TypeCheck<T>, value: unknown): void {
  if (value === null || typeof value !== 'object') throw new CliInvalidOptionError('"(options)": must be an object')
  const problem = check.Check(value) ? undefined : firstOptionProblem(check.Errors(value))
  if (problem !== undefined) throw new CliInvalidOptionError(`"${problem[0]}": ${problem[1]}`)
}

function refuse (name: string, problem: string | null): void {
  if (problem !== null) throw new CliInvalidArgumentError(name, problem)
}

/**
 * Validates `createApp()` options: the shape (CliInvalidOptionError naming the
 * path), then the rules a request must pass (CliInvalidArgumentError naming the
 * option). Returns a new object with defaults; never mutates the input.
 */
export function resolveCreateAppOptions (input: CreateAppOptions): ResolvedCreateAppOptions {
  const { dispatcher, ...plain } = (input ?? {}) as CreateAppOptions
  checkShape(checkCreateApp, input === null || typeof input !== 'object' ? input : plain)
  refuse('developerToken', developerTokenProblem(plain.developerToken))
  refuse('name', nameProblem(plain.name))
  refuse('redirectUri', redirectUriProblem(plain.redirectUri))
  const description = plain.description ?? ''
  refuse('description', descriptionProblem(description))
  const baseUrl = plain.baseUrl ?? DEFAULT_BASE_URL
  refuse('baseUrl', baseUrlProblem(baseUrl))
  return {
    developerToken: plain.developerToken,
    name: plain.name.trim(),
    redirectUri: plain.redirectUri,
    description,
    baseUrl: normalizeBaseUrl(baseUrl),
    timeoutMs: plain.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxBodyBytes: plain.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    dispatcher
  }
}

/** Validates `doctor()` options; returns a new object with defaults (the env is copied). */
export function resolveDoctorOptions (input: DoctorOptions): ResolvedDoctorOptions {
  const { dispatcher, ...plain } = (input ?? {}) as DoctorOptions
  checkShape(checkDoctor, input === null || typeof input !== 'object' ? input : plain)
  const env = { ...plain.env }
  return {
    env,
    envFile: plain.envFile ?? (env.ENV_FILE !== undefined && env.ENV_FILE !== '' ? env.ENV_FILE : DEFAULT_ENV_FILE),
    cwd: plain.cwd ?? process.cwd(),
    timeoutMs: plain.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    dispatcher
  }
}
