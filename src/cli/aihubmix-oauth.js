#!/usr/bin/env -S node --
// The installed command. It is a committed file, not a build output, so that `npm install` links it
// even on a fresh clone, before `tsc -b` has built dist/ (npm silently skips a bin whose file is
// missing, and `npx aihubmix-oauth` would then offer to fetch a package of that name from the registry).
//
// `node --` and not `node`: Node.js (20 and 22 alike, nodejs/node#54232) reads every `--env-file` of its
// command line, the script's arguments included, and exits with `node: <file>: not found` before the script
// runs when that file does not exist (the usual case for `create-app --env-file`). It stops looking at `--`.
// (`npx aihubmix-oauth ... --env-file x` is the one case `--` cannot help: npx is a node process of its own, started
// without `--`; the README tells npx users to write `--env` or `-e`, this command's aliases that Node.js does not read.)
// `env -S` splits the line (GNU coreutils, macOS, BSD; npm's Windows shims read it too). BusyBox's env (Alpine)
// has no -S: there, `apk add coreutils`, or run `node -- node_modules/aihubmix-oauth/aihubmix-oauth.js`.
const entry = new URL('./dist/bin.js', import.meta.url)
import(entry.href).catch((err) => {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && err.url === entry.href) {
    process.stderr.write('error: aihubmix-oauth is not built yet: run `npm run build` (tsc -b) first\n')
    process.exitCode = 1
    return
  }
  throw err
})
