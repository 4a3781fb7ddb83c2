#!/usr/bin/env node
// `npm test`'s last step: the whole suite under tap (extra arguments are passed on), with the coverage floor of
// .taprc enforced. When a test fails, the failures are printed once more at the very end, each with its file, its
// subtests' names and its diff: a CI log kept only from its tail, thousands of passing lines later, still names them.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tap = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url))
const results = fileURLToPath(new URL('../.tap/test-results/', import.meta.url))
// Test files named on the command line (ending in .ts, .mts, .js, .mjs): the replay reports those only.
const files = process.argv.slice(2).filter((arg) => /\.m?[tj]s$/.test(arg))

// .taprc replaces tap's TypeScript plugin (ts-node) with the tests' own loader. tap builds its Test class from its
// plugin list and rebuilds it when the list changes, but the run that notices starts its test files the old way
// (with ts-node, slower, loaded beside ours): on a fresh install, `tap build` first.
const built = fileURLToPath(new URL('../node_modules/@tapjs/test/test-built/dist/esm/index.js', import.meta.url))
if (/export const signature = `[^`]*@tapjs\/typescript/.test(readFileSync(built, 'utf8'))) {
  const build = spawnSync(tap, ['build'], { stdio: 'inherit', cwd: root })
  if (build.status !== 0) process.exit(build.status ?? 1)
}

const started = Date.now()
// tap's output is passed on as it comes, and read on the way for what the replay cannot show: the files that failed
// at the top level (a timeout, an exit code, a signal: no failed assertion to replay) and the coverage floor's errors.
const failedFiles = []
let underFloor = false
let partial = ''
const child = spawn(tap, ['--no-allow-incomplete-coverage', ...process.argv.slice(2)], { stdio: ['inherit', 'pipe', 'inherit'], cwd: root })
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  const lines = (partial + chunk.toString('utf8')).split('\n')
  partial = lines.pop() ?? ''
  for (const line of lines) {
    const failed = /^not ok \d+ - (\S+)/.exec(line)
    if (failed !== null) failedFiles.push(failed[1])
    if (/ERROR: incomplete \w+ coverage|^# No coverage generated/.test(line)) underFloor = true
  }
})
const [status, signal] = await new Promise((resolve, reject) => {
  child.on('error', reject)
  child.on('close', (code, sig) => { resolve([code, sig]) })
})
const code = status ?? 1
if (code !== 0) process.stdout.write(`\n# npm test failed (${signal === null ? `tap exited ${code}` : `tap was ended by ${signal}`}): ${failuresAgain()}\n`)
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
  // Files that failed with no failed assertion to replay (a timeout, an exit code, a signal) are named all the same.
  const unreplayed = failedFiles.filter((file) => !blocks.some((block) => block.includes(file)))
  const parts = []
  if (blocks.length > 0) parts.push(`the failures again:\n\n${blocks.join('\n\n')}`)
  if (unreplayed.length > 0) parts.push(`failed without a failed assertion to show (a timeout, an exit code or a signal: see each one's "not ok" above): ${unreplayed.join(', ')}`)
  if (underFloor) parts.push(`${parts.length === 0 ? 'no test failed; ' : ''}the coverage is under the floor set in .taprc (the summary above)`)
  if (parts.length === 0) return 'no failure found in tap\'s output (see above)'
  return parts.join('\n\n')
}

function ranJustNow () {
  try {
    return readdirSync(results, { recursive: true }).some((name) => statSync(results + name).mtimeMs >= started - 1000)
  } catch {
    return false
  }
}
