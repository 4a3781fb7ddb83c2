#!/usr/bin/env node
import { run } from './run.js'

run(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  cwd: process.cwd()
}).then((code) => {
  process.exitCode = code
}, () => {
  process.stderr.write('error: unexpected failure\n')
  process.exitCode = 1
})
