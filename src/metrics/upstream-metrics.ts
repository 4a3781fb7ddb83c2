import type { Metric, Registry } from 'prom-client'

/** One endpoint's series: requests by status, and the duration histogram (counts per bucket, not cumulative). */
interface EndpointSeries {
  readonly endpoint: string
  readonly byStatus: Map<string, number>
  readonly buckets: number[]
  sum: number
  count: number
}

/** A sample as prom-client's Registry formats it (`getMetricsAsString`); `sharedLabels` come after `labels`. */
interface Sample {
  value: number
  labels: Record<string, string | number>
  sharedLabels?: Record<string, string> | undefined
  metricName?: string | undefined
}

/**
 * `aihubmix_upstream_requests_total{endpoint,status}` and `aihubmix_upstream_request_duration_seconds{endpoint}`,
 * the two metrics that move on every proxied request.
 *
 * prom-client's own Counter and Histogram build label objects, hash them into strings and turn float bucket
 * bounds into property names on every observation; under load that garbage cost the server more than the rest of
 * the metrics together. Here an observation is a Map lookup and a few additions on numbers that already exist,
 * and the samples are built only when the registry is scraped, in the shape prom-client's Registry reads from its
 * own metrics (`name`, `help`, `type`, `aggregator`, `get()`), so the text is the same as theirs.
 */
export class UpstreamMetrics {
  readonly #bounds: readonly number[]
  readonly #durationName: string
  readonly #series = new Map<string, EndpointSeries>()

  constructor (registry: Registry, names: { requests: string, duration: string }, bounds: readonly number[], endpoints: Iterable<string>) {
    this.#bounds = bounds
    this.#durationName = names.duration
    // The histogram's series of the known endpoints exist from the start, at 0.
    for (const endpoint of endpoints) this.#seriesOf(endpoint)
    const requests = {
      name: names.requests,
      help: 'HTTP exchanges with the provider, by endpoint and status: the HTTP status, or timeout, aborted, error when there was no answer.',
      type: 'counter',
      aggregator: 'sum',
      get: async () => ({ name: requests.name, help: requests.help, type: requests.type, aggregator: requests.aggregator, values: this.#requestSamples() }),
      reset: () => { this.#reset() }
    }
    const duration = {
      name: names.duration,
      help: 'Duration of HTTP exchanges with the provider, from sending the request to reading the whole answer, by endpoint.',
      type: 'histogram',
      aggregator: 'sum',
      // The text format keeps the endpoint after `le`, as prom-client's Histogram does; JSON has one label set.
      getForPromString: async () => ({ name: duration.name, help: duration.help, type: duration.type, aggregator: duration.aggregator, values: this.#durationSamples(false) }),
      get: async () => ({ name: duration.name, help: duration.help, type: duration.type, aggregator: duration.aggregator, values: this.#durationSamples(true) }),
      reset: () => { this.#reset() }
    }
    registry.registerMetric(requests as unknown as Metric)
    registry.registerMetric(duration as unknown as Metric)
  }

  /** One exchange: its status label, and its duration in seconds when it has one. */
  record (endpoint: string, status: string, seconds: number | undefined): void {
    const series = this.#series.get(endpoint) ?? this.#seriesOf(endpoint)
    series.byStatus.set(status, (series.byStatus.get(status) ?? 0) + 1)
    if (seconds === undefined || !Number.isFinite(seconds)) return
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && seconds > (bounds[i] as number)) i++
    series.buckets[i] = (series.buckets[i] as number) + 1
    series.sum += seconds
    series.count++
  }

  #seriesOf (endpoint: string): EndpointSeries {
    const series: EndpointSeries = { endpoint, byStatus: new Map(), buckets: new Array<number>(this.#bounds.length + 1).fill(0), sum: 0, count: 0 }
    this.#series.set(endpoint, series)
    return series
  }

  #reset (): void {
    for (const series of this.#series.values()) {
      series.byStatus.clear()
      series.buckets.fill(0)
      series.sum = 0
      series.count = 0
    }
  }

  #requestSamples (): Sample[] {
    const samples: Sample[] = []
    for (const series of this.#series.values()) {
      for (const [status, value] of series.byStatus) samples.push({ value, labels: { endpoint: series.endpoint, status } })
    }
    return samples
  }

  /**
   * prom-client's histogram layout: cumulative `_bucket{le}` (then `+Inf`), `_sum`, `_count`; the endpoint as a
   * shared label (text), or merged into the labels (`splay`, JSON).
   */
  #durationSamples (splay: boolean): Sample[] {
    const samples: Sample[] = []
    const bucket = `${this.#durationName}_bucket`
    const sample = (value: number, labels: Record<string, string | number>, endpoint: string, metricName: string): Sample => splay
      ? { value, labels: { ...labels, endpoint }, metricName }
      : { value, labels, sharedLabels: { endpoint }, metricName }
    for (const series of this.#series.values()) {
      let cumulative = 0
      this.#bounds.forEach((bound, i) => {
        cumulative += series.buckets[i] as number
        samples.push(sample(cumulative, { le: bound }, series.endpoint, bucket))
      })
      samples.push(
        sample(series.count, { le: '+Inf' }, series.endpoint, bucket),
        sample(series.sum, {}, series.endpoint, `${this.#durationName}_sum`),
        sample(series.count, {}, series.endpoint, `${this.#durationName}_count`)
      )
    }
    return samples
  }
}
