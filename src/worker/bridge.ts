import { EventEmitter } from 'node:events';
import { BRIDGE_KEY, checkPayload, type ErrorBody, type WorkerToPrimary } from '../common/ipc.js';
import type { MetricsSource } from './metrics.js';

export type ShutdownHook = (reason: string) => unknown;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** An error that crossed from the primary's request handler. */
export class RemoteRequestError extends Error {
  readonly code: string;
  constructor(body: ErrorBody) {
    super(body.message);
    this.name = 'RemoteRequestError';
    this.code = body.code;
  }
}

/**
 * The runtime's half of the worker API. The runtime creates it; the
 * 'corral/worker' module finds it on globalThis, so a copy of corral in the
 * app's node_modules and the one that preloaded the runtime share it.
 */
export class WorkerBridge {
  readonly hooks: ShutdownHook[] = [];
  readonly events = new EventEmitter();
  /** prom-client registries the app exposed beyond the global ones (worker.exposeMetrics). */
  readonly metricsSources = new Set<MetricsSource>();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(
    private readonly send: (message: WorkerToPrimary) => void,
    /** worker.ready(): the runtime reports it (or, in a spare, keeps it until promotion). */
    readonly ready: () => void = () => send({ corral: 1, type: 'ready' }),
  ) {}

  request(name: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    checkPayload(payload);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(Object.assign(new Error(`request "${name}" got no answer from the primary within ${timeoutMs} ms`), { code: 'E_TIMEOUT' }));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.send({ corral: 1, type: 'request', id, name, payload });
    });
  }

  broadcast(payload: unknown): void {
    checkPayload(payload);
    this.send({ corral: 1, type: 'broadcast', payload });
  }

  settle(id: number, ok: boolean, value: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if (ok) p.resolve(value);
    else p.reject(new RemoteRequestError(value as ErrorBody));
  }

  /** Run every shutdown hook, each error reported, none allowed to stop the others. */
  async runHooks(reason: string): Promise<void> {
    await Promise.all(
      this.hooks.map(async (hook) => {
        try {
          await hook(reason);
        } catch (err) {
          console.error('corral: an onShutdown hook failed:', err);
        }
      }),
    );
  }

  static install(bridge: WorkerBridge): void {
    (globalThis as Record<symbol, unknown>)[BRIDGE_KEY] = bridge;
  }

  static find(): WorkerBridge | undefined {
    return (globalThis as Record<symbol, unknown>)[BRIDGE_KEY] as WorkerBridge | undefined;
  }
}
