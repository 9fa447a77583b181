import { Registry } from 'prom-client';
import { aggregateAppMetrics } from './app-metrics.js';
import { ClusterMetrics, type ClusterSource } from './cluster-metrics.js';
import { CounterLedger } from './ledger.js';
import type { WorkerMetrics } from './poll.js';

export interface ScrapeSource extends ClusterSource {
  collectAppMetrics(timeoutMs: number): Promise<WorkerMetrics[]>;
}

export interface ScrapeOptions {
  minReady: number;
  version: string;
  /** How long a scrape waits for a worker's app metrics; a slower worker is left out and counted. */
  workerTimeoutMs: number;
}

/**
 * GET /metrics: corral's cluster metrics plus the app's own prom-client
 * metrics aggregated across its workers. Scrapes that arrive while one is
 * being collected share it, so a burst of scrapers costs the workers one
 * round of IPC.
 */
export class MetricsScraper {
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;
  readonly #source: ScrapeSource;
  readonly #cluster: ClusterMetrics;
  readonly #timeoutMs: number;
  readonly #ledger = new CounterLedger();
  #inflight: Promise<string> | null = null;

  constructor(source: ScrapeSource, options: ScrapeOptions) {
    this.#source = source;
    this.#cluster = new ClusterMetrics(source, options.minReady, options.version);
    this.#timeoutMs = options.workerTimeoutMs;
  }

  render(): Promise<string> {
    this.#inflight ??= this.#render().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #render(): Promise<string> {
    const started = performance.now();
    const answers = await this.#source.collectAppMetrics(this.#timeoutMs);
    const own = this.#cluster.registry;
    let app: Registry | null = null;
    let results = answers.map((a) => a.result);
    try {
      app = aggregateAppMetrics(this.#ledger.account(answers), (name) => own.getSingleMetric(name) !== undefined);
    } catch {
      // Metrics that prom-client itself cannot merge: serve corral's own and say so.
      results = results.map((r) => (r === 'answered' ? 'error' : r));
    }
    this.#cluster.update(this.#source.status());
    this.#cluster.updateAppCollection(results, (performance.now() - started) / 1000);
    const [ownText, appText] = await Promise.all([own.metrics(), app ? app.metrics() : '']);
    return appText.trim() === '' ? ownText : `${ownText}\n${appText}`;
  }
}
