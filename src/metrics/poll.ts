import type { AppMetricsReply, PrimaryToWorker } from '../common/ipc.js';
import type { Clock, Timer } from '../primary/clock.js';

/** A worker as the poll sees it (a WorkerHandle fits). */
export interface PollTarget {
  readonly slot: number;
  readonly pid: number | undefined;
  readonly proc: { send(message: PrimaryToWorker): void };
}

/** How one worker answered a poll. */
export type PollResult = 'answered' | 'absent' | 'error' | 'timeout' | 'exited';

export interface WorkerMetrics {
  slot: number;
  pid: number | undefined;
  result: PollResult;
  /** One `getMetricsAsJSON()` array per registry, when answered. */
  registries: unknown[][];
  error?: string;
}

interface Round {
  answers: Map<PollTarget, WorkerMetrics | null>;
  timer: Timer;
  resolve(answers: WorkerMetrics[]): void;
}

/**
 * Asks workers for their app's prom-client metrics and gathers the answers.
 * Each round ends when every worker asked has answered or exited, or after
 * `timeoutMs`: a slow or frozen worker costs one short timeout and is
 * reported as such, never a hung scrape. Only the workers handed in are
 * asked, so several apps in one primary never see each other's workers.
 */
export class MetricsPoll {
  readonly #clock: Clock;
  readonly #rounds = new Map<number, Round>();
  #nextId = 1;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  collect(targets: readonly PollTarget[], timeoutMs: number): Promise<WorkerMetrics[]> {
    if (targets.length === 0) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const round: Round = {
        answers: new Map(targets.map((t) => [t, null])),
        timer: this.#clock.setTimeout(() => this.#finish(id), timeoutMs),
        resolve,
      };
      this.#rounds.set(id, round);
      for (const t of targets) t.proc.send({ corral: 1, type: 'collect-metrics', id });
    });
  }

  receive(from: PollTarget, reply: AppMetricsReply): void {
    const round = this.#rounds.get(reply.id);
    if (!round?.answers.has(from)) return;
    const answer =
      'error' in reply
        ? { slot: from.slot, pid: from.pid, result: 'error' as const, registries: [], error: reply.error }
        : { slot: from.slot, pid: from.pid, result: reply.found ? ('answered' as const) : ('absent' as const), registries: reply.registries };
    round.answers.set(from, answer);
    this.#finishIfComplete(reply.id, round);
  }

  /** A worker exited: no answer will come from it. */
  forget(worker: PollTarget): void {
    for (const [id, round] of this.#rounds) {
      if (round.answers.get(worker) !== null) continue;
      round.answers.set(worker, { slot: worker.slot, pid: worker.pid, result: 'exited', registries: [] });
      this.#finishIfComplete(id, round);
    }
  }

  #finishIfComplete(id: number, round: Round): void {
    for (const a of round.answers.values()) if (a === null) return;
    round.timer.cancel();
    this.#finish(id);
  }

  #finish(id: number): void {
    const round = this.#rounds.get(id);
    if (!round) return;
    this.#rounds.delete(id);
    round.resolve([...round.answers].map(([t, a]) => a ?? { slot: t.slot, pid: t.pid, result: 'timeout', registries: [] }));
  }
}
