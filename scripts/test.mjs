#!/usr/bin/env node
// `npm test`'s last step: the whole suite under tap (extra arguments are passed on), with the coverage floor of
// .taprc enforced. When anything fails, the failures are printed once more at the very end, each with its file, its
// subtests' names and its diff: a CI log kept only from its tail, thousands of passing lines later, still names them.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

// Test files named on the command line: the replay reports those (tap replays every test file otherwise).
const files = process.argv.slice(2).filter((arg) => !arg.startsWith('-'))
const tap = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url))
const run = spawnSync(tap, ['--no-allow-incomplete-coverage', ...process.argv.slice(2)], { stdio: 'inherit' })
if (run.error !== undefined) throw run.error
const code = run.status ?? 1
if (code !== 0) {
  // `tap replay` reads the run tap just saved (.tap/) and reports it again, here with only the failures and totals.
  const replay = spawnSync(tap, ['replay', '--reporter=terse', '--no-color', ...files], { encoding: 'utf8' })
  // Kept: each failure and the totals. Dropped: the progress counter the terse reporter redraws (with terminal
  // escapes) and the coverage summary, printed in full just above.
  const failures = `${replay.stdout ?? ''}`.replace(/^=+ Coverage summary =+\n[^]*?\n=+\n/m, '').split('\n')
    .filter((line) => !line.includes('\u001b') && !/^(Asserts|Suites):/.test(line)).join('\n').replace(/\n{3,}/g, '\n\n')
  const said = failures.trim() === '' ? 'no test failed: the coverage is under the floor set in .taprc (the summary above)' : failures.trim()
  process.stdout.write(`\n# npm test failed (tap exited ${code}); the failures again:\n${said}\n`)
}
process.exit(code)
