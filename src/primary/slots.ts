import { failuresAfterExit, restartDelay, type BackoffPolicy } from './backoff.js';
import type { RestartReason } from './worker.js';

export interface SlotRecord {
  /** Consecutive failures, for the back-off. */
  failures: number;
  /** No new worker for this slot before this time. */
  respawnAt: number;
  restarts: number;
  reasons: Partial<Record<RestartReason, number>>;
}

/**
 * What the supervisor remembers about each slot across its workers: the
 * back-off state and how often, and why, its worker was replaced.
 */
export class SlotTable {
  readonly #slots = new Map<number, SlotRecord>();

  constructor(private readonly backoff: BackoffPolicy) {}

  get(slot: number): SlotRecord {
    let s = this.#slots.get(slot);
    if (!s) {
      s = { failures: 0, respawnAt: 0, restarts: 0, reasons: {} };
      this.#slots.set(slot, s);
    }
    return s;
  }

  /** The slot's record as it stands, without creating one (a slot never seen reads as empty). */
  view(slot: number): SlotRecord {
    return this.#slots.get(slot) ?? { failures: 0, respawnAt: 0, restarts: 0, reasons: {} };
  }

  /** Slots at or above `count` were removed by a scale-down: their history no longer counts. */
  forgetFrom(count: number): void {
    for (const slot of this.#slots.keys()) if (slot >= count) this.#slots.delete(slot);
  }

  countRestart(slot: number, reason: RestartReason): void {
    const s = this.get(slot);
    s.restarts += 1;
    s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
  }

  /** A worker that never became ready: one more consecutive failure. Returns the delay before the next try. */
  failedStart(slot: number, now: number): number {
    const s = this.get(slot);
    s.failures += 1;
    const delay = restartDelay(s.failures, this.backoff);
    s.respawnAt = now + delay;
    return delay;
  }

  /** A worker that had served ended unexpectedly after `upMs`. Returns the delay before the next try. */
  crashed(slot: number, now: number, upMs: number): number {
    const s = this.get(slot);
    s.failures = failuresAfterExit(s.failures, upMs, this.backoff);
    const delay = restartDelay(s.failures, this.backoff);
    s.respawnAt = now + delay;
    return delay;
  }

}
