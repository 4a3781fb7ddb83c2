// Helpers of the command line's tests (not a test file: only *.test.ts are run).
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Dispatcher } from 'undici'
import { ConfigError, readConfig, run, type CliIo } from 'aihubmix-oauth'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface Captured {
  code: number
  stdout: string
  stderr: string
  /** stdout + stderr */
  all: string
}

/** Runs the command line in process with captured output. */
export async function runCli (argv: string[], opts: { env?: Record<string, string | undefined>, cwd: string, dispatcher?: Dispatcher }): Promise<Captured> {
  const out: string[] = []
  const err: string[] = []
  const io: CliIo = {
    env: { ...opts.env },
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    cwd: opts.cwd,
    ...(opts.dispatcher === undefined ? {} : { dispatcher: opts.dispatcher })
  }
  const code = await run(argv, io)
  const stdout = out.join('')
  const stderr = err.join('')
  return { code, stdout, stderr, all: stdout + stderr }
}

/** The command npm installed in node_modules/.bin (it runs the built dist/: `tsc -b` first). */
export const INSTALLED_BIN = fileURLToPath(new URL('../../node_modules/.bin/aihubmix-oauth', import.meta.url))

/**
 * Runs the installed command as a user would (its shebang, a process of its own), with `env` and PATH only as its
 * environment.
 */
export async function runInstalled (argv: string[], opts: { env?: Record<string, string>, cwd: string }): Promise<Captured> {
  return await new Promise((resolve) => {
    execFile(INSTALLED_BIN, argv, { env: { PATH: process.env.PATH ?? '', ...opts.env }, cwd: opts.cwd }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? -1, stdout, stderr, all: stdout + stderr })
    })
  })
}

/** A fresh directory, removed at teardown. */
export async function tempDir (t: Teardown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'aihubmix-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A 127.0.0.1 port nothing listens on (it was open a moment ago). */
export async function closedPort (): Promise<number> {
  return await new Promise<number>((resolve) => {
    const server = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}

export interface Recorded { method: string, url: string, headers: IncomingMessage['headers'], body: string }

/** A real HTTP server on port 0 answering with `handler`; records every request. Closed at teardown. */
export async function startHttpServer (
  t: Teardown,
  handler: (req: Recorded, res: ServerResponse) => void
): Promise<{ url: string, requests: Recorded[] }> {
  const requests: Recorded[] = []
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }
      requests.push(recorded)
      handler(recorded, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => { resolve() })
  }))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, requests }
}

/** A raw TCP server on port 0; `onData` gets every chunk with its socket. Closed at teardown. */
export async function startTcpServer (
  t: Teardown,
  onData: (chunk: string, socket: Socket, received: string) => void
): Promise<{ port: number, received: () => string }> {
  let received = ''
  const sockets = new Set<Socket>()
  const server = createNetServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      received += chunk
      onData(chunk, socket, received)
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => { resolve() })
  }))
  const { port } = server.address() as { port: number }
  return { port, received: () => received }
}

/**
 * A stand-in Redis on port 0 that answers each command (a RESP array of bulk strings) with `answer(args)`, a whole
 * RESP reply, in order; `commands()` lists the commands received. Closed at teardown.
 */
export async function startFakeRedis (t: Teardown, answer: (args: string[]) => string): Promise<{ port: number, commands: () => string[][] }> {
  const commands: string[][] = []
  let pending = ''
  const server = await startTcpServer(t, (chunk, socket) => {
    pending += chunk
    for (;;) {
      const parsed = /^\*(\d+)\r\n/.exec(pending)
      if (parsed === null) return
      let at = parsed[0].length
      const args: string[] = []
      for (let i = 0; i < Number(parsed[1]); i++) {
        const head = /^\$(\d+)\r\n/.exec(pending.slice(at))
        if (head === null) return
        const length = Number(head[1])
        if (pending.length < at + head[0].length + length + 2) return
        args.push(pending.slice(at + head[0].length, at + head[0].length + length))
        at += head[0].length + length + 2
      }
      pending = pending.slice(at)
      commands.push(args)
      socket.write(answer(args))
    }
  })
  return { port: server.port, commands: () => commands }
}

/** Every line of `text`, without the empty last one. */
export function lines (text: string): string[] {
  return text.split('\n').filter((l, i, all) => !(l === '' && i === all.length - 1))
}

/** The ConfigError readConfig refuses `env` with; throws when it accepts it (or fails otherwise). */
export function configRefusal (env: Record<string, string>): ConfigError {
  try {
    readConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error(`accepted: ${JSON.stringify(env)}`)
}
