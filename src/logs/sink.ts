import { styleText } from 'node:util';

/** 'debug' lines are printed only with CORRAL_DEBUG=1. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const SHOW_DEBUG = process.env.CORRAL_DEBUG === '1';

export interface LogRecord {
  time: Date;
  level: LogLevel;
  source: 'corral' | 'worker';
  /** Worker slot, for lines from a worker. */
  worker?: number;
  pid?: number | undefined;
  msg: string;
}

/** One of corral's own lines. */
export function corralRecord(level: LogLevel, msg: string, time = new Date()): LogRecord {
  return { time, level, source: 'corral', msg };
}

/** Where log lines go. Returns false when the destination wants the producer to pause. */
export interface LogSink {
  write(record: LogRecord): boolean;
  /** Called once when the destination can take more after write() returned false. */
  onDrain(listener: () => void): void;
  /** Lines dropped because the reader was gone or stalled too long. */
  readonly dropped?: number;
}

export interface Out {
  write(text: string): boolean;
  on(event: 'drain', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  isTTY?: boolean;
}

/**
 * A reader that stops reading for this long is treated as stalled: worker
 * output is dropped (and counted) instead of pausing the workers further.
 * Well under the watchdog, so a stalled log reader never costs a worker.
 */
export const STALL_MS = 2000;

/**
 * One output stream and what became of its reader. Back-pressure first
 * (producers pause when it is full), but losing the reader must never stop
 * the service: a closed pipe (EPIPE) or a reader stalled beyond STALL_MS
 * turns writes into counted drops, and the producers resume.
 */
class Destination {
  #state: 'open' | 'blocked' | 'dropping' | 'dead' = 'open';
  #blockedAt = 0;
  #stallTimer: NodeJS.Timeout | undefined;
  #waiting: Array<() => void> = [];
  #droppedNow = 0;
  dropped = 0;

