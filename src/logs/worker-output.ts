import type { Readable } from 'node:stream';
import { LineSplitter } from './lines.js';
import { corralRecord, type LogRecord, type LogSink } from './sink.js';

const MAX_HELD_LINES = 2000;
const RECENT_ERRORS = 50;
/**
 * A served worker's stderr lines wait this long before they are printed,
 * so that the trace a dying worker prints can be taken by the supervisor
 * and, when it repeats the previous crash of its slot, counted instead of
 * shown again. A stdout line, or a long burst, prints them at once.
 */
export const ERROR_BURST_MS = 150;
const MAX_BURST_LINES = 200;

interface HeldLine {
  record: LogRecord;
}

/**
 * Carries one worker's stdout and stderr to the sink, a whole line at a
 * time. While the worker is booting its lines are held back (up to
 * `holdMs`), so that when N workers die at boot with the same stack trace
 * the supervisor can show it once instead of N times.
 */
export class WorkerOutput {
  #held: HeldLine[] | null = [];
  #dropped = 0;
  readonly #recentErrors: string[] = [];
  #burst: { record: LogRecord; stream: Readable }[] = [];
  #burstTimer: NodeJS.Timeout | undefined;
  readonly #holdTimer: NodeJS.Timeout;
  readonly closed: Promise<void>;

  constructor(
    private readonly sink: LogSink,
    private slot: number,
    private readonly pid: number,
    streams: { stdout: Readable | null; stderr: Readable | null },
    holdMs: number,
  ) {
    this.#holdTimer = setTimeout(() => this.release(), holdMs);
    this.#holdTimer.unref();
    this.closed = Promise.all([this.#pipe(streams.stdout, 'info'), this.#pipe(streams.stderr, 'error')]).then(() => {});
  }

  /** A promoted spare's lines carry its new slot. */
  assignSlot(slot: number): void {
    this.slot = slot;
  }

  /** Print what was held (boot output, error lines not yet shown) and pass every later line straight through. */
  release(): void {
    clearTimeout(this.#holdTimer);
    if (this.#burst.length > 0) this.#flushBurst();
    const held = this.#held;
    this.#held = null;
    if (!held) return;
    for (const h of held) this.sink.write(h.record);
    if (this.#dropped > 0) this.#corralNote(`(${this.#dropped} earlier lines of worker ${this.slot} dropped while it was booting)`);
  }

  /** Take the held lines without printing them (the caller decides). */
  takeHeld(): LogRecord[] {
    clearTimeout(this.#holdTimer);
    const held = this.#held ?? [];
    this.#held = null;
    return held.map((h) => h.record);
  }

  /** The stderr lines not yet printed: the output of a worker that just died. */
  takeBurst(): LogRecord[] {
    clearTimeout(this.#burstTimer);
    return this.#burst.splice(0).map((b) => b.record);
  }

  #flushBurst(): void {
    clearTimeout(this.#burstTimer);
    for (const { record, stream } of this.#burst.splice(0)) this.#write(stream, record);
  }

  /** The last lines the worker wrote to stderr, for naming a failure. */
  recentErrors(): string[] {
    return [...this.#recentErrors];
  }

  #corralNote(msg: string): void {
    this.sink.write(corralRecord('warn', msg));
  }

  #pipe(stream: Readable | null, level: 'info' | 'error'): Promise<void> {
    if (!stream) return Promise.resolve();
    stream.setEncoding('utf8');
    const splitter = new LineSplitter((msg) => this.#line(stream, level, msg));
    stream.on('data', (chunk: string) => splitter.push(chunk));
    return new Promise((resolve) => {
      const finish = (): void => {
        splitter.flush();
        resolve();
      };
      stream.once('end', finish);
      stream.once('close', finish);
      stream.once('error', finish);
    });
  }

  #line(stream: Readable, level: 'info' | 'error', msg: string): void {
    if (level === 'error') {
      this.#recentErrors.push(msg);
      if (this.#recentErrors.length > RECENT_ERRORS) this.#recentErrors.shift();
    }
    const record: LogRecord = { time: new Date(), level, source: 'worker', worker: this.slot, pid: this.pid, msg };
    if (this.#held) {
      if (this.#held.length < MAX_HELD_LINES) this.#held.push({ record });
      else this.#dropped += 1;
      return;
    }
    if (level === 'error') {
      this.#burst.push({ record, stream });
      if (this.#burst.length >= MAX_BURST_LINES) this.#flushBurst();
      else if (this.#burst.length === 1) {
        this.#burstTimer = setTimeout(() => this.#flushBurst(), ERROR_BURST_MS);
        this.#burstTimer.unref();
      }
      return;
    }
    // Keep the order the worker wrote in: held error lines go first.
    if (this.#burst.length > 0) this.#flushBurst();
    this.#write(stream, record);
  }

  #write(stream: Readable, record: LogRecord): void {
    // Backpressure: a slow reader of our stdout pauses the worker's pipe
    // instead of letting the primary buffer without bound.
    if (!this.sink.write(record) && !stream.isPaused()) {
      stream.pause();
      this.sink.onDrain(() => stream.resume());
    }
  }
}

/**
 * The line that names a crash: Node prints `SomeError: message` (or
 * `Error [CODE]: message`) after the source excerpt of an uncaught error.
 */
export function summarizeError(lines: readonly string[]): string | undefined {
  const re = /^(?:Uncaught )?[A-Za-z]*(?:Error|Exception)(?: \[[A-Z0-9_]+\])?: .+|^\[?[A-Z][A-Za-z]*Error\]?$/;
  const hit = lines.find((l) => re.test(l.trim()));
  if (hit) return explainError(hit.trim());
  const meaningful = lines.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('at ') && l !== '^' && !l.startsWith('Node.js v'));
  return meaningful[meaningful.length - 1];
}

/**
 * Node's wording of some errors names a syscall, not the problem: inside a
 * cluster worker a taken port reads `bind EADDRINUSE null:4251`.
 */
export function explainError(line: string): string {
  const inUse = /EADDRINUSE\b.*?(?:\[[^\]]*\]|[^\s:]*):(\d+)\s*$/.exec(line);
  if (inUse) return `port ${inUse[1]} is already in use (by another process); find it with: ss -ltnp 'sport = :${inUse[1]}'`;
  return line;
}
