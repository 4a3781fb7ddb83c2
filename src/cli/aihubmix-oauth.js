#!/usr/bin/env node
// The installed command. It is a committed file, not a build output, so that `npm install` links it
// even on a fresh clone, before `tsc -b` has built dist/ (npm silently skips a bin whose file is
// missing, and `npx aihubmix-oauth` would then offer to fetch a package of that name from the registry).
const entry = new URL('./dist/bin.js', import.meta.url)
import(entry.href).catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && err.url === entry.href) {
    process.stderr.write('error: aihubmix-oauth is not built yet: run `npm run build` (tsc -b) first\n')
    process.exitCode = 1
    return
  }
  throw err
})
