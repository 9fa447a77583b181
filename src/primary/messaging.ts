import type { ErrorBody } from '../common/ipc.js';
import type { Clock, Timer } from './clock.js';
import type { UserErrors } from './user-errors.js';
import type { WorkerHandle } from './worker.js';

/** Answers a worker's `worker.request(name, payload)`; what it returns (or throws) goes back. */
export type RequestHandler = (payload: unknown, from: { slot: number; pid: number | undefined }) => unknown;

/**
 * A request for a name nobody handles yet waits this long for a handler:
 * workers often ask at boot, before `await start()` has returned the handle
 * on which the primary's code registers its handlers.
 */
export const HOLD_UNHANDLED_MS = 5000;

interface Held {
  w: WorkerHandle;
  id: number;
  payload: unknown;
  timer: Timer;
}

/**
 * Messages between the primary's user code and the workers: requests a
 * worker sends to a named handler, and broadcasts. Handlers run outside the
 * supervisor's loop; only their answer goes back to the worker that asked.
 */
export class Messenger {
  readonly #handlers = new Map<string, RequestHandler>();
  readonly #held = new Map<string, Set<Held>>();

  constructor(
    private readonly clock: Clock,
    private readonly errors: UserErrors,
  ) {}

  /** Replaces an earlier handler for the name; requests held for it are answered now. */
  onRequest(name: string, handler: RequestHandler): void {
    this.#handlers.set(name, handler);
    const held = this.#held.get(name);
    this.#held.delete(name);
    for (const h of held ?? []) {
      h.timer.cancel();
      this.#run(handler, h.w, h.id, name, h.payload);
    }
  }

  answer(w: WorkerHandle, id: number, name: string, payload: unknown): void {
    const handler = this.#handlers.get(name);
    if (handler) return this.#run(handler, w, id, name, payload);
    let set = this.#held.get(name);
    if (!set) this.#held.set(name, (set = new Set()));
    const held: Held = {
      w,
      id,
      payload,
      timer: this.clock.setTimeout(() => {
        set.delete(held);
        reply(w, id, false, { code: 'E_NO_HANDLER', message: `the primary has no handler for request "${name}" (register one with cluster.onRequest, or in start()'s onRequest option)` });
      }, HOLD_UNHANDLED_MS),
    };
    set.add(held);
  }

  #run(handler: RequestHandler, w: WorkerHandle, id: number, name: string, payload: unknown): void {
    Promise.resolve()
      .then(() => handler(payload, { slot: w.slot, pid: w.pid }))
      .then(
        (result) => reply(w, id, true, result === undefined ? null : result),
        (err: unknown) => {
          const body = errorBody(err);
          // A coded error is the handler's answer; anything else is a bug worth its stack.
          if (body.code === 'E_HANDLER') this.errors.report(`the onRequest handler for "${name}"`, err);
          reply(w, id, false, body);
        },
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

function reply(w: WorkerHandle, id: number, ok: boolean, value: unknown): void {
  if (ok) w.proc.send({ corral: 1, type: 'reply', id, ok: true, result: value });
  else w.proc.send({ corral: 1, type: 'reply', id, ok: false, error: value as ErrorBody });
}

function errorBody(err: unknown): ErrorBody {
  const e = err as { code?: unknown; message?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : 'E_HANDLER', message: typeof e?.message === 'string' ? e.message : String(err) };
}
