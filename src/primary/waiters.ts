import type { Deferred } from './deferred.js';

/**
 * The reloads asked for: the one under way (with the generation it rolls
 * out) and those that arrived meanwhile, which run together after it; a
 * reload never interleaves with another.
 */
export class ReloadQueue {
  #running: { target: number; waiters: Deferred<void>[] } | null = null;
  #queued: Deferred<void>[] = [];

  /** The generation being rolled out, or null. */
  get target(): number | null {
    return this.#running?.target ?? null;
  }

  get hasQueued(): boolean {
    return this.#queued.length > 0;
  }

  /** Queue a request; true when none runs, so the caller should begin one. */
  request(reply: Deferred<void>): boolean {
    this.#queued.push(reply);
    return this.#running === null;
  }

  /** Start rolling out `target` for everyone queued so far. */
  begin(target: number): void {
    this.#running = { target, waiters: this.#queued.splice(0) };
  }

  /** The running reload finished; returns its target. */
  succeed(): number | null {
    const job = this.#running;
    this.#running = null;
    for (const d of job?.waiters ?? []) d.resolve();
    return job?.target ?? null;
  }

  /** The running reload failed; returns its target. */
  fail(err: Error): number | null {
    const job = this.#running;
    this.#running = null;
    for (const d of job?.waiters ?? []) d.reject(err);
    return job?.target ?? null;
  }

  /** The cluster is stopping: nobody's reload will happen. */
  rejectAll(err: Error): void {
    this.fail(err);
    for (const d of this.#queued.splice(0)) d.reject(err);
  }
}

/** Callers of scale() waiting for the count they asked for. */
export class ScaleWaiters {
  #waiting: Deferred<number>[] = [];

  add(reply: Deferred<number>): void {
    this.#waiting.push(reply);
  }

  resolveAll(count: number): void {
    for (const d of this.#waiting.splice(0)) d.resolve(count);
  }

  rejectAll(err: Error): void {
    for (const d of this.#waiting.splice(0)) d.reject(err);
  }
}
