import type { LogRecord } from './sink.js';

/** One source's lines (a worker slot's, or corral's own), oldest first. */
interface Ring {
  entries: { seq: number; record: LogRecord; bytes: number }[];
  bytes: number;
}

/** Besides the line count, each source keeps at most this much text, so long lines cannot make the ring large. */
export const RING_BYTES_PER_SOURCE = 2 * 1024 * 1024;

/** A record as it travels over the control socket (the time as ISO text). */
export interface WireRecord {
  time: string;
  level: LogRecord['level'];
  source: LogRecord['source'];
  worker?: number;
  pid?: number;
  msg: string;
}

/**
 * The last lines of every worker slot and of corral itself, for
 * `corral logs`: each source is a bounded ring (a crash-looping slot cannot
 * push the others' lines out), and followers see new lines as they come.
 */
export class LogRing {
  readonly #rings = new Map<string, Ring>();
  readonly #followers = new Set<(record: LogRecord) => void>();
  #seq = 0;

  constructor(private readonly linesPerSource: number) {}

  add(record: LogRecord): void {
    if (this.linesPerSource > 0) this.#keep(record);
    for (const follow of this.#followers) follow(record);
  }

  #keep(record: LogRecord): void {
    const key = record.source === 'corral' ? 'corral' : String(record.worker ?? '-');
    let ring = this.#rings.get(key);
    if (!ring) this.#rings.set(key, (ring = { entries: [], bytes: 0 }));
    const bytes = record.msg.length;
    ring.entries.push({ seq: this.#seq++, record, bytes });
    ring.bytes += bytes;
    while (ring.entries.length > this.linesPerSource || (ring.bytes > RING_BYTES_PER_SOURCE && ring.entries.length > 1)) {
      ring.bytes -= ring.entries.shift()!.bytes;
    }
  }

  /** The last `n` lines over every source, in the order they were written. */
  recent(n: number): LogRecord[] {
    if (n <= 0) return [];
    const all = [...this.#rings.values()].flatMap((r) => r.entries.slice(-n));
    return all.sort((a, b) => a.seq - b.seq).slice(-n).map((e) => e.record);
  }

  /** Call `listener` with every line from now on; returns the function that stops it. */
  follow(listener: (record: LogRecord) => void): () => void {
    this.#followers.add(listener);
    return () => this.#followers.delete(listener);
  }
}

export function toWire(r: LogRecord): WireRecord {
  return {
    time: r.time.toISOString(),
    level: r.level,
    source: r.source,
    ...(r.worker !== undefined ? { worker: r.worker } : {}),
    ...(r.pid !== undefined ? { pid: r.pid } : {}),
    msg: r.msg,
  };
}

export function fromWire(w: WireRecord): LogRecord {
  return { time: new Date(w.time), level: w.level, source: w.source, worker: w.worker, pid: w.pid, msg: w.msg } as LogRecord;
}
