import { createServer } from 'node:net'

// Ports handed out for servers whose URL must be known before they listen. A port the kernel picks (listen on 0) is
// one of its ephemeral ports, the range every outgoing connection of every process takes its local port from: by the
// time the server listens, a connection (another test's request to Redis, to a mock provider) may hold it, and the
// listen fails with EADDRINUSE. These are taken below that range (Linux's starts at 32768, macOS' and Windows' at
// 49152), where only a server that asks for the port by number can be, and checked free by listening on them.
const LOWEST = 20000
const HIGHEST = 32767

/** A TCP port free on 127.0.0.1 a moment ago, outside the kernel's ephemeral range (see above). */
export async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST + 1))
    if (await listenable(port)) return port
  }
  throw new Error(`no free port found between ${LOWEST} and ${HIGHEST} on 127.0.0.1 in 50 tries`)
}

function listenable (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen(port, '127.0.0.1', () => {
      server.close(() => { resolve(true) })
    })
  })
}
