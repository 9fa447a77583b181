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
  /** Without --sticky, the app answered a Socket.IO long-poll `400`: the client's session is on another worker. Sent once. */
  | { corral: 1; type: 'session-elsewhere' }
  | AppMetricsReply
  | StickyToPrimary;

/**
 * Under --sticky the primary owns the listening sockets: a worker's listen()
 * on a TCP port becomes `sticky-listen` (answered by `sticky-listening`),
 * closing it `sticky-unlisten`. A connection that arrives after the worker
 * closed its listener goes back with `sticky-return` (the socket travels as
 * the message's handle), with the bytes the primary had read.
 */
export type StickyToPrimary =
  | { corral: 1; type: 'sticky-listen'; id: number; query: StickyQuery }
  | { corral: 1; type: 'sticky-unlisten'; key: string }
  | { corral: 1; type: 'sticky-return'; key: string; client: string; data: string; hops: number };

/** What a worker's listen() asked for, as node:cluster's queryServer carries it. */
export interface StickyQuery {
  /** Names the listener: the same for every worker that listens on the same address (node:cluster's rule). */
  key: string;
  address: string | null;
  port: number;
  addressType: number;
  backlog?: number;
  ipv6Only: boolean;
  /** The server is plain HTTP/1 (http.Server), so the primary may read the request head for header:/cookie: keys. */
  http: boolean;
  /** node:cluster's per-listener server data (a TLS server's ticket keys): the first worker's is given to all. */
  serverData?: unknown;
}

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
  /**
   * `linger`: other workers of an older generation still accept connections
   * (a rolling reload is under way), so once its requests are done the worker
   * keeps its WebSockets until `release` (at most half the grace): clients it
   * closed now could reconnect to a worker that is replaced moments later.
   */
  | { corral: 1; type: 'drain'; idleCloseMs: number; graceMs: number; reason: string; linger: boolean }
  | { corral: 1; type: 'release' }
  | { corral: 1; type: 'reply'; id: number; ok: true; result: unknown }
  | { corral: 1; type: 'reply'; id: number; ok: false; error: ErrorBody }
  | { corral: 1; type: 'message'; payload: unknown; from: number | 'primary' }
  | { corral: 1; type: 'collect-metrics'; id: number }
  /** A spare takes `slot`: perform the held listens. */
  | { corral: 1; type: 'promote'; slot: number; workers: number }
  | { corral: 1; type: 'sticky-listening'; id: number; sockname: { address: string; family: string; port: number }; serverData?: unknown }
  | { corral: 1; type: 'sticky-listening'; id: number; errno: number; error: string }
  /**
   * A connection for the listener `key`, its socket as the message's handle;
   * `data` (base64) are bytes the primary read from it first, `client` the
   * routing key it was routed by, `hops` how often it was routed already.
   */
  | { corral: 1; type: 'sticky-connection'; key: string; client: string; data: string; hops: number };

const WORKER_TYPES = new Set(['listening', 'ready', 'heartbeat', 'request', 'broadcast', 'draining', 'metrics', 'held', 'session-elsewhere', 'sticky-listen', 'sticky-unlisten', 'sticky-return']);
const PRIMARY_TYPES = new Set(['drain', 'release', 'reply', 'message', 'collect-metrics', 'promote', 'sticky-listening', 'sticky-connection']);

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
  /** Set under --sticky: TCP listens go to the primary, which routes connections by key. */
  sticky: 'CORRAL_STICKY',
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
