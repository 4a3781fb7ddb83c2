// `npm run mock-provider` and the `aihubmix-mock-provider` command: the standalone mock AIHubMix provider. See
// standalone.ts for the variables. It takes no option but -h / --help: everything else is an environment variable,
// and an unknown argument stops it (exit 2) rather than starting a server the caller thought configured otherwise.
import { DEFAULT_DEMO_REDIRECT_URI, DEFAULT_STANDALONE_HOST, DEFAULT_STANDALONE_PORT, main } from './standalone.js'

const PROGRAM = 'aihubmix-mock-provider'

const USAGE = `Usage: ${PROGRAM} [-h | --help]

A mock AIHubMix OAuth2 provider for local development and tests (not for production).
Configured by environment variables only; SIGINT or SIGTERM stops it.

Environment:
  PORT, HOST              where it listens (default ${DEFAULT_STANDALONE_PORT}, ${DEFAULT_STANDALONE_HOST}; PORT=0: any free port)
  MOCK_CONTROL_API=1      the control API under /__mock (apps, faults, switches)
  MOCK_CLIENT_ID          the demo app's client id (generated when unset)
  MOCK_CLIENT_SECRET      the demo app's client secret (generated when unset)
  MOCK_REDIRECT_URI       the demo app's redirect URI (default ${DEFAULT_DEMO_REDIRECT_URI})
  MOCK_PRINT_SECRET=1|0   print the demo app's secret and the developer token
                          (default 1 for ${PROGRAM}, 0 for npm run mock-provider)
  MOCK_LOG=1              request log, query strings redacted

Options:
  -h, --help              show this help

Exit status: 0 stopped by a signal or --help, 1 a bad variable or a failed start, 2 a bad argument.
`

const VALID = '-h, --help; the rest is set by environment variables, e.g. PORT=4000, which --help lists'

/** `help`, or undefined to start, or the one line that refuses the arguments. Values are never echoed. */
function readArgs (args: string[]): 'help' | { refused: string } | undefined {
  if (args.length === 0) return undefined
  if (args.some((arg) => arg === '-h' || arg === '--help')) return 'help'
  const first = args[0] as string
  if (!first.startsWith('-') || first === '-' || first === '--') return { refused: `unexpected argument (valid: ${VALID})` }
  const name = /^--?[A-Za-z0-9][A-Za-z0-9-]{0,40}/.exec(first)?.[0]
  return { refused: `unknown option${name === undefined ? '' : ` ${name}`} (valid: ${VALID})` }
}

// A reader that closes the pipe early (`${PROGRAM} --help | head -1`) is no failure.
process.stdout.on('error', () => {})

const verdict = readArgs(process.argv.slice(2))
if (verdict === 'help') {
  process.stdout.write(USAGE)
} else if (verdict !== undefined) {
  process.stderr.write(`${PROGRAM}: ${verdict.refused}\n`)
  process.exitCode = 2
} else {
  try {
    const provider = await main()
    const stop = (): void => {
      provider.close().then(
        () => { process.exitCode = 0 },
        (err: unknown) => {
          console.error(`mock-provider: close failed: ${err instanceof Error ? err.message : String(err)}`)
          process.exitCode = 1
        }
      )
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  } catch (err) {
    const inUse = (err as { code?: unknown }).code === 'EADDRINUSE'
    // The port taken: say which variable moves it.
    console.error(`mock-provider: ${err instanceof Error ? err.message : String(err)}${inUse ? ' (set PORT to a free port, or PORT=0 for any free port)' : ''}`)
    process.exitCode = 1
  }
}
