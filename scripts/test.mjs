#!/usr/bin/env node
// `npm test`'s last step: the whole suite under tap (extra arguments are passed on), with the coverage floor of
// .taprc enforced. When a test fails, the failures are printed once more at the very end, each with its file, its
// subtests' names and its diff: a CI log kept only from its tail, thousands of passing lines later, still names them.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tap = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url))
const results = fileURLToPath(new URL('../.tap/test-results/', import.meta.url))
// Test files named on the command line (ending in .ts, .mts, .js, .mjs): the replay reports those only.
const files = process.argv.slice(2).filter((arg) => /\.m?[tj]s$/.test(arg))

const started = Date.now()
const run = spawnSync(tap, ['--no-allow-incomplete-coverage', ...process.argv.slice(2)], { stdio: 'inherit', cwd: root })
if (run.error !== undefined) throw run.error
const code = run.status ?? 1
if (code !== 0) process.stdout.write(`\n# npm test failed (${run.signal === null ? `tap exited ${code}` : `tap was ended by ${run.signal}`}): ${failuresAgain()}\n`)
process.exit(code)

/** The failing assertions of this run as `tap replay` reports them, or why there are none to show. */
function failuresAgain () {
  // A tap that stopped before running anything (a bad option) left the results of an earlier run: not shown.
  if (!ranJustNow()) return 'tap ran no test (see its message above)'
  // `tap replay` reads the results tap just saved (.tap/) and reports them again, the terse reporter only the failures.
  const replay = spawnSync(tap, ['replay', '--reporter=terse', '--no-color', ...files], { encoding: 'utf8', cwd: root })
  // Kept: each failing file's block ("FAIL <file>", then each failure). Dropped: the progress counter the terse
  // reporter redraws (with terminal escapes), totals and coverage lines, all printed just above.
  const blocks = `${replay.stdout ?? ''}`.split(/\n(?= ?FAIL {1,2}\S)/).filter((block) => /^ ?FAIL {1,2}\S/.test(block))
    .map((block) => block.split('\n').filter((line) => !line.includes('\u001b') && !/^(Asserts|Suites):|^#|^=+|^(Statements|Branches|Functions|Lines) +:/.test(line)).join('\n').trim())
  if (blocks.length === 0) return 'no test failed; the coverage is under the floor set in .taprc (the summary above)'
  return `the failures again:\n\n${blocks.join('\n\n')}`
}

function ranJustNow () {
  try {
    return readdirSync(results, { recursive: true }).some((name) => statSync(results + name).mtimeMs >= started - 1000)
  } catch {
    return false
  }
}
