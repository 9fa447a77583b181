import type { WorkerMetrics } from './poll.js';

/** One metric as prom-client's `getMetricsAsJSON()` gives it; only what the ledger reads is typed. */
export interface MetricJson {
  name: string;
  help?: string;
  type?: string;
  aggregator?: string;
  values?: Array<{ value: unknown; labels?: Record<string, unknown>; metricName?: string }>;
}

/** Types whose every sample only grows while the process lives, so a dead worker's last values stay valid. */
const MONOTONIC = new Set(['counter', 'histogram']);

/**
 * Keeps the cluster-wide sums of counters from going backwards. Summed
 * across workers, a counter drops whenever a worker is replaced or misses a
 * scrape, and Prometheus reads a drop as a reset (rate() then counts the
 * whole remaining sum as new). So: a worker that misses a scrape (timeout,
 * error) is counted with its last answer, and a worker that is gone has the
 * last counter and histogram values it reported kept in a retired total.
 * Increments between its last scrape and its death are lost; the sum never
 * shrinks.
 */
export class CounterLedger {
  /** Last answer of each worker seen, by pid. */
  readonly #last = new Map<number, MetricJson[][]>();
  /** name -> series key -> sample, summed over retired workers. */
  readonly #retired = new Map<string, { meta: MetricJson; samples: Map<string, { value: number; labels?: Record<string, unknown>; metricName?: string }> }>();

  /** The registries to aggregate for this scrape: live answers, stale ones for silent workers, and the retired totals. */
  account(answers: readonly WorkerMetrics[]): MetricJson[][] {
    const out: MetricJson[][] = [];
    const seen = new Set<number>();
    for (const a of answers) {
      if (a.pid === undefined) continue;
      seen.add(a.pid);
      if (a.result === 'answered' || a.result === 'absent') {
        const registries = a.registries as MetricJson[][];
        this.#last.set(a.pid, registries);
        out.push(...registries);
      } else if (a.result === 'exited') {
        this.#retire(a.pid);
      } else {
        out.push(...(this.#last.get(a.pid) ?? []));
      }
    }
    // Workers that exited between two scrapes are not asked at all.
    for (const pid of [...this.#last.keys()]) if (!seen.has(pid)) this.#retire(pid);
    if (this.#retired.size > 0) out.push(this.#retiredRegistry());
    return out;
  }

  #retire(pid: number): void {
    for (const registry of this.#last.get(pid) ?? []) {
      for (const metric of registry) {
        if (!MONOTONIC.has(metric.type ?? '') || (metric.aggregator ?? 'sum') !== 'sum') continue;
        let entry = this.#retired.get(metric.name);
        if (!entry) this.#retired.set(metric.name, (entry = { meta: { name: metric.name, help: metric.help, type: metric.type, aggregator: 'sum' }, samples: new Map() }));
        for (const v of metric.values ?? []) {
          if (typeof v.value !== 'number') continue;
          const key = `${v.metricName ?? ''}|${JSON.stringify(v.labels ?? {})}`;
          const sample = entry.samples.get(key);
          if (sample) sample.value += v.value;
          else entry.samples.set(key, { value: v.value, labels: v.labels, metricName: v.metricName });
        }
      }
    }
    this.#last.delete(pid);
  }

  #retiredRegistry(): MetricJson[] {
    return [...this.#retired.values()].map(({ meta, samples }) => ({ ...meta, values: [...samples.values()].map((s) => ({ ...s })) }));
  }
}
