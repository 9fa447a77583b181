import type { WorkerStats } from '../common/ipc.js';
import type { SpawnedProcess } from './spawn.js';
import type { Clock, Timer } from './clock.js';

/**
 * starting -> ready -> draining -> exited. A warm spare boots with no slot:
 * starting -> spare (booted, its listens held), then promoted: spare ->
 * starting (in a slot, listening) -> ready.
 */
export type WorkerState = 'starting' | 'spare' | 'ready' | 'draining' | 'exited';

/** The slot of a warm spare until it is promoted. */
export const SPARE_SLOT = -1;

/**
 * Why a worker was replaced unplanned; counted per slot as its restarts and
 * shown by `status`. Reloads and scaling are planned: the generation, the
 * reload counts and the desired count show those.
 */
export type RestartReason = 'crash' | 'boot-failure' | 'watchdog' | 'memory' | 'max-requests' | 'signal';

/** Why a worker is replaced: a restart, or a planned change (reload, scale). */
export type ReplaceReason = RestartReason | 'reload' | 'scale';

/** Why a worker ended: a replacement, or the cluster stopping. */
export type EndReason = ReplaceReason | 'stop';

const UNPLANNED: ReadonlySet<string> = new Set<RestartReason>(['crash', 'boot-failure', 'watchdog', 'memory', 'max-requests', 'signal']);

/** Counted as a restart of its slot (reload, scale and stop are not). */
export function isRestart(reason: EndReason): reason is RestartReason {
  return UNPLANNED.has(reason);
}

export type TimerKind = 'boot' | 'grace' | 'kill' | 'watchdog' | 'verify' | 'hint';

const TRANSITIONS: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['ready', 'spare', 'draining', 'exited'],
  spare: ['starting', 'draining', 'exited'],
  ready: ['draining', 'exited'],
  draining: ['exited'],
  exited: [],
};

export interface ExitInfo {
  code: number | null;
  signal: string | null;
}

/**
 * One worker process as the supervisor sees it. Its state changes only in
 * `transition()`, which also clears every timer armed for the state it
 * leaves, so no timer outlives the state it was meant for. Everything else
 * it knows (heartbeats, why it ends) changes through a named method.
 */
export class WorkerHandle {
  #state: WorkerState = 'starting';
  readonly #timers = new Map<TimerKind, Timer>();
  #readyAt: number | undefined;
  #exit: ExitInfo | undefined;
  #disconnected = false;
  #replaceReason: ReplaceReason | undefined;
  #killedFor: string | undefined;
  #endReason: EndReason | undefined;
  #killed = false;
  #stats: WorkerStats | undefined;
  #lastHeartbeat: number | undefined;
  #cpuPercent = 0;
  #overMemoryBeats = 0;
  #address: string | undefined;
  #slot: number;
  #promotedAt: number | undefined;

  constructor(
    readonly id: number,
    slot: number,
    readonly generation: number,
    readonly proc: SpawnedProcess,
    readonly spawnedAt: number,
    /** Requests after which this worker is recycled (max-requests + its own jitter). */
    readonly requestLimit: number | undefined,
  ) {
    this.#slot = slot;
  }

  /** Its slot, 0..desired-1; SPARE_SLOT for a spare not yet promoted. */
  get slot(): number {
    return this.#slot;
  }

  /** Booted (or booting) as a warm spare and not promoted yet. */
  get isSpare(): boolean {
    return this.#slot === SPARE_SLOT;
  }

  /** When it was promoted, if it began as a spare. */
  get promotedAt(): number | undefined {
    return this.#promotedAt;
  }

  get state(): WorkerState {
    return this.#state;
  }

  /** Undefined only for a process that could not be created. */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** "worker 2 (pid 4711)", or "spare (pid 4711)", how the log names it. */
  get label(): string {
    return `${this.isSpare ? 'spare' : `worker ${this.#slot}`} (pid ${this.pid ?? 'none'})`;
  }

  /** A spare takes a slot: it is starting again until its held listens are done. */
  promoteTo(slot: number, now: number): void {
    if (this.#state !== 'spare') throw new Error(`worker ${this.id}: only a spare can be promoted (it is ${this.#state})`);
    this.transition('starting', now);
    this.#slot = slot;
    this.#promotedAt = now;
  }

  /** Serving or about to: counts toward the slot being filled. */
  get live(): boolean {
    return this.#state === 'starting' || this.#state === 'ready';
  }

  /** Both `exit` and `disconnect` seen: only now may it leave the table. */
  get gone(): boolean {
    return this.#exit !== undefined && this.#disconnected;
  }

  get readyAt(): number | undefined {
    return this.#readyAt;
  }

  get exit(): ExitInfo | undefined {
    return this.#exit;
  }

  /** Set when the worker should be replaced by a fresh one in its slot. */
  get replaceReason(): ReplaceReason | undefined {
    return this.#replaceReason;
  }

  /** Why this worker is draining or was killed, for the slot's record. */
  get endReason(): EndReason | undefined {
    return this.#endReason;
  }

  /** Killed by corral rather than ended on its own. */
  get killed(): boolean {
    return this.#killed;
  }

  get stats(): WorkerStats | undefined {
    return this.#stats;
  }

  get lastHeartbeat(): number | undefined {
    return this.#lastHeartbeat;
  }

  get cpuPercent(): number {
    return this.#cpuPercent;
  }

  get address(): string | undefined {
    return this.#address;
  }

  transition(to: WorkerState, now: number): void {
    if (to === this.#state) return;
    if (!TRANSITIONS[this.#state].includes(to)) {
      throw new Error(`worker ${this.id}: illegal transition ${this.#state} -> ${to}`);
    }
    this.clearTimers();
    this.#state = to;
    if (to === 'ready') this.#readyAt = now;
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

  /** The first address it listened on, for the log and status. */
  noteAddress(address: string): void {
    this.#address ??= address;
  }

  markForReplacement(reason: ReplaceReason): void {
    this.#replaceReason ??= reason;
  }

  endBecause(reason: EndReason): void {
    this.#endReason = reason;
  }

  noteKilled(): void {
    this.#killed = true;
  }

  /** corral killed it for a reason the exit signal does not tell ("did not become ready within 30000 ms"). */
  noteKilledFor(why: string): void {
    this.#killedFor ??= why;
  }

  get killedFor(): string | undefined {
    return this.#killedFor;
  }

  noteExit(info: ExitInfo): void {
    this.#exit ??= info;
  }

  noteDisconnect(): void {
    this.#disconnected = true;
  }

  /** Fold a heartbeat in: CPU % over the interval since the previous one. */
  recordHeartbeat(stats: WorkerStats, now: number): void {
    if (this.#stats && this.#lastHeartbeat !== undefined && now > this.#lastHeartbeat) {
      const cpuUs = stats.cpuUser + stats.cpuSystem - (this.#stats.cpuUser + this.#stats.cpuSystem);
      this.#cpuPercent = Math.max(0, (cpuUs / 1000 / (now - this.#lastHeartbeat)) * 100);
    }
    this.#stats = stats;
    this.#lastHeartbeat = now;
  }

  /** Consecutive heartbeats over the memory limit, this one included. */
  countMemoryBeat(over: boolean): number {
    this.#overMemoryBeats = over ? this.#overMemoryBeats + 1 : 0;
    return this.#overMemoryBeats;
  }
}
