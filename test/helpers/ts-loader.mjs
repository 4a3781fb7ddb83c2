// The tests' TypeScript loader: `node --import=./test/helpers/ts-loader.mjs` (set in .taprc) runs the .ts test files,
// test helpers and, through the "@fastify-aihubmix/source" export condition, the packages' .ts sources as they are.
//
// Why not tap's own TypeScript plugin (ts-node's ESM loader)? Node 20 runs module hooks on a thread of their own and
// asks it about every module a test loads: tap's, Fastify's, ours. ts-node answered each of those with its own
// resolution steps and loaded TypeScript (9 MB of JavaScript) into every test process: a test file that loads the
// example app took 3.1 s of CPU under ts-node and 1.7 s under this loader before its first test ran, and the 41
// files of test/oauth-routes 251 s against 183 s (2026-12-02). This loader leaves every module that is not ours to
// Node at once, and loads TypeScript only to transpile a file it has not transpiled before (ts-hooks.mjs).
//
// What it does, and nothing else:
// - resolve: a relative `./x.js` written in a .ts file (as TypeScript's NodeNext resolution wants it) is the `./x.ts`
//   beside it when there is no `./x.js`;
// - load: a `.ts` file outside node_modules is transpiled (types erased, nothing checked: `npm test` type-checks the
//   tests and the sources with tsc first) and run as an ES module, with an inline source map so that stack traces
//   and coverage point into the .ts file.
import { register } from 'node:module'

register('./ts-hooks.mjs', import.meta.url)
