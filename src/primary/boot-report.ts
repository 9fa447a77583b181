import { BootError } from '../common/errors.js';
import type { LogRecord, LogSink } from '../logs/sink.js';
import { summarizeError } from '../logs/worker-output.js';
import { isCrashLoop } from './backoff.js';
import type { ExitInfo, WorkerHandle } from './worker.js';

export interface Crash {
  /** "exited with code 1: Error: boom" */
  reason: string;
  /** How many crashes before this one in a row printed the same output (0: it was shown). */
  repeats: number;
}

export interface FailedStart {
  /** "exited with code 1: Error: boom" */
  reason: string;
  /** The worker printed the same output as the previous failed start (not shown again). */
  repeated: boolean;
}

/**
 * What failed starts printed and what they mean: N workers that die at
 * boot usually print the same stack trace, so it is shown once; before the
 * cluster ever served, a few failed starts mean the app cannot start.
 */
export class BootReport {
  #lastOutput: string | undefined;
  #failures = 0;
  /** The first error a failed start printed: what the crash-loop message names. */
  #cause: string | undefined;
  /** Per slot: the output its last crash printed, and how many crashes since repeated it. */
  readonly #lastCrash = new Map<number, { text: string; repeats: number }>();

  constructor(private readonly sink: LogSink) {}

  /** Print the worker's held boot output (unless a repeat) and name why it failed. */
  failedStart(w: WorkerHandle): FailedStart {
    const held = w.proc.takeHeldOutput();
    const cause = summarizeError(held.filter((r) => r.level === 'error').map((r) => r.msg)) ?? summarizeError(w.proc.recentErrors());
    const repeated = !this.#show(held);
    this.#cause ??= cause;
    return { reason: `${describeEnd(w)}${cause ? `: ${cause}` : ''}`, repeated };
  }

  /** A worker ended while it booted (a stop, a failed reload): what it printed, unless the same was shown already. */
  showHeld(w: WorkerHandle): void {
    this.#show(w.proc.takeHeldOutput());
  }

  /** Why a worker that had served died: its exit and the error it printed last. */
  crashReason(w: WorkerHandle): string {
    const cause = summarizeError(w.proc.recentErrors());
    return `${describeEnd(w)}${cause ? `: ${cause}` : ''}`;
  }

  /**
   * A worker that had served died. The error output it printed as it died
   * (held back briefly by its output pipe) is shown unless the slot's
   * previous crash printed exactly the same; then only counted.
   */
  crashed(w: WorkerHandle): Crash {
    const burst = w.proc.takeCrashOutput();
    const text = burst.map((r) => r.msg).join('\n');
    const last = this.#lastCrash.get(w.slot);
    let repeats = 0;
    if (text !== '' && last?.text === text) repeats = last.repeats += 1;
    else {
      for (const r of burst) this.sink.write(r);
      this.#lastCrash.set(w.slot, { text, repeats: 0 });
    }
    return { reason: this.crashReason(w), repeats };
  }

  /** A failed start that printed nothing (fork itself failed): its error is the cause. */
  noteCause(cause: string): void {
    this.#cause ??= cause;
  }

  /** Count a failed start before anything was ever ready; a BootError once that means a crash loop. */
  crashLoop(everReady: boolean, end: string, script: string): BootError | null {
    if (everReady) return null;
    this.#failures += 1;
    if (!isCrashLoop(everReady, this.#failures)) return null;
    return new BootError(`the app cannot start: ${this.#cause ?? end} (${script}); fix it and start again`);
  }

  #show(held: LogRecord[]): boolean {
    const text = held.map((r) => r.msg).join('\n');
    if (text === '') return true;
    if (text === this.#lastOutput) return false;
    this.#lastOutput = text;
    for (const r of held) this.sink.write(r);
    return true;
  }
}

/** How a worker ended, in the words of whoever ended it: corral's reason when corral killed it for one. */
export function describeEnd(w: WorkerHandle): string {
  return w.killedFor ?? describeExit(w.exit);
}

export function describeExit(exit: ExitInfo | undefined): string {
  if (exit?.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit?.code ?? 'unknown'}`;
}
