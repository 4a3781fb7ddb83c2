#!/usr/bin/env node
import { run, type CliIo } from './run.js'

/**
 * `process.stdout` / `process.stderr` as the command writes them. A reader that closes its end early
 * (`aihubmix-oauth doctor | head -3`) is the reader's choice, not a failure: the write that finds the pipe
 * closed fails with EPIPE, emitted as an 'error' event that would otherwise crash the process with a stack
 * trace. It is swallowed, later writes to that stream are dropped, and the command finishes with its own
 * exit status (the network checks already under way complete; nothing more is shown).
 */
function quietOnClose (stream: NodeJS.WriteStream, name: string): CliIo['stdout'] {
  let closed = false
  stream.on('error', (err: NodeJS.ErrnoException) => {
    closed = true
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return
    // Another failure of where the output goes (a full disk): the command did not say what it had to.
    process.exitCode = 1
    if (name === 'stdout' && !process.stderr.destroyed) process.stderr.write(`error: cannot write to stdout (${err.code ?? 'unknown error'})\n`)
  })
  return {
    write: (text: string) => closed || stream.destroyed ? false : stream.write(text)
  }
}

run(process.argv.slice(2), {
  env: process.env,
  stdout: quietOnClose(process.stdout, 'stdout'),
  stderr: quietOnClose(process.stderr, 'stderr'),
  cwd: process.cwd()
}).then((code) => {
  if (process.exitCode === undefined || process.exitCode === 0) process.exitCode = code
}, () => {
  process.stderr.write('error: unexpected failure\n')
  process.exitCode = 1
})
