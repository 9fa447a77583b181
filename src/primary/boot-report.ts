import { BootError } from '../common/errors.js';
import type { LogRecord, LogSink } from '../logs/sink.js';
import { summarizeError } from '../logs/worker-output.js';
import { isCrashLoop } from './backoff.js';
import type { ExitInfo, WorkerHandle } from './worker.js';

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

  constructor(private readonly sink: LogSink) {}

  /** Print the worker's held boot output (unless a repeat) and name why it failed. */
  failedStart(w: WorkerHandle): FailedStart {
    const held = w.proc.takeHeldOutput();
    const cause = summarizeError(held.filter((r) => r.level === 'error').map((r) => r.msg)) ?? summarizeError(w.proc.recentErrors());
    const repeated = !this.#show(held);
    this.#cause ??= cause;
    return { reason: `${describeExit(w.exit)}${cause ? `: ${cause}` : ''}`, repeated };
  }

  /** Why a worker that had served died: its exit and the error it printed last. */
  crashReason(w: WorkerHandle): string {
    const cause = summarizeError(w.proc.recentErrors());
    return `${describeExit(w.exit)}${cause ? `: ${cause}` : ''}`;
  }

  /** A failed start that printed nothing (fork itself failed): its error is the cause. */
  noteCause(cause: string): void {
    this.#cause ??= cause;
  }

  /** Count a failed start before anything was ever ready; a BootError once that means a crash loop. */
  crashLoop(everReady: boolean, exit: ExitInfo | undefined, script: string): BootError | null {
    if (everReady) return null;
    this.#failures += 1;
    if (!isCrashLoop(everReady, this.#failures)) return null;
    return new BootError(`the app cannot start: ${this.#cause ?? describeExit(exit)} (${script}); fix it and start again`);
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

export function describeExit(exit: ExitInfo | undefined): string {
  if (exit?.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit?.code ?? 'unknown'}`;
}
