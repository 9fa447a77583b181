import type { Deferred } from './deferred.js';
import type { Rollout } from './rollout.js';

/**
 * The reloads asked for: the one under way (with the generation it rolls
 * out) and those that arrived meanwhile, which run together after it; a
 * reload never interleaves with another.
 */
export class ReloadQueue {
  #running: { rollout: Rollout; waiters: Deferred<void>[] } | null = null;
  #queued: Deferred<void>[] = [];

  /** The reload under way, or null. */
  get running(): Rollout | null {
    return this.#running?.rollout ?? null;
  }

  get hasQueued(): boolean {
    return this.#queued.length > 0;
  }

  /** Queue a request; true when none runs, so the caller should begin one. */
  request(reply: Deferred<void>): boolean {
    this.#queued.push(reply);
    return this.#running === null;
  }

  /** Start `rollout` for everyone queued so far. */
  begin(rollout: Rollout): void {
    this.#running = { rollout, waiters: this.#queued.splice(0) };
  }

  /** The running reload finished. */
  succeed(): void {
    const job = this.#running;
    this.#running = null;
    for (const d of job?.waiters ?? []) d.resolve();
  }

  /** The running reload failed (or never could start). */
  fail(err: Error): void {
    const job = this.#running;
    this.#running = null;
    for (const d of job?.waiters ?? []) d.reject(err);
  }

  /** Reject the queued requests alone (a reload that could not even begin). */
  failQueued(err: Error): void {
    for (const d of this.#queued.splice(0)) d.reject(err);
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
