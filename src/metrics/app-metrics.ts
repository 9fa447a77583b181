import { AggregatorRegistry, type Aggregator, type Registry } from 'prom-client';
import type { MetricJson } from './ledger.js';

/**
 * Merge every worker's metrics the way prom-client's AggregatorRegistry
 * does (its own `aggregate()`: counters and histograms summed, gauges by
 * each metric's `aggregator`), after undoing what JSON did to them on the
 * way: NaN arrives as null, and an aggregator a worker's prom-client does
 * not name (older versions) or this one does not know is treated as `sum`
 * rather than failing the whole scrape. Names in `reserved` (corral's own)
 * are dropped, so an app cannot shadow them.
 */
export function aggregateAppMetrics(registries: readonly unknown[][], reserved: (name: string) => boolean): Registry {
  const perRegistry: MetricJson[][] = [];
  for (const registry of registries) {
    if (!Array.isArray(registry)) continue;
    perRegistry.push(registry.filter((m): m is MetricJson => isMetric(m) && !reserved(m.name)).map(normalise));
  }
  return AggregatorRegistry.aggregate(perRegistry as Parameters<typeof AggregatorRegistry.aggregate>[0]);
}

function isMetric(m: unknown): m is MetricJson {
  return typeof m === 'object' && m !== null && typeof (m as MetricJson).name === 'string' && Array.isArray((m as MetricJson).values);
}

/** The aggregators prom-client 15 defines (its `aggregators` export is untyped). */
const AGGREGATORS = new Set<string>(['omit', 'sum', 'first', 'min', 'max', 'average'] satisfies Aggregator[]);

function normalise(m: MetricJson): MetricJson {
  const known = typeof m.aggregator === 'string' && AGGREGATORS.has(m.aggregator);
  return {
    ...m,
    aggregator: known ? m.aggregator : 'sum',
    values: m.values?.map((v) => (v.value === null ? { ...v, value: Number.NaN } : v)),
  };
}
