import { styleText } from 'node:util';

export type LogLevel = 'info' | 'warn' | 'error';

export interface LogRecord {
  time: Date;
  level: LogLevel;
  source: 'corral' | 'worker';
  /** Worker slot, for lines from a worker. */
  worker?: number;
  pid?: number;
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
}

interface Out {
  write(text: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
  isTTY?: boolean;
}

abstract class StreamSink implements LogSink {
  constructor(
    protected readonly out: Out,
    protected readonly err: Out,
  ) {}

  protected target(record: LogRecord): Out {
    return record.level === 'info' && record.source === 'worker' ? this.out : this.err;
  }

  abstract write(record: LogRecord): boolean;

  onDrain(listener: () => void): void {
    // Either stream may be the one that filled up; resume on the first drain.
    let called = false;
    const once = (): void => {
      if (!called) listener();
      called = true;
    };
    this.out.once('drain', once);
    this.err.once('drain', once);
  }
}

/** `[web 2 41233] listening`, or the bare line with prefixes off; corral's own lines marked `[corral]`. */
export class TextSink extends StreamSink {
  constructor(
    private readonly name: string,
    private readonly prefix: boolean,
    out: Out = process.stdout,
    err: Out = process.stderr,
  ) {
    super(out, err);
  }

  write(record: LogRecord): boolean {
    const target = this.target(record);
    if (record.source === 'corral') {
      const tag = `[corral ${this.name}]`;
      const colored = target.isTTY ? styleText(record.level === 'info' ? 'cyan' : record.level === 'warn' ? 'yellow' : 'red', tag) : tag;
      return target.write(`${colored} ${record.msg}\n`);
    }
    if (!this.prefix) return target.write(`${record.msg}\n`);
    return target.write(`[${this.name} ${record.worker ?? '-'} ${record.pid ?? '-'}] ${record.msg}\n`);
  }
}

/** One JSON object a line: time, level, source, worker, pid, msg. */
export class JsonSink extends StreamSink {
  constructor(
    private readonly name: string,
    out: Out = process.stdout,
    err: Out = process.stderr,
  ) {
    super(out, err);
  }

  write(record: LogRecord): boolean {
    const line = JSON.stringify({
      time: record.time.toISOString(),
      level: record.level,
      source: record.source,
      app: this.name,
      worker: record.worker ?? null,
      pid: record.pid ?? null,
      msg: record.msg,
    });
    return this.target(record).write(`${line}\n`);
  }
}
