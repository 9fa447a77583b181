import { corralRecord, type LogSink } from '../logs/sink.js';

const MAX_REMEMBERED = 100;

/**
 * Errors thrown by user code running in the primary (event listeners,
 * request handlers) must not take the primary down. Each distinct error is
 * logged once, with its stack; repeats of it are counted, not printed.
 */
export class UserErrors {
  readonly #seen = new Map<string, number>();

  constructor(private readonly sink: LogSink) {}

  report(source: string, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    const key = `${source}\0${e.message}`;
    const count = (this.#seen.get(key) ?? 0) + 1;
    if (this.#seen.size < MAX_REMEMBERED || this.#seen.has(key)) this.#seen.set(key, count);
    if (count > 1) return;
    this.sink.write(corralRecord('error', `${source} threw (the primary keeps running; shown once): ${e.stack ?? e.message}`));
  }

  /** How often each distinct error was thrown, for status. */
  get total(): number {
    let n = 0;
    for (const c of this.#seen.values()) n += c;
    return n;
  }
}

type Listener<A extends unknown[]> = (...args: A) => void;

/**
 * The cluster's events for user code. Listeners run outside the
 * supervisor's loop (after the event that caused them has been handled),
 * each guarded: one that throws is reported and the others still run.
 */
export class ListenerBus<E extends { [K in keyof E]: unknown[] }> {
  readonly #listeners = new Map<keyof E, Set<Listener<never>>>();

  constructor(private readonly errors: UserErrors) {}

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): void {
    this.#listeners.get(event)?.delete(listener as Listener<never>);
  }

  emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    const listeners = [...set] as Listener<E[K]>[];
    queueMicrotask(() => {
      for (const fn of listeners) {
        try {
          fn(...args);
        } catch (err) {
          this.errors.report(`a '${String(event)}' listener`, err);
        }
      }
    });
  }
}
