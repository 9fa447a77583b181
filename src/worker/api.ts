/**
 * What a user's script may import to cooperate with corral. Every member
 * works under plain `node` too, so the same app runs with and without it.
 */
import { EventEmitter } from 'node:events';
import { ENV, checkPayload } from '../common/ipc.js';
import { WorkerBridge, type ShutdownHook } from './bridge.js';

export type { ShutdownHook } from './bridge.js';
export { RemoteRequestError } from './bridge.js';

const bridge = WorkerBridge.find();
const managed = bridge !== undefined && process.env[ENV.workerId] !== undefined;
/** Outside corral there is no primary: messages stay in this process. */
const local = new EventEmitter();

export type MessageListener = (payload: unknown, from: number | 'primary') => void;

export const worker = {
  /** True when this process is a worker run by corral. */
  isPrimaryManaged: managed,
  /**
   * This worker's stable slot, 0..count-1 (0 outside corral). A warm spare
   * has none until it is promoted (NaN); read it when you need it.
   */
  get id(): number {
    return managed ? Number(process.env[ENV.workerId] || Number.NaN) : 0;
  },
  /** How many workers the cluster had when this one started or was promoted (1 outside corral). */
  get count(): number {
    return managed ? Number(process.env[ENV.workers]) : 1;
  },
  /** A warm spare: booted, its listen() calls held until the primary promotes it (--spares). */
  get isSpare(): boolean {
    return managed && process.env[ENV.spare] === '1';
  },

  /**
   * Tell the primary this worker can take work. Servers are ready when they
   * listen; scripts that never listen (queue consumers) call this instead.
   */
  ready(): void {
    if (managed && process.connected) bridge?.ready();
  },

  /**
   * Run `hook(reason)` when the worker is stopped ('stop', 'reload', 'scale',
   * 'memory', 'max-requests'), after its servers stopped accepting and its
   * in-flight requests finished, before it exits. Bounded by --grace.
   */
  onShutdown(hook: ShutdownHook): void {
    if (bridge) bridge.hooks.push(hook);
  },

  /**
   * Ask the primary's handler for `name` (registered with cluster.onRequest)
   * and resolve with its answer; its errors reject here with their message
   * and code. Payloads travel as JSON, at most 1 MiB.
   */
  request(name: string, payload?: unknown, { timeout = 10_000 }: { timeout?: number } = {}): Promise<unknown> {
    if (!managed || !bridge) {
      return Promise.reject(Object.assign(new Error(`corral: request "${name}" needs a corral primary (this process runs under plain node)`), { code: 'E_NOT_MANAGED' }));
    }
    return bridge.request(name, payload, timeout);
  },

  /** Send `payload` to every other worker (and the primary's 'worker:message' listeners). */
  broadcast(payload: unknown): void {
    checkPayload(payload);
    if (managed && bridge) bridge.broadcast(payload);
  },

  /**
   * Include a prom-client Registry of your own in the cluster-wide /metrics
   * (prom-client's global registry is included without this).
   */
  exposeMetrics(registry: { getMetricsAsJSON(): Promise<unknown[]> }): void {
    if (typeof registry?.getMetricsAsJSON !== 'function') throw new TypeError('corral: exposeMetrics() takes a prom-client Registry');
    bridge?.metricsSources.add(registry);
  },

  /** Messages from the primary's broadcast() or other workers' broadcast(). */
  on(event: 'message', listener: MessageListener): void {
    (bridge?.events ?? local).on(event, listener);
  },

  off(event: 'message', listener: MessageListener): void {
    (bridge?.events ?? local).off(event, listener);
  },
};