  constructor(
    readonly out: Out,
    private readonly name: string,
    private readonly note: (msg: string) => void,
  ) {
    out.on('drain', () => this.#drained());
    out.on('error', (err: Error) => this.#died(err));
  }

  write(text: string): boolean {
    if (this.#state === 'dead' || this.#state === 'dropping') {
      this.dropped += 1;
      this.#droppedNow += 1;
      return true;
    }
    let ok: boolean;
    try {
      ok = this.out.write(text);
    } catch (err) {
      this.#died(err as Error);
      return true;
    }
    if (!ok && this.#state === 'open') this.#block();
    return ok;
  }

  onDrain(listener: () => void): void {
    if (this.#state === 'blocked') this.#waiting.push(listener);
    else queueMicrotask(listener);
  }

  get usable(): boolean {
    return this.#state !== 'dead';
  }

  #block(): void {
    this.#state = 'blocked';
    this.#blockedAt = Date.now();
    this.#stallTimer = setTimeout(() => {
      this.#state = 'dropping';
      this.#release();
    }, STALL_MS);
    this.#stallTimer.unref();
  }

  #drained(): void {
    if (this.#state === 'dead') return;
    clearTimeout(this.#stallTimer);
    const dropped = this.#droppedNow;
    const stalledMs = Date.now() - this.#blockedAt;
    this.#state = 'open';
    this.#droppedNow = 0;
    this.#release();
    if (dropped > 0) this.note(`${dropped} log line${dropped === 1 ? '' : 's'} dropped while ${this.name} was blocked for ${(stalledMs / 1000).toFixed(1)} s`);
  }

  #died(err: Error): void {
    if (this.#state === 'dead') return;
    clearTimeout(this.#stallTimer);
    this.#state = 'dead';
    this.#release();
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    this.note(`${this.name} is closed (${code}); its lines are dropped from now on, the cluster keeps serving`);
  }

  #release(): void {
    for (const fn of this.#waiting.splice(0)) fn();
  }
}

abstract class StreamSink implements LogSink {
  readonly #out: Destination;
  readonly #err: Destination;

  constructor(out: Out, err: Out) {
    this.#out = new Destination(out, 'stdout', (msg) => this.#noteOn(this.#err, msg));
    this.#err = new Destination(err, 'stderr', (msg) => this.#noteOn(this.#out, msg));
  }

  protected abstract format(record: LogRecord, tty: boolean): string;

  write(record: LogRecord): boolean {
    if (record.level === 'debug' && !SHOW_DEBUG) return true;
    const dest = record.level === 'info' && record.source === 'worker' ? this.#out : this.#err;
    return dest.write(this.format(record, dest.out.isTTY === true));
  }

  /** Either stream may be the one that filled up; resume on the first drain. */
  onDrain(listener: () => void): void {
    let called = false;
    const once = (): void => {
      if (!called) listener();
      called = true;
    };
    this.#out.onDrain(once);
    this.#err.onDrain(once);
  }

  get dropped(): number {
    return this.#out.dropped + this.#err.dropped;
  }

  /** corral's note about one stream goes to the other, if that one still has a reader. */
  #noteOn(dest: Destination, msg: string): void {
    if (dest.usable) dest.write(this.format(corralRecord('warn', msg), dest.out.isTTY === true));
  }
}

export interface TextStyle {
  /** `[name slot pid]` before worker lines (else the bare line). */
  prefix: boolean;
  /** An ISO timestamp first. */
  time: boolean;
  /** Colour corral's tag by level. */
  color: boolean;
}

/** `[web 2 41233] listening`, or the bare line with prefixes off; corral's own lines marked `[corral web]`. */
export function textLine(record: LogRecord, name: string, style: TextStyle): string {
  const stamp = style.time ? `${record.time.toISOString()} ` : '';
  if (record.source === 'corral') {
    const tag = `[corral ${name}]`;
    const color = record.level === 'error' ? 'red' : record.level === 'warn' ? 'yellow' : record.level === 'debug' ? 'gray' : 'cyan';
    const colored = style.color ? styleText(color, tag) : tag;
    // A stack trace keeps the tag on every line, so no line of it reads as a worker's.
    return record.msg.split('\n').map((line) => `${stamp}${colored} ${line}\n`).join('');
  }
  if (!style.prefix) return `${stamp}${record.msg}\n`;
  const slot = record.worker === undefined ? '-' : record.worker < 0 ? 'spare' : record.worker;
  return `${stamp}[${name} ${slot} ${record.pid ?? '-'}] ${record.msg}\n`;
}

export class TextSink extends StreamSink {
  constructor(
    private readonly name: string,
    private readonly prefix: boolean,
    out: Out = process.stdout,
    err: Out = process.stderr,
    private readonly time = false,
  ) {
    super(out, err);
  }

  protected format(record: LogRecord, tty: boolean): string {
    return textLine(record, this.name, { prefix: this.prefix, time: this.time, color: tty });
  }
}

/**
 * One JSON object a line: time, level, source, app, worker, pid, msg. A
 * worker line that is itself a JSON object (pino, bunyan, winston's JSON
 * format) keeps its own fields (its time, level and msg too) and gains
 * corral's app, worker, pid and source, instead of arriving as a string.
 */
export function jsonLine(record: LogRecord, app: string): string {
  const own = record.source === 'worker' ? appObject(record.msg) : undefined;
  const spare = record.worker !== undefined && record.worker < 0;
  const ours = { source: record.source, app, worker: record.worker === undefined || spare ? null : record.worker, ...(spare ? { spare: true } : {}), pid: record.pid ?? null };
  if (own) return `${JSON.stringify({ time: record.time.toISOString(), level: record.level, ...own, ...ours })}\n`;
  return `${JSON.stringify({ time: record.time.toISOString(), level: record.level, ...ours, msg: record.msg })}\n`;
}

function appObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{') || !line.endsWith('}')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export class JsonSink extends StreamSink {
  constructor(
    private readonly name: string,
    out: Out = process.stdout,
    err: Out = process.stderr,
  ) {
    super(out, err);
  }

  protected format(record: LogRecord): string {
    return jsonLine(record, this.name);
  }
}

/** Every record also goes to a recorder (the ring `corral logs` reads), then on to the real sink. */
export class TeeSink implements LogSink {
  constructor(
    private readonly inner: LogSink,
    private readonly record: (r: LogRecord) => void,
  ) {}

  write(r: LogRecord): boolean {
    if (r.level !== 'debug' || SHOW_DEBUG) this.record(r);
    return this.inner.write(r);
  }

  onDrain(listener: () => void): void {
    this.inner.onDrain(listener);
  }

  get dropped(): number {
    return this.inner.dropped ?? 0;
  }
}
