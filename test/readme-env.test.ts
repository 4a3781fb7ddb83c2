import t from 'tap'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { join, relative } from 'node:path'
import { repoRoot } from './helpers/workspaces.js'

// A README snippet that reads `process.env.X!` fails late, and without the variable's name: an app copied from it
// stops with a plugin's option error (`clientId: expected a string`) or a TypeError, not "set X in the environment".
// Every README's code reads its variables through a check that names them.

const readmes = [
  join(repoRoot, 'README.md'),
  join(repoRoot, 'example', 'README.md'),
  ...readdirSync(join(repoRoot, 'src'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(repoRoot, 'src', entry.name, 'README.md'))
].filter((file) => existsSync(file))

t.ok(readmes.length >= 7, 'the root README and every package\'s')
for (const file of readmes) {
  const blocks = [...readFileSync(file, 'utf8').matchAll(/```(?:ts|js|typescript|javascript)\n([\s\S]*?)```/g)].map((m) => m[1] ?? '')
  t.same(blocks.flatMap((code) => code.match(/process\.env(?:\.[A-Za-z_]+|\[[^\]]+\])!/g) ?? []), [], `${relative(repoRoot, file)}: no process.env.X! in its code`)
}
