import type { WorkerSizing } from './cpus.js';
import type { SlotRecord, SlotTable } from './slots.js';
import type { RestartReason, WorkerHandle, WorkerState } from './worker.js';

/** The stable shape of `corral status --json` (documented in the README). */
export interface WorkerStatus {
  /** null for a warm spare not yet promoted. */
  slot: number | null;
  /** null only for a worker whose process could not be created (it leaves the table at once). */
  pid: number | null;
  state: WorkerState;
  generation: number;
  uptimeMs: number;
  /** Unplanned replacements of this slot's worker (crash, boot failure, watchdog, memory, max-requests, signal). */
  restarts: number;
  restartReasons: Partial<Record<RestartReason, number>>;
  rss: number | null;
  heapUsed: number | null;
  cpuPercent: number | null;
  requests: number | null;
  connections: number | null;
  loopDelayMs: number | null;
  /** Event-loop delay percentiles and utilisation (0..1) over the last heartbeat interval. */
  loopDelayP50Ms: number | null;
  loopDelayP99Ms: number | null;
  elu: number | null;
  /** CPU time the worker has used since it started (user + system), seconds. */
  cpuSeconds: number | null;
  lastHeartbeatMsAgo: number | null;
  address: string | null;
}

/** A slot below the desired count with no live worker: waiting out its restart back-off. */
export interface WaitingSlot {
  slot: number;
  restartInMs: number;
  restarts: number;
  restartReasons: Partial<Record<RestartReason, number>>;
}

export interface ClusterStatus {
  name: string;
  pid: number;
  script: string;
  strategy: string;
  state: 'starting' | 'running' | 'reloading' | 'stopping';
  startedAt: string;
  uptimeMs: number;
  desired: number;
  generation: number;
  workers: WorkerStatus[];
  waiting: WaitingSlot[];
  /** Sums over the rows: `restarts` counts each slot once (a slot shown twice during a reload, a removed slot not at all). */
  totals: { workers: number; ready: number; rss: number; requests: number; restarts: number };
  /** Worker and corral log lines dropped because stdout/stderr was closed or stalled. */
  logLinesDropped: number;
  /** Errors thrown by user code in the primary (listeners, request handlers), caught and logged. */
  userErrors: number;
  /** Reloads that completed and that were refused, and why the last one was. */
  reloads: { succeeded: number; failed: number; lastError: string | null };
  /** Warm spares wanted (--spares); those that exist are rows with state "spare" and slot null. */
  spares: number;
  /** Where the workers share compiled code, or null (off, or Node < 22.1). */
  compileCache: string | null;
  /** The worker count corral started with and why ("cgroup cpu.max 150000/100000 (…)"); null if not told. */
  sizing: WorkerSizing | null;
}

/** What the supervisor hands over to build a status snapshot. */
export interface StatusSource {
  name: string;
  script: string;
  strategy: string;
  state: ClusterStatus['state'];
  startedAt: number;
  now: number;
  desired: number;
  generation: number;
  /** Workers not yet exited. */
  workers: readonly WorkerHandle[];
  /** Slots below the desired count with no live worker. */
  emptySlots: readonly number[];
  slots: SlotTable;
  logLinesDropped: number;
  userErrors: number;
  reloads: ClusterStatus['reloads'];
  spares: number;
  compileCache: string | null;
  sizing?: WorkerSizing | undefined;
}

/** The status view: a plain, JSON-ready snapshot of the table. */
export function buildStatus(src: StatusSource): ClusterStatus {
  const { now } = src;
  // Spares (slot -1) after the slots.
  const order = (w: WorkerHandle): number => (w.isSpare ? Number.MAX_SAFE_INTEGER : w.slot);
  const workers = [...src.workers].sort((a, b) => order(a) - order(b) || a.id - b.id).map((w) => workerStatus(w, src.slots.view(w.slot), now));
  const waiting = src.emptySlots.map((slot) => {
    const rec = src.slots.view(slot);
    return { slot, restartInMs: Math.max(0, rec.respawnAt - now), restarts: rec.restarts, restartReasons: { ...rec.reasons } };
  });
  return {
    name: src.name,
    pid: process.pid,
    script: src.script,
    strategy: src.strategy,
    state: src.state,
    startedAt: new Date(src.startedAt || now).toISOString(),
    uptimeMs: src.startedAt ? now - src.startedAt : 0,
    desired: src.desired,
    generation: src.generation,
    workers,
    waiting,
    totals: {
      workers: workers.length,
      ready: workers.filter((w) => w.state === 'ready').length,
      rss: workers.reduce((s, w) => s + (w.rss ?? 0), 0),
      requests: workers.reduce((s, w) => s + (w.requests ?? 0), 0),
      restarts: slotRestarts([...workers, ...waiting]),
    },
    logLinesDropped: src.logLinesDropped,
    userErrors: src.userErrors,
    reloads: src.reloads,
    spares: src.spares,
    compileCache: src.compileCache,
    sizing: src.sizing ?? null,
  };
}

/** Each slot's restarts once, however many rows it has. */
function slotRestarts(rows: readonly { slot: number | null; restarts: number }[]): number {
  const bySlot = new Map<number, number>();
  for (const r of rows) if (r.slot !== null) bySlot.set(r.slot, r.restarts);
  let n = 0;
  for (const count of bySlot.values()) n += count;
  return n;
}

function workerStatus(w: WorkerHandle, slot: SlotRecord, now: number): WorkerStatus {
  const stats = w.stats;
  return {
    slot: w.isSpare ? null : w.slot,
    pid: w.pid ?? null,
    state: w.state,
    generation: w.generation,
    uptimeMs: now - w.spawnedAt,
    restarts: slot.restarts,
    restartReasons: { ...slot.reasons },
    rss: stats?.rss ?? null,
    heapUsed: stats?.heapUsed ?? null,
    cpuPercent: stats ? Math.round(w.cpuPercent * 10) / 10 : null,
    requests: stats?.requests ?? null,
    connections: stats?.connections ?? null,
    loopDelayMs: stats ? Math.round(stats.loopDelayMax * 10) / 10 : null,
    loopDelayP50Ms: stats?.loopDelayP50 !== undefined ? Math.round(stats.loopDelayP50 * 100) / 100 : null,
    loopDelayP99Ms: stats?.loopDelayP99 !== undefined ? Math.round(stats.loopDelayP99 * 100) / 100 : null,
    elu: stats ? Math.round(stats.loopUtilization * 1000) / 1000 : null,
    cpuSeconds: stats ? (stats.cpuUser + stats.cpuSystem) / 1e6 : null,
    lastHeartbeatMsAgo: w.lastHeartbeat === undefined ? null : now - w.lastHeartbeat,
    address: w.address ?? null,
  };
}
