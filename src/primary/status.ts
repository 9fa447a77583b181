import type { RestartReason, WorkerState } from './worker.js';

/** The stable shape of `corral status --json` (documented in the README). */
export interface WorkerStatus {
  slot: number;
  pid: number;
  state: WorkerState;
  generation: number;
  uptimeMs: number;
  restarts: number;
  restartReasons: Partial<Record<RestartReason, number>>;
  rss: number | null;
  heapUsed: number | null;
  cpuPercent: number | null;
  requests: number | null;
  connections: number | null;
  loopDelayMs: number | null;
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
  totals: { workers: number; ready: number; rss: number; requests: number; restarts: number };
}
