import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis } from 'ioredis'
import { until } from './redis-server.js'
import { createServer } from 'node:net'

/**
 * A private Redis Cluster of three masters (no replicas) on 127.0.0.1, built from the
 * same `redis-server` binary: each node started with `--cluster-enabled yes`, the 16384
 * slots split in three with CLUSTER ADDSLOTSRANGE, the nodes joined with CLUSTER MEET,
 * then waited for until every node reports `cluster_state:ok`.
 */
export interface RedisCluster {
  readonly ports: readonly number[]
  /** A new ioredis Cluster client on it (closed by `close()`). */
  client (): Promise<Cluster>
  /** Which node (index into ports) holds a key's slot. */
  nodeOf (key: string): Promise<number>
  close (): Promise<void>
}

const SLOTS = 16384

export async function startRedisCluster (binary: string, nodes = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'aihubmix-cluster-'))
  const children: ChildProcess[] = []
  const clients: Array<Redis | Cluster> = []
  const ports: number[] = []
  const close = async (): Promise<void> => {
    await Promise.all(clients.map(async (c) => { await c.quit().catch(() => c.disconnect()) }))
    await Promise.all(children.map(async (c) => {
      if (c.exitCode !== null) return
      const exited = new Promise((resolve) => c.once('exit', resolve))
      c.kill('SIGTERM')
      await exited
    }))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < nodes; i++) ports.push(await freeNodePort(ports))
    for (const port of ports) {
      children.push(spawn(binary, [
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '2000', '--dir', dir, '--logfile', ''
      ], { stdio: 'ignore' }))
    }
    const admins = ports.map((port) => new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 }))
    for (const a of admins) a.on('error', () => {}) // refused until the node is up: retried by `until`
    clients.push(...admins)
    await until(async () => (await Promise.all(admins.map(async (a) => {
      try {
        if (a.status === 'wait') await a.connect()
        return await a.ping() === 'PONG'
      } catch {
        return false
      }
    }))).every(Boolean), 'the cluster nodes to start', { timeoutMs: 15_000, everyMs: 100 })
    const per = Math.ceil(SLOTS / nodes)
    for (let i = 0; i < nodes; i++) {
      await admins[i]?.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(SLOTS, (i + 1) * per) - 1))
    }
    for (const port of ports.slice(1)) await admins[0]?.call('CLUSTER', 'MEET', '127.0.0.1', String(port))
    await until(async () => (await Promise.all(admins.map(async (a) => String(await a.call('CLUSTER', 'INFO'))))).every((info) => info.includes('cluster_state:ok')), 'cluster_state:ok on every node', { timeoutMs: 15_000, everyMs: 100 })
    const admin = admins[0] as Redis
    return {
      ports,
      async client () {
        const cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 1 } })
        clients.push(cluster)
        await new Promise<void>((resolve, reject) => {
          cluster.once('ready', resolve)
          cluster.once('error', reject)
        })
        return cluster
      },
      async nodeOf (key) {
        const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', key))
        return Math.floor(slot / per)
      },
      close
    }
  } catch (err) {
    await close()
    throw err
  }
}

function portFree (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * A port for a cluster node: it and its cluster bus port (port + 10000) both free, so
 * picked below the OS's ephemeral range (where port + 10000 could pass 65535).
 */
async function freeNodePort (taken: readonly number[]): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 10000)
    if (taken.includes(port)) continue
    if (await portFree(port) && await portFree(port + 10000)) return port
  }
  throw new Error('no free port pair for a cluster node')
}
