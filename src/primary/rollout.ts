import type { WorkerHandle } from './worker.js';

/**
 * After the verify window, a canary that has not sent one heartbeat since it
 * listened gets this much longer; then it is judged hung and the reload fails.
 */
export const CANARY_HEARTBEAT_SLACK_MS = 2000;

export type CanaryVerdict = { kind: 'pass' } | { kind: 'wait'; ms: number } | { kind: 'fail'; reason: string };

/**
 * One rolling reload: the generation it rolls out, the one it replaces, and
 * its canary. The first replacement beside an old worker is the canary: no
 * other slot is touched, and the old worker of its slot keeps serving beside
 * it, until it has stayed up (and reported) for the verify window. A release
 * that crashes a second after it listens is refused there, at the cost of at
 * most the canary's own requests.
 */
export class Rollout {
  #canary: WorkerHandle | null = null;
  #verified = false;

  constructor(
    readonly target: number,
    readonly previous: number,
    readonly verifyMs: number,
  ) {}

  get canary(): WorkerHandle | null {
    return this.#canary;
  }

  get verified(): boolean {
    return this.#verified;
  }

  /** Out of date for this reload: any other generation. */
  isStale(w: WorkerHandle): boolean {
    return w.generation !== this.target;
  }

  /** May another replacement start beside an old worker? One canary until it passes. */
  mayStartReplacement(): boolean {
    return this.#verified || this.#canary === null || this.verifyMs === 0;
  }

  /** A replacement was started; the first one is the canary. */
  noteReplacement(w: WorkerHandle): void {
    if (this.#canary === null && !this.#verified) this.#canary = w;
    if (this.verifyMs === 0) this.#verified = true;
  }

  /** May the old worker beside `fresh` be drained? Not while `fresh` is the canary in its window. */
  mayRetireOld(fresh: WorkerHandle): boolean {
    return this.#verified || fresh !== this.#canary;
  }

  /** When the canary's verify timer fires: up, and heard from since it listened? */
  judgeCanary(now: number): CanaryVerdict {
    const c = this.#canary;
    if (!c || c.state !== 'ready' || c.readyAt === undefined) return { kind: 'fail', reason: 'the canary is gone' };
    const up = now - c.readyAt;
    if (up < this.verifyMs) return { kind: 'wait', ms: this.verifyMs - up };
    if (c.lastHeartbeat !== undefined && c.lastHeartbeat > c.readyAt) {
      this.#verified = true;
      return { kind: 'pass' };
    }
    if (up < this.verifyMs + CANARY_HEARTBEAT_SLACK_MS) return { kind: 'wait', ms: 250 };
    return { kind: 'fail', reason: `${c.label} listened but sent no heartbeat for ${up} ms (its event loop is blocked)` };
  }
}
