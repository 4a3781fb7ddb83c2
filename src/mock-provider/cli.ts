// `npm run mock-provider`: the standalone mock AIHubMix provider. See standalone.ts for the variables.
import { main } from './standalone.js'

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
  console.error(`mock-provider: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
}
