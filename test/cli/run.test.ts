import { readFile } from 'node:fs/promises'
import t from 'tap'
import { VERSION } from '../../src/cli/run.js'
import { lines, runCli, tempDir } from './capture.js'

t.test('--version prints the package version', async (t) => {
  const pkg = JSON.parse(await readFile(new URL('../../src/cli/package.json', import.meta.url), 'utf8')) as { version: string, bin: Record<string, string> }
  t.equal(VERSION, pkg.version)
  t.same(pkg.bin, { 'aihubmix-oauth': 'aihubmix-oauth.js' }, 'without ./ (npm publish would rewrite it, with a warning)')
  const cwd = await tempDir(t)
  for (const flag of ['--version', '-v']) {
    const result = await runCli([flag], { cwd })
    t.same(result, { code: 0, stdout: `${pkg.version}\n`, stderr: '', all: `${pkg.version}\n` }, flag)
  }
})

t.test('help: the main usage and each command\'s, on stdout, exit 0', async (t) => {
  const cwd = await tempDir(t)
  for (const argv of [['--help'], ['-h'], ['help']]) {
    const result = await runCli(argv, { cwd })
    t.equal(result.code, 0)
    t.match(result.stdout, /^Usage: aihubmix-oauth <command> \[options\]\n/)
    t.match(result.stdout, /create-app {3}register an OAuth app/)
    t.match(result.stdout, /doctor {7}check the configuration/)
    t.equal(result.stderr, '')
  }
  for (const argv of [['create-app', '--help'], ['create-app', '-h'], ['help', 'create-app']]) {
    const result = await runCli(argv, { cwd })
    t.equal(result.code, 0)
    t.match(result.stdout, /^Usage: aihubmix-oauth create-app --name <name> --redirect-uri <uri> \[options\]\n/)
    for (const flag of ['--name', '--redirect-uri', '--description', '--base-url', '--env-file', '--env, -e <path>', '--force', 'AIHUBMIX_DEVELOPER_TOKEN', 'https://api.aihubmix.com']) {
      t.match(result.stdout, flag)
    }
  }
  for (const argv of [['doctor', '--help'], ['help', 'doctor']]) {
    const result = await runCli(argv, { cwd })
    t.equal(result.code, 0)
    t.match(result.stdout, /^Usage: aihubmix-oauth doctor \[options\]\n/)
    t.match(result.stdout, '--env-file <path>')
    t.match(result.stdout, '--env, -e <path>')
  }
})

t.test('no command, an unknown command or option: one error line, the usage, exit 2', async (t) => {
  const cwd = await tempDir(t)
  const cases: Array<[string[], string]> = [
    [[], 'error: a command is required'],
    [['create'], 'error: unknown command create (did you mean create-app?)'],
    [['doctr'], 'error: unknown command doctr (did you mean doctor?)'],
    [['docter'], 'error: unknown command docter (did you mean doctor?)'],
    [['serve'], 'error: unknown command serve'],
    [['Doctor'], 'error: unknown command Doctor (did you mean doctor?)'],
    [['createapp'], 'error: unknown command createapp (did you mean create-app?)'],
    [['secret_PASTED_VALUE'], 'error: unknown command'],
    [['secret_PASTED_VALUE_123'], 'error: unknown command'],
    [['--verbose'], 'error: unknown option --verbose'],
    [['--token=dev_pasted'], 'error: unknown option --token'],
    [['help', 'nope'], 'error: unknown command (help takes create-app or doctor)'],
    [['doctor', '--force'], 'error: unknown option --force'],
    [['doctor', 'extra'], 'error: unexpected argument (this command takes options only)']
  ]
  for (const [argv, message] of cases) {
    const result = await runCli(argv, { cwd })
    t.equal(result.code, 2, argv.join(' '))
    t.equal(result.stdout, '')
    t.equal(lines(result.stderr)[0], message)
    t.match(result.stderr, /\nUsage: aihubmix-oauth /)
    t.notOk(result.all.includes('secret_PASTED') || result.all.includes('dev_pasted'), 'the value is not echoed')
  }
})
