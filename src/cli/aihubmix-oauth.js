#!/usr/bin/env node
// The installed command. It is a committed file, not a build output, so that `npm install` links it
// even on a fresh clone, before `tsc -b` has built dist/ (npm silently skips a bin whose file is
// missing, and `npx aihubmix-oauth` would then offer to fetch a package of that name from the registry).
import './dist/bin.js'
