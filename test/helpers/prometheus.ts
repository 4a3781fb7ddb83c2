/** One sample of a Prometheus text exposition: `name{labels} value`. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** The samples of a Prometheus text exposition (comments and blank lines skipped). */
export function parseSamples (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return samples
}

/**
 * The series of one metric as `{ 'label=value,label=value': value }` (labels in name order; `''` for none),
 * optionally only those whose labels include `where`.
 */
export function series (samples: Sample[], name: string, where: Record<string, string> = {}): Record<string, number> {
  const out: Record<string, number> = {}
  for (const s of samples) {
    if (s.name !== name) continue
    if (Object.entries(where).some(([k, v]) => s.labels[k] !== v)) continue
    const key = Object.keys(s.labels).filter((k) => !(k in where)).sort().map((k) => `${k}=${s.labels[k] as string}`).join(',')
    out[key] = s.value
  }
  return out
}
