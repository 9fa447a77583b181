import type { WorkerHandle } from './worker.js';

/** Answers a worker's `worker.request(name, payload)`; what it returns (or throws) goes back. */
export type RequestHandler = (payload: unknown, from: { slot: number; pid: number }) => unknown;

/**
 * Messages between the primary's user code and the workers: requests a
 * worker sends to a named handler, and broadcasts. Handlers run outside the
 * supervisor's loop; only their answer goes back to the worker that asked.
 */
export class Messenger {
  readonly #handlers = new Map<string, RequestHandler>();

  /** Replaces an earlier handler for the name. */
  onRequest(name: string, handler: RequestHandler): void {
    this.#handlers.set(name, handler);
  }

  answer(w: WorkerHandle, id: number, name: string, payload: unknown): void {
    const handler = this.#handlers.get(name);
    const send = w.proc.send.bind(w.proc);
    if (!handler) {
      send({ corral: 1, type: 'reply', id, ok: false, error: { code: 'E_NO_HANDLER', message: `the primary has no handler for request "${name}" (register one with cluster.onRequest)` } });
      return;
    }
    Promise.resolve()
      .then(() => handler(payload, { slot: w.slot, pid: w.pid }))
      .then(
        (result) => send({ corral: 1, type: 'reply', id, ok: true, result: result === undefined ? null : result }),
        (err: unknown) => send({ corral: 1, type: 'reply', id, ok: false, error: errorBody(err) }),
      );
  }

  /** Send `payload` to each of `workers`' `worker.on('message')`; returns how many got it. */
  broadcast(workers: Iterable<WorkerHandle>, payload: unknown, from: number | 'primary'): number {
    let n = 0;
    for (const w of workers) {
      w.proc.send({ corral: 1, type: 'message', payload, from });
      n += 1;
    }
    return n;
  }
}

function errorBody(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : 'E_HANDLER', message: typeof e?.message === 'string' ? e.message : String(err) };
}
