import { pathToFileURL } from 'node:url'

/**
 * The `node` arguments that run a .ts file from this repository as the tests run (.taprc): the packages' TypeScript
 * sources through the "@fastify-aihubmix/source" export condition, loaded by the tests' TypeScript loader. For a
 * child process a test starts: `spawn(process.execPath, [...SOURCE_NODE_ARGS, file, ...args])`.
 */
export const SOURCE_NODE_ARGS: readonly string[] = [
  '--conditions=@fastify-aihubmix/source',
  `--import=${pathToFileURL(new URL('./ts-loader.mjs', import.meta.url).pathname).href}`
]
