import { Counter, Gauge, Registry } from 'prom-client';
import type { ClusterStatus, WorkerStatus } from '../primary/status.js';
import type { PollResult } from './poll.js';

/** Where corral's own metrics come from: a status snapshot, and reload outcomes as they happen. */
export interface ClusterSource {
  status(): ClusterStatus;
  on(event: 'reload:done' | 'reload:failed', listener: () => void): unknown;
}

const WORKER_STATES = ['starting', 'spare', 'ready', 'draining'] as const;
const POLL_RESULTS: readonly PollResult[] = ['answered', 'absent', 'error', 'timeout', 'exited'];

/**
 * corral's own metrics, in a registry of their own (never prom-client's
 * global one, which belongs to the user when corral runs as a library).
 * Most are read from a status snapshot at scrape time, so nothing is
 * maintained between scrapes; reloads are counted as they finish.
 */
export class ClusterMetrics {
  readonly registry = new Registry();
  readonly #source: ClusterSource;
  readonly #minReady: number;
  readonly #g: Record<string, Gauge>;
  readonly #c: Record<string, Counter>;
  readonly #reloads: Counter;

  constructor(source: ClusterSource, minReady: number, version: string) {
    this.#source = source;
    this.#minReady = minReady;
    const registers = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
    const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
    gauge('corral_info', 'The cluster: 1, with its name, strategy and corral version as labels.', ['name', 'strategy', 'version']).set(
      { name: source.status().name, strategy: source.status().strategy, version },
      1,
    );
    this.#g = {
      workers: gauge('corral_workers', 'Workers by state.', ['state']),
      desired: gauge('corral_workers_desired', 'Workers the cluster should have.'),
      waiting: gauge('corral_slots_waiting', 'Slots with no worker, waiting out a restart back-off.'),
      ready: gauge('corral_ready', '1 when /readyz would answer 200 (enough ready workers, not stopping).'),
      generation: gauge('corral_generation', 'Code generation: +1 per reload.'),
      uptime: gauge('corral_uptime_seconds', 'Seconds since the cluster started.'),
      rss: gauge('corral_worker_rss_bytes', 'Resident set size of the worker serving a slot.', ['slot']),
      heap: gauge('corral_worker_heap_used_bytes', 'V8 heap in use by the worker serving a slot.', ['slot']),
      delay: gauge('corral_worker_event_loop_delay_seconds', 'Event-loop delay over the last heartbeat interval (quantile 1 = max).', ['slot', 'quantile']),
      elu: gauge('corral_worker_elu', 'Event-loop utilisation over the last heartbeat interval, 0..1.', ['slot']),
      connections: gauge('corral_worker_connections', 'Open connections on the worker serving a slot.', ['slot']),
      uptimeWorker: gauge('corral_worker_uptime_seconds', 'Seconds since the worker serving a slot was forked.', ['slot']),
      heartbeat: gauge('corral_worker_heartbeat_age_seconds', "Seconds since the worker's last heartbeat.", ['slot']),
      info: gauge('corral_worker_info', 'Every worker not yet exited: 1, with pid, state and generation as labels.', ['slot', 'pid', 'state', 'generation']),
      appWorkers: gauge('corral_app_metrics_workers', 'How the workers answered the last collection of app metrics (absent: the app never loaded prom-client).', ['result']),
      appSeconds: gauge('corral_app_metrics_collect_seconds', 'How long the last collection of app metrics took.'),
    };
    this.#c = {
      restarts: counter('corral_worker_restarts_total', 'Unplanned worker replacements (crash, boot failure, watchdog, memory, max-requests, signal), per slot and reason; reloads and scaling are not counted.', ['slot', 'reason']),
      requests: counter('corral_requests_total', 'Requests served by the worker serving a slot (restarts from 0 with a new worker).', ['slot']),
      cpu: counter('corral_worker_cpu_seconds_total', 'CPU time used by the worker serving a slot (restarts from 0 with a new worker).', ['slot']),
    };
    this.#reloads = counter('corral_reloads_total', 'Rolling reloads finished, by result.', ['result']);
    this.#reloads.inc({ result: 'done' }, 0);
    this.#reloads.inc({ result: 'failed' }, 0);
    source.on('reload:done', () => this.#reloads.inc({ result: 'done' }));
    source.on('reload:failed', () => this.#reloads.inc({ result: 'failed' }));
  }

  /** Ready as /readyz means it: not stopping, and at least --min-ready workers ready. */
  static isReady(status: ClusterStatus, minReady: number): boolean {
    return status.state !== 'stopping' && status.totals.ready >= minReady;
  }

  /** Fill every gauge from one status snapshot (the app-collection gauges are reset too: set them after). */
  update(status: ClusterStatus): void {
    const g = this.#g;
    for (const m of [...Object.values(g), ...Object.values(this.#c)]) m.reset();
    for (const state of WORKER_STATES) g.workers!.set({ state }, status.workers.filter((w) => w.state === state).length);
    g.desired!.set(status.desired);
    g.waiting!.set(status.waiting.length);
    g.ready!.set(ClusterMetrics.isReady(status, this.#minReady) ? 1 : 0);
    g.generation!.set(status.generation);
    g.uptime!.set(status.uptimeMs / 1000);
    for (const w of status.workers) {
      g.info!.set({ slot: w.slot ?? 'spare', pid: w.pid ?? '', state: w.state, generation: w.generation }, 1);
    }
    for (const w of servingPerSlot(status.workers)) this.#updateWorker(w);
    const restarts = new Map<number, WorkerStatus['restartReasons']>();
    for (const r of [...status.workers, ...status.waiting]) if (r.slot !== null) restarts.set(r.slot, r.restartReasons);
    for (const [slot, reasons] of restarts) {
      for (const [reason, n] of Object.entries(reasons)) this.#c.restarts!.inc({ slot, reason }, n ?? 0);
    }
  }

  #updateWorker(w: WorkerStatus & { slot: number }): void {
    const g = this.#g;
    const slot = w.slot;
    g.uptimeWorker!.set({ slot }, w.uptimeMs / 1000);
    if (w.lastHeartbeatMsAgo === null) return;
    g.heartbeat!.set({ slot }, w.lastHeartbeatMsAgo / 1000);
    setIf(g.rss!, { slot }, w.rss);
    setIf(g.heap!, { slot }, w.heapUsed);
    setIf(g.connections!, { slot }, w.connections);
    setIf(g.elu!, { slot }, w.elu);
    setIf(g.delay!, { slot, quantile: '0.5' }, ms(w.loopDelayP50Ms));
    setIf(g.delay!, { slot, quantile: '0.99' }, ms(w.loopDelayP99Ms));
    setIf(g.delay!, { slot, quantile: '1' }, ms(w.loopDelayMs));
    if (w.requests !== null) this.#c.requests!.inc({ slot }, w.requests);
    if (w.cpuSeconds !== null) this.#c.cpu!.inc({ slot }, w.cpuSeconds);
  }

  /** Record how the workers answered the app-metrics collection. */
  updateAppCollection(results: readonly PollResult[], seconds: number): void {
    for (const result of POLL_RESULTS) this.#g.appWorkers!.set({ result }, results.filter((r) => r === result).length);
    this.#g.appSeconds!.set(seconds);
  }
}

function hasSlot(w: WorkerStatus): w is WorkerStatus & { slot: number } {
  return w.slot !== null;
}

function ms(value: number | null): number | null {
  return value === null ? null : value / 1000;
}

function setIf(g: Gauge, labels: Record<string, string | number>, value: number | null): void {
  if (value !== null && Number.isFinite(value)) g.set(labels, value);
}

/**
 * One worker per slot for the per-slot series: during a reload a slot has
 * an old and a new worker; the newest ready one serves it, else the newest.
 */
export function servingPerSlot(workers: readonly WorkerStatus[]): Array<WorkerStatus & { slot: number }> {
  const bySlot = new Map<number, WorkerStatus & { slot: number }>();
  for (const w of workers) {
    // A spare serves no slot: it is counted in corral_workers{state="spare"} only.
    if (!hasSlot(w)) continue;
    const current = bySlot.get(w.slot);
    if (!current || w.state === 'ready' || current.state !== 'ready') bySlot.set(w.slot, w);
  }
  return [...bySlot.values()];
}
