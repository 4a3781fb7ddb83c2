import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'

/**
 * A TCP relay on 127.0.0.1 in front of a real server (Redis), for network faults that hit ONE client while the
 * others keep their direct connection:
 * - `holdReplies()`: the server still gets and executes every command, but its answers are thrown away (replies
 *   lost on the way);
 * - `cut()`: every relayed connection is closed (answers held back are dropped) and new ones are refused;
 * - `restore()`: accepts and relays again, on the same port;
 * - `moveTo(port)`: new connections go to another server, those open stay where they are (a DNS name, or a managed
 *   Redis' endpoint, that leads to the new primary after a failover);
 * - `freeze()`: the connections open now stay open but pass nothing more, either way, and are never closed (a NAT or
 *   firewall that dropped them, a host gone); new connections are relayed as usual;
 * - `holdNew()`: connections made from now on are accepted, but what their clients send is held back until
 *   `releaseNew()` (a server slow to take a new connection on).
 */
export interface TcpRelay {
  readonly port: number
  holdReplies (): void
  freeze (): void
  holdNew (): void
  releaseNew (): void
  cut (): Promise<void>
  restore (): Promise<void>
  moveTo (port: number): void
  close (): Promise<void>
}

export async function startTcpRelay (targetHost: string, targetPort: number): Promise<TcpRelay> {
  const sockets = new Set<Socket>()
  let holding = false
  let target = targetPort
  const frozen = new WeakSet<Socket>()
  let heldNew: Array<() => void> | undefined

  const relay = (client: Socket): void => {
    const upstream = connect(target, targetHost)
    sockets.add(client)
    sockets.add(upstream)
    let held: Buffer[] | undefined
    if (heldNew !== undefined) {
      const chunks: Buffer[] = held = []
      heldNew.push(() => {
        held = undefined
        for (const chunk of chunks) upstream.write(chunk)
      })
    }
    client.on('data', (chunk: Buffer) => {
      if (held !== undefined) held.push(chunk)
      else if (!frozen.has(client)) upstream.write(chunk)
    })
    upstream.on('data', (chunk) => { if (!holding && !frozen.has(client)) client.write(chunk) })
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', drop)
    upstream.on('error', drop)
    client.on('close', drop)
    upstream.on('close', drop)
  }

  let server: Server = createServer(relay)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  let listening = true

  const cut = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy()
    sockets.clear()
    if (!listening) return
    listening = false
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  return {
    port,
    holdReplies () { holding = true },
    freeze () { for (const socket of sockets) frozen.add(socket) },
    holdNew () { heldNew ??= [] },
    releaseNew () {
      const release = heldNew ?? []
      heldNew = undefined
      for (const go of release) go()
    },
    moveTo (port) { target = port },
    cut,
    async restore () {
      holding = false
      if (listening) return
      server = createServer(relay)
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
      listening = true
    },
    close: cut
  }
}
