import { ConfigError } from 'aihubmix-oauth'

/**
 * A failed listen, said in the words of the variables that chose where: `listen EADDRINUSE ...` or `getaddrinfo
 * ENOTFOUND ...` named no variable, and `aihubmix-oauth doctor` cannot know in advance what this machine refuses.
 * Anything else is returned as it is.
 */
export function listenError (err: unknown, vars: { host: string, port: string }, at: { host: string, port: number }): unknown {
  const code = (err as { code?: unknown } | null)?.code
  const host = `${vars.host}=${at.host}`
  const port = `${vars.port}=${at.port}`
  switch (code) {
    case 'EADDRINUSE':
      return new ConfigError(vars.port, `${at.port} is in use on ${at.host} (another server, or another instance of this one?): stop it, or choose another ${vars.port}`)
    case 'EACCES':
      return new ConfigError(vars.port, `${at.port} needs privileges this process lacks (ports below 1024): choose a port of 1024 or more, or put a proxy in front`)
    case 'EADDRNOTAVAIL':
      return new ConfigError(vars.host, `${at.host} is not an address of this machine (${port}): use 127.0.0.1, 0.0.0.0 (every interface), or an address it has`)
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return new ConfigError(vars.host, `${at.host} does not resolve to an address of this machine (${host}): use 127.0.0.1, 0.0.0.0, or a name this machine answers to`)
    default:
      return err
  }
}
