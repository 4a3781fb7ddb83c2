// Prints the top frames of a V8 CPU profile (written by `--cpu-prof`, e.g. with
// BENCH_PROFILE=project-memory npm run bench): self time and inclusive time per function.
//
//   node bench/top-frames.mjs bench/results/profiles/project-memory/*.cpuprofile [--top 30] [--callers NAME]
//
// --callers NAME: instead, who calls the functions whose name contains NAME (the call
// chains below them, 8 frames up, heaviest first).
// --by-package: also self time per package (node_modules/<name>, src/<package>, node
// internals, native code), to compare two profiles part by part.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

// Piped into `head`, stdout closes early: that is the reader's choice, not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})

const args = process.argv.slice(2)
const option = (flag) => {
  const i = args.indexOf(flag)
  return i === -1 ? undefined : args[i + 1]
}
const top = Number(option('--top') ?? 30)
const callersOf = option('--callers')
const files = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'))
if (files.length === 0) {
  process.stderr.write('usage: node bench/top-frames.mjs <file.cpuprofile>... [--top N]\n')
  process.exit(2)
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const hits = new Map()
  for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  // Percentages of the samples in which the process was busy (idle time is left out).
  const idle = profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((sum, n) => sum + (hits.get(n.id) ?? 0), 0)
  const total = profile.samples.length - idle

  const name = (n) => {
    const f = n.callFrame
    const where = f.url === '' ? '' : ` ${relative(process.cwd(), f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}`
    return `${f.functionName || '(anonymous)'}${where}`
  }
  if (callersOf !== undefined) {
    const chains = new Map()
    let matched = 0
    for (const [id, count] of hits) {
      // The innermost frame on the stack whose name matches, and 8 callers above it.
      let cur = id
      while (cur !== undefined && !name(byId.get(cur)).includes(callersOf)) cur = parent.get(cur)
      if (cur === undefined) continue
      matched += count
      const chain = []
      for (let up = cur; up !== undefined && chain.length < 9; up = parent.get(up)) chain.push(name(byId.get(up)))
      const key = chain.join('\n        < ')
      chains.set(key, (chains.get(key) ?? 0) + count)
    }
    process.stdout.write(`${file}: ${matched} of ${total} busy samples under "${callersOf}"\n`)
    for (const [k, n] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${(100 * n / total).toFixed(1).padStart(5)}%  ${k}\n`)
    }
    continue
  }
  const self = new Map()
  const inclusive = new Map()
  for (const [id, count] of hits) {
    if (byId.get(id).callFrame.functionName === '(idle)') continue
    const key = name(byId.get(id))
    self.set(key, (self.get(key) ?? 0) + count)
    // Each function once per sample, however deep it recurses.
    const seen = new Set()
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = name(byId.get(cur))
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + count)
    }
  }
  const pct = (n) => `${(100 * n / total).toFixed(1).padStart(5)}%`
  const print = (title, map) => {
    process.stdout.write(`\n${title}\n`)
    for (const [k, n] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(n)}  ${k}\n`)
  }
  process.stdout.write(`${file}: ${total} busy samples (of ${profile.samples.length})\n`)
  print('self time', self)
  print('inclusive time', inclusive)
  if (args.includes('--by-package')) {
    const byPackage = new Map()
    for (const [id, count] of hits) {
      const f = byId.get(id).callFrame
      if (f.functionName === '(idle)') continue
      const key = packageOf(f)
      byPackage.set(key, (byPackage.get(key) ?? 0) + count)
    }
    print('self time per package', byPackage)
  }
}

function packageOf (frame) {
  const url = frame.url.replace(/^file:\/\//, '')
  if (url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)'
  if (url.startsWith('node:')) return '(node internals)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const src = /\/(src|example|bench)\/([^/]+)/.exec(url)
  return src === null ? relative(process.cwd(), url) : `${src[1]}/${src[2]}`
}
