#!/usr/bin/env node
// `npx aihubmix-mock-provider`: the standalone mock AIHubMix provider, for a local app outside this repository.
// Unlike `npm run mock-provider`, it prints what such an app needs to sign in against it: the demo app's client
// secret and the developer token `aihubmix-oauth create-app` takes (mock values, good for this mock only; set
// MOCK_PRINT_SECRET=0 to keep them off the screen). A committed file, not a build output, so that npm links it
// before dist/ is built (see src/cli/aihubmix-oauth.js).
process.env.MOCK_PRINT_SECRET ??= '1'
const entry = new URL('./dist/cli.js', import.meta.url)
import(entry.href).catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && err.url === entry.href) {
    process.stderr.write('error: @fastify-aihubmix/mock-provider is not built yet: run `npm run build` (tsc -b) first\n')
    process.exitCode = 1
    return
  }
  throw err
})
