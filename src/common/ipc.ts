/**
 * Messages between the primary and the runtime preloaded into each worker.
 * Every corral message carries `corral: 1` so it can never be confused with
 * the user's own `process.send()` traffic on the same channel.
 */

export interface WorkerStats {
  /** Resident set size, bytes. */
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Cumulative CPU time of the worker process, microseconds. */
  cpuUser: number;
  cpuSystem: number;
  /** Event-loop delay over the last interval, milliseconds. */
  loopDelayMean: number;
  loopDelayMax: number;
  /** Event-loop delay percentiles over the last interval, milliseconds. */
  loopDelayP50?: number;
  loopDelayP99?: number;
  /** Event-loop utilisation over the last interval, 0..1. */
  loopUtilization: number;
  /** Currently open connections on the worker's servers. */
  connections: number;
  /** Requests seen since the worker started. */
  requests: number;
}

export type WorkerToPrimary =
  | { corral: 1; type: 'listening'; address: string }
  | { corral: 1; type: 'ready' }
  | { corral: 1; type: 'heartbeat'; stats: WorkerStats }
  | { corral: 1; type: 'request'; id: number; name: string; payload: unknown }
  | { corral: 1; type: 'broadcast'; payload: unknown }
  /** The worker began draining on its own: it received SIGTERM/SIGINT directly (systemd's control-group kill, `kill <pid>`). */
  | { corral: 1; type: 'draining'; signal: string }
  /** A spare booted: its first listen() (or ready()) is held until it is promoted. */
  | { corral: 1; type: 'held' }
  | AppMetricsReply;

/**
 * The runtime's answer to `collect-metrics`: the JSON of every prom-client
 * registry the app uses (`registry.getMetricsAsJSON()`, one array per
 * registry), `found: false` when the app never loaded prom-client.
 */
export type AppMetricsReply =
  | { corral: 1; type: 'metrics'; id: number; found: boolean; registries: unknown[][] }
  | { corral: 1; type: 'metrics'; id: number; error: string };

export interface ErrorBody {
  code: string;
  message: string;
}

export type PrimaryToWorker =
  | { corral: 1; type: 'drain'; idleCloseMs: number; graceMs: number; reason: string }
  | { corral: 1; type: 'reply'; id: number; ok: true; result: unknown }
  | { corral: 1; type: 'reply'; id: number; ok: false; error: ErrorBody }
  | { corral: 1; type: 'message'; payload: unknown; from: number | 'primary' }
  | { corral: 1; type: 'collect-metrics'; id: number }
  /** A spare takes `slot`: perform the held listens. */
  | { corral: 1; type: 'promote'; slot: number; workers: number };

const WORKER_TYPES = new Set(['listening', 'ready', 'heartbeat', 'request', 'broadcast', 'draining', 'metrics', 'held']);
const PRIMARY_TYPES = new Set(['drain', 'reply', 'message', 'collect-metrics', 'promote']);

export function isWorkerMessage(value: unknown): value is WorkerToPrimary {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { corral?: unknown; type?: unknown };
  return m.corral === 1 && WORKER_TYPES.has(m.type as string);
}

export function isPrimaryMessage(value: unknown): value is PrimaryToWorker {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as { corral?: unknown; type?: unknown };
  return m.corral === 1 && PRIMARY_TYPES.has(m.type as string);
}

/** Largest payload (as JSON) a worker may send or the primary may broadcast. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

/** Global key under which the preloaded runtime and 'corral/worker' meet, even as two copies of corral. */
export const BRIDGE_KEY = Symbol.for('corral.worker.bridge.v1');

/** Environment variables the primary sets for the worker runtime. */
export const ENV = {
  workerId: 'CORRAL_WORKER_ID',
  workers: 'CORRAL_WORKERS',
  name: 'CORRAL_NAME',
  strategy: 'CORRAL_STRATEGY',
  requestLimit: 'CORRAL_REQUEST_LIMIT',
  /** For a drain the worker starts itself (a signal it received): how long the primary will wait. */
  graceMs: 'CORRAL_GRACE_MS',
  idleCloseMs: 'CORRAL_IDLE_CLOSE_MS',
  /** "1" in a warm spare until it is promoted. */
  spare: 'CORRAL_SPARE',
} as const;

/** Payloads cross as JSON; refuse what would not survive or is too large, with the reason. */
export function checkPayload(payload: unknown): void {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch (err) {
    throw new TypeError(`corral: message payload is not JSON-serializable (${(err as Error).message})`);
  }
  if (text !== undefined && Buffer.byteLength(text) > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`corral: message payload is ${Buffer.byteLength(text)} bytes; the limit is ${MAX_PAYLOAD_BYTES}`);
  }
}
