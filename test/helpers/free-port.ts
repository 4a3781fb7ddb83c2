import { createServer } from 'node:net'

/** A TCP port free on 127.0.0.1 a moment ago (for a server whose URL must be known before it listens). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => { resolve(port) })
    })
  })
}
