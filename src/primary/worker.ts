import type { WorkerStats } from '../common/ipc.js';
import type { SpawnedProcess } from './spawn.js';
import type { Clock, Timer } from './clock.js';

export type WorkerState = 'starting' | 'ready' | 'draining' | 'exited';

/** Why a worker was replaced or stopped; counted per slot and shown by `status`. */
export type RestartReason = 'crash' | 'boot-failure' | 'watchdog' | 'memory' | 'max-requests' | 'reload' | 'scale';

export type TimerKind = 'boot' | 'grace' | 'kill' | 'watchdog';

const TRANSITIONS: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['ready', 'draining', 'exited'],
  ready: ['draining', 'exited'],
  draining: ['exited'],
  exited: [],
};

/**
 * One worker process as the supervisor sees it. Its state changes only in
 * `transition()`, which also clears every timer armed for the state it
 * leaves, so no timer outlives the state it was meant for.
 */
export class WorkerHandle {
  #state: WorkerState = 'starting';
  readonly #timers = new Map<TimerKind, Timer>();
  readyAt: number | undefined;
  drainedAt: number | undefined;
  exit: { code: number | null; signal: string | null } | undefined;
  disconnected = false;
  /** Set when the worker should be replaced by a fresh one in its slot. */
  replaceReason: RestartReason | undefined;
  /** Why this worker is draining or was killed, for the slot's record. */
  endReason: RestartReason | 'stop' | undefined;
  /** Killed by corral rather than ended on its own. */
  killed = false;
  stats: WorkerStats | undefined;
  lastHeartbeat: number | undefined;
  cpuPercent = 0;
  overMemoryBeats = 0;
  /** Requests after which this worker is recycled (max-requests + its own jitter). */
  requestLimit: number | undefined;
  address: string | undefined;

  constructor(
    readonly id: number,
    readonly slot: number,
    readonly generation: number,
    readonly proc: SpawnedProcess,
    readonly spawnedAt: number,
  ) {}

  get state(): WorkerState {
    return this.#state;
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Serving or about to: counts toward the slot being filled. */
  get live(): boolean {
    return this.#state === 'starting' || this.#state === 'ready';
  }

  /** Both `exit` and `disconnect` seen: only now may it leave the table. */
  get gone(): boolean {
    return this.exit !== undefined && this.disconnected;
  }

  transition(to: WorkerState, now: number): void {
    if (to === this.#state) return;
    if (!TRANSITIONS[this.#state].includes(to)) {
      throw new Error(`worker ${this.id}: illegal transition ${this.#state} -> ${to}`);
    }
    this.clearTimers();
    this.#state = to;
    if (to === 'ready') this.readyAt = now;
    if (to === 'draining') this.drainedAt = now;
  }

  arm(kind: TimerKind, ms: number, clock: Clock, fire: () => void): void {
    this.disarm(kind);
    this.#timers.set(kind, clock.setTimeout(fire, ms));
  }

  disarm(kind: TimerKind): void {
    const t = this.#timers.get(kind);
    if (t !== undefined) t.cancel();
    this.#timers.delete(kind);
  }

  clearTimers(): void {
    for (const t of this.#timers.values()) t.cancel();
    this.#timers.clear();
  }

  /** Fold a heartbeat in: CPU % over the interval since the previous one. */
  recordHeartbeat(stats: WorkerStats, now: number): void {
    if (this.stats && this.lastHeartbeat !== undefined && now > this.lastHeartbeat) {
      const cpuUs = stats.cpuUser + stats.cpuSystem - (this.stats.cpuUser + this.stats.cpuSystem);
      this.cpuPercent = Math.max(0, (cpuUs / 1000 / (now - this.lastHeartbeat)) * 100);
    }
    this.stats = stats;
    this.lastHeartbeat = now;
  }
}
