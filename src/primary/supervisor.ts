import { BootError, CorralError, ReloadError, UsageError } from '../common/errors.js';
import type { WorkerToPrimary, WorkerStats } from '../common/ipc.js';
import { corralRecord, type LogRecord, type LogSink } from '../logs/sink.js';
import { MetricsPoll, type WorkerMetrics } from '../metrics/poll.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { BootReport, describeEnd } from './boot-report.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { deferred, type Deferred } from './deferred.js';
import type { ClusterEvents, SupervisorEvent } from './events.js';
import { judgeHeartbeat, silentFor } from './health.js';
import { Messenger, type RequestHandler } from './messaging.js';
import { ListenerBus, UserErrors } from './user-errors.js';
import { SlotTable } from './slots.js';
import { sparePool } from './spares.js';
import { CANARY_HEARTBEAT_SLACK_MS, Rollout } from './rollout.js';
import type { ConnectionRouter, RouteTarget } from './routing.js';
import type { Release, Spawner } from './spawn.js';
import { buildStatus, type ClusterStatus } from './status.js';
import type { WorkerSizing } from './cpus.js';
import { displayAddress } from '../common/address.js';
import { ReloadQueue, ScaleWaiters } from './waiters.js';
import { SPARE_SLOT, WorkerHandle, isRestart, type EndReason, type TimerKind } from './worker.js';

export type { ClusterEvents, SupervisorEvent } from './events.js';
export type { RequestHandler } from './messaging.js';

export interface SupervisorConfig {
  name: string;
  script: string;
  strategy: string;
  workers: number;
  bootTimeout: number;
  grace: number;
  /** After SIGTERM at the end of the grace period, how long before SIGKILL. */
  killTimeout: number;
  watchdog: number;
  maxMemory: number | undefined;
  maxRequests: number | undefined;
  maxRequestsJitter: number;
  reloadParallel: number;
  /** How long the first replacement of a reload (the canary) must serve beside the old worker before the reload goes on. */
  reloadVerify: number;
  /** A draining worker closes keep-alive connections idle for this long. */
  idleCloseMs: number;
  backoff?: BackoffPolicy;
  /** Consecutive heartbeats over --max-memory before a worker is replaced. */
  memoryBeats?: number;
  /** Source of the max-requests jitter (tests pass their own). */
  random?: () => number;
  /** Largest count scale() accepts without `force` (a multiple of the usable CPUs). */
  maxWorkers?: number;
  /** At most this many workers boot at once; the rest wait for them. */
  spawnBatch?: number;
  /** Warm spares kept booted with their listens held, promoted when a slot needs a worker. */
  spares?: number;
  /** The workers' shared compile cache directory, for status. */
  compileCache?: string | undefined;
  /** Where the starting worker count came from, for `corral status`. */
  sizing?: WorkerSizing;
}

type Phase = 'idle' | 'running' | 'stopping' | 'stopped';

/** Added to computed deadlines for the messages and timers in between. */
const DEADLINE_MARGIN_MS = 5000;
/** A worker still booting after this long gets one line saying what a script that never listens must do. */
export const NOT_LISTENING_HINT_MS = 5000;

/**
 * Owns the worker table, the desired count and the code generation. Every
 * input (signal, command, worker exit, IPC message, timer) is an event on
 * one queue; a handler changes only the desired state, and `reconcile()`
 * then takes the next safe step toward it. Respawn, rolling reload, scaling
 * and health recycling are all "a slot is out of date: replace it safely".
 */
export class Supervisor {
  readonly #config: SupervisorConfig;
  readonly #spawner: Spawner;
  readonly #sink: LogSink;
  readonly #clock: Clock;

  readonly #workers = new Map<number, WorkerHandle>();
  readonly #slots: SlotTable;
  #desired: number;
  /** The generation every slot should run: new workers get it. */
  #generation = 1;
  /** The highest generation handed out; a failed reload's number is not reused. */
  #lastGeneration = 1;
  /** The release (code on disk) each generation runs, pinned when it began. */
  readonly #releases = new Map<number, Release>();
  /** The count before a scale-up still under way, to go back to if its workers cannot start. */
  #scaleFrom: number | null = null;
  readonly #reloadCounts = { succeeded: 0, failed: 0, lastError: null as string | null };
  #nextId = 1;
  #phase: Phase = 'idle';
  #startedAt = 0;
  #everReady = false;
  /** Every slot has had a ready worker once: spares may boot now without slowing the start. */
  #startedOnce = false;
  #exitCode = 0;
  #respawnTimer: { at: number; timer: Timer } | null = null;
  /** The next reload replaces every worker at once (`restart --hard`). */
  #hardQueued = false;
  /** Generations whose slow boot was already explained (the hint is shown once, not per worker). */
  readonly #hinted = new Set<number>();
  #advisedSticky = false;
  /** A finished reload whose old workers are still draining: "complete" is said once they have stopped. */
  #completing: { generation: number; old: Set<number> } | null = null;

  readonly #boot: BootReport;
  readonly #userErrors: UserErrors;
  readonly #events: ListenerBus<ClusterEvents>;
  readonly #messenger: Messenger;
  readonly #reloads = new ReloadQueue();
  readonly #scaleWaiters = new ScaleWaiters();
  readonly #metricsPoll: MetricsPoll;
  readonly #queue: SupervisorEvent[] = [];
  #processing = false;
  readonly #router: ConnectionRouter | undefined;
  /** What the router was last told, to tell it again only on a change. */
  #routes = '';
  /** Draining workers keeping their WebSockets until no older worker accepts connections (see #releaseLingering). */
  readonly #lingering = new Set<WorkerHandle>();
  readonly #started = deferred<void>();
  readonly #done = deferred<number>();

  /** `router`: under --sticky, the primary's connection router, told which workers may get connections. */
  constructor(config: SupervisorConfig, spawner: Spawner, sink: LogSink, clock: Clock = systemClock, router?: ConnectionRouter) {
    this.#config = config;
    this.#router = router;
    this.#spawner = spawner;
    this.#sink = sink;
    this.#clock = clock;
    this.#slots = new SlotTable(config.backoff ?? DEFAULT_BACKOFF);
    this.#boot = new BootReport(sink);
    this.#userErrors = new UserErrors(sink);
    this.#events = new ListenerBus(this.#userErrors);
    this.#messenger = new Messenger(clock, this.#userErrors);
    this.#desired = config.workers;
    this.#metricsPoll = new MetricsPoll(clock);
    // Only the first() waiters care; never let an unobserved rejection crash the primary.
    this.#started.promise.catch(() => {});
  }

  // ---- public API: every call only enqueues -------------------------------

  /** Resolves once every slot has had a ready worker; rejects if the app cannot start. */
  start(): Promise<void> {
    this.#enqueue({ type: 'start' });
    return this.#started.promise;
  }

  /** Resolves with the exit code the primary should use once every worker is gone. */
  get done(): Promise<number> {
    return this.#done.promise;
  }

  /** Rolling reload; `hard` replaces every worker at once (old and new code never serve side by side). */
  reload({ hard = false }: { hard?: boolean } = {}): Promise<void> {
    const reply = deferred<void>();
    this.#enqueue({ type: 'reload', reply, hard });
    return reply.promise;
  }

  /** `force` allows more than `maxWorkers`. */
  scale(to: number, { force = false }: { force?: boolean } = {}): Promise<number> {
    const reply = deferred<number>();
    this.#enqueue({ type: 'scale', to, force, reply });
    return reply.promise;
  }

  get desired(): number {
    return this.#desired;
  }

  stop(force = false): Promise<number> {
    this.#enqueue({ type: 'stop', force });
    return this.#done.promise;
  }

  /** Listen to cluster events; listeners run outside the loop and a throwing one is logged, not fatal. */
  on<K extends keyof ClusterEvents>(event: K, listener: (...args: ClusterEvents[K]) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  off<K extends keyof ClusterEvents>(event: K, listener: (...args: ClusterEvents[K]) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  /** Handle `worker.request(name, …)` from any worker; replaces an earlier handler for the name. */
  onRequest(name: string, handler: RequestHandler): void {
    this.#messenger.onRequest(name, handler);
  }

  /** Send `payload` to every live worker's `worker.on('message')`. */
  broadcast(payload: unknown, except?: WorkerHandle): number {
    const to = [...this.#workers.values()].filter((w) => w !== except && w.live);
    return this.#messenger.broadcast(to, payload, except ? except.slot : 'primary');
  }

  /**
   * The longest a reload asked for now may take before it settles, worst
   * case: every replacement uses its whole boot timeout, the canary its
   * window, a slot in back-off its longest delay, and one reload queued ahead.
   */
  reloadDeadlineMs(): number {
    const { bootTimeout, reloadVerify, reloadParallel } = this.#config;
    const batches = Math.ceil(Math.max(0, this.#desired - 1) / reloadParallel);
    const one = bootTimeout + reloadVerify + CANARY_HEARTBEAT_SLACK_MS + batches * bootTimeout + (this.#config.backoff ?? DEFAULT_BACKOFF).maxMs;
    return (this.#reloads.running ? 2 : 1) * one + DEADLINE_MARGIN_MS;
  }

  /** The longest scaling to `to` may take: the new workers boot in batches. */
  scaleDeadlineMs(to: number): number {
    const added = Math.max(0, to - this.#desired);
    return Math.ceil(added / (this.#config.spawnBatch ?? Math.max(added, 1))) * this.#config.bootTimeout + DEADLINE_MARGIN_MS;
  }

  /** Ask every worker not yet exited for its app's prom-client metrics; answers within `timeoutMs`. */
  collectAppMetrics(timeoutMs: number): Promise<WorkerMetrics[]> {
    // A worker whose fork failed has no channel to ask.
    return this.#metricsPoll.collect([...this.#workers.values()].filter((w) => w.state !== 'exited' && w.pid !== undefined), timeoutMs);
  }

  get stopping(): boolean {
    return this.#phase === 'stopping' || this.#phase === 'stopped';
  }

  status(): ClusterStatus {
    const now = this.#clock.now();
    return buildStatus({
      name: this.#config.name,
      script: this.#config.script,
      strategy: this.#config.strategy,
      state: this.stopping ? 'stopping' : this.#reloads.running ? 'reloading' : this.#everReady ? 'running' : 'starting',
      startedAt: this.#startedAt,
      now,
      desired: this.#desired,
      generation: this.#generation,
      workers: [...this.#workers.values()].filter((w) => w.state !== 'exited'),
      emptySlots: this.#phase === 'running' ? this.#slotsBelowDesired().filter((s) => this.#liveIn(s).length === 0) : [],
      slots: this.#slots,
      logLinesDropped: this.#sink.dropped ?? 0,
      userErrors: this.#userErrors.total,
      reloads: { ...this.#reloadCounts },
      spares: this.#config.spares ?? 0,
      compileCache: this.#config.compileCache ?? null,
      sizing: this.#config.sizing,
    });
  }

  // ---- the loop ----------------------------------------------------------

  #enqueue(event: SupervisorEvent): void {
    this.#queue.push(event);
    if (this.#processing) return;
    this.#processing = true;
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        this.#handle(next);
        this.#reconcile();
        this.#settle();
        this.#releaseLingering();
        this.#publishRoutes();
      }
    } finally {
      this.#processing = false;
    }
  }

  #handle(event: SupervisorEvent): void {
    switch (event.type) {
      case 'start':
        return this.#onStart();
      case 'worker-message':
        return this.#onMessage(event.worker, event.message, event.handle);
      case 'worker-exit':
        return this.#onExit(event.worker, event.code, event.signal);
      case 'worker-disconnect':
        event.worker.noteDisconnect();
        return this.#reapIfGone(event.worker);
      case 'worker-spawn-failed':
        return this.#onSpawnFailed(event.worker, event.error);
      case 'timer':
        return this.#onTimer(event.kind, event.worker);
      case 'respawn-due':
        this.#respawnTimer = null;
        return;
      case 'reconcile':
        return;
      case 'reload':
        return this.#onReload(event.reply, event.hard === true);
      case 'scale':
        return this.#onScale(event.to, event.force, event.reply);
      case 'stop':
        return this.#onStop(event.force);
    }
  }

  #onStart(): void {
    if (this.#phase !== 'idle') return;
    this.#phase = 'running';
    this.#startedAt = this.#clock.now();
    try {
      this.#releases.set(this.#generation, this.#spawner.release());
    } catch (err) {
      return this.#fatal(new BootError(`cannot start: ${(err as Error).message}`));
    }
    this.#log('info', `starting ${this.#desired} worker${this.#desired === 1 ? '' : 's'} of ${this.#config.script} (strategy ${this.#config.strategy})`);
  }

  #onMessage(w: WorkerHandle, message: WorkerToPrimary, handle: unknown): void {
    // An unpromoted spare's runtime holds its listens; any sign of life from it means it has booted.
    if (w.isSpare && (message.type === 'listening' || message.type === 'ready')) return this.#onSpareBooted(w);
    switch (message.type) {
      case 'sticky-listen':
      case 'sticky-unlisten':
      case 'sticky-return':
        // A listen read after the worker's exit was handled: the router has forgotten it and must not take it back.
        if (message.type === 'sticky-listen' && w.state === 'exited') return;
        return this.#router?.receive({ id: w.id, slot: w.slot, proc: w.proc }, message, handle);
      case 'listening':
        w.noteAddress(message.address);
        if (w.state === 'starting') this.#markReady(w);
        return;
      case 'ready':
        if (w.state === 'starting') this.#markReady(w);
        return;
      case 'heartbeat':
        return this.#onHeartbeat(w, message.stats);
      case 'request':
        return this.#messenger.answer(w, message.id, message.name, message.payload);
      case 'broadcast':
        this.broadcast(message.payload, w);
        this.#events.emit('worker:message', { slot: w.slot, pid: w.pid, payload: message.payload });
        return;
      case 'draining':
        return this.#onSelfDrain(w, message.signal);
      case 'held':
        return this.#onSpareBooted(w);
      case 'metrics':
        return this.#metricsPoll.receive(w, message);
      case 'session-elsewhere':
        return this.#adviseSticky();
    }
  }

  /**
   * Said once per cluster: every worker may report it, and every poll of a
   * moved client would. Not with one worker serving: then the session was on
   * a worker that is gone (a crash, a reload), and --sticky would change nothing.
   */
  #adviseSticky(): void {
    if (this.#advisedSticky || this.#inService().filter((w) => w.state === 'ready').length < 2) return;
    this.#advisedSticky = true;
    this.#log('warn', "the app answered a Socket.IO long-poll '400 Session ID unknown': the client's session is on another worker. Long-polling needs all of a client's requests on one worker: start with --sticky ip (or header:NAME, cookie:NAME); see the README, 'WebSockets and Socket.IO'");
  }

  /** A spare's app has booted and made its first listen() (held) or ready() call. */
  #onSpareBooted(w: WorkerHandle): void {
    if (w.state !== 'starting' || !w.isSpare) return;
    const now = this.#clock.now();
    w.proc.releaseOutput();
    w.transition('spare', now);
    this.#armWatchdog(w);
    this.#log('info', `${w.label} booted in ${now - w.spawnedAt} ms; its listen() waits until a slot needs it`);
  }

  /** A booted spare takes a slot: its held listens happen now. */
  #promote(w: WorkerHandle, slot: number): WorkerHandle {
    w.promoteTo(slot, this.#clock.now());
    w.proc.assignSlot(slot);
    w.proc.send({ corral: 1, type: 'promote', slot, workers: this.#desired });
    this.#arm(w, 'boot', this.#config.bootTimeout);
    this.#log('info', `spare (pid ${w.pid}) promoted to worker ${slot}`);
    return w;
  }

  /**
   * The worker got SIGTERM/SIGINT itself (systemd's control-group kill,
   * `kill <pid>`) and stopped accepting: it serves no new connections, so it
   * is draining now, and its slot gets a replacement unless the cluster is
   * stopping anyway.
   */
  #onSelfDrain(w: WorkerHandle, signal: string): void {
    if (!w.live) return;
    this.#log('warn', `${w.label} received ${signal} and is draining; ${this.#phase === 'running' ? 'replacing it' : 'letting it finish'}`);
    if (w.state === 'starting') return this.#endStarting(w, 'signal');
    this.#drainWorker(w, 'signal');
  }

  #markReady(w: WorkerHandle): void {
    const now = this.#clock.now();
    // Release the held boot output first, so the worker's own lines precede "ready".
    w.proc.releaseOutput();
    w.transition('ready', now);
    this.#everReady = true;
    this.#armWatchdog(w);
    const rollout = this.#reloads.running;
    if (rollout?.canary === w && !rollout.verified) {
      this.#log('info', `${w.label} is the canary of generation ${w.generation}: it serves beside the old worker for ${rollout.verifyMs} ms`);
      this.#arm(w, 'verify', rollout.verifyMs);
    }
    const since = w.promotedAt !== undefined ? `${now - w.promotedAt} ms after its promotion (a warm spare)` : `${now - w.spawnedAt} ms`;
    this.#log('info', `${w.label} ready in ${since}${w.address ? ` on ${displayAddress(w.address)}` : ''}`);
    this.#events.emit('worker:ready', { slot: w.slot, pid: w.pid, generation: w.generation });
  }

  #onHeartbeat(w: WorkerHandle, stats: WorkerStats): void {
    w.recordHeartbeat(stats, this.#clock.now());
    if (w.state !== 'ready' && w.state !== 'spare') return;
    this.#armWatchdog(w);
    if (w.replaceReason) return;
    const recycle = judgeHeartbeat(w, stats, { maxMemory: this.#config.maxMemory, memoryBeats: this.#config.memoryBeats ?? 3 });
    if (!recycle) return;
    w.markForReplacement(recycle.reason);
    this.#log(recycle.reason === 'memory' ? 'warn' : 'info', `${w.label} ${recycle.message}`);
  }

  #armWatchdog(w: WorkerHandle): void {
    if (this.#config.watchdog > 0) this.#arm(w, 'watchdog', this.#config.watchdog);
  }

  #arm(w: WorkerHandle, kind: TimerKind, ms: number): void {
    w.arm(kind, ms, this.#clock, () => this.#enqueue({ type: 'timer', kind, worker: w }));
  }

  /**
   * Timers fire only after pending I/O was read (see Clock), and each
   * judges the state it finds rather than trusting that it is still due.
   */
  #onTimer(kind: TimerKind, w: WorkerHandle): void {
    switch (kind) {
      case 'boot':
        if (w.state !== 'starting') return;
        this.#log('error', `${w.label} did not become ready within ${this.#config.bootTimeout} ms; killing it`);
        w.noteKilledFor(`did not become ready within ${this.#config.bootTimeout} ms (--boot-timeout): it neither listened nor called worker.ready()`);
        return this.#kill(w, 'SIGKILL');
      case 'hint':
        return this.#hintNotListening(w);
      case 'watchdog':
        return this.#judgeWatchdog(w);
      case 'verify':
        return this.#judgeCanary(w);
      case 'grace':
        if (w.state !== 'draining') return;
        this.#log('warn', `${w.label} still draining after the ${this.#config.grace} ms grace period; sending SIGTERM`);
        this.#kill(w, 'SIGTERM');
        this.#arm(w, 'kill', this.#config.killTimeout);
        return;
      case 'kill':
        if (w.state === 'exited') return;
        this.#log('warn', `${w.label} ignored SIGTERM; sending SIGKILL`);
        return this.#kill(w, 'SIGKILL');
    }
  }

  /** Once per generation: a script that never listens is waiting out the boot timeout, and the user should know why. */
  #hintNotListening(w: WorkerHandle): void {
    if (w.state !== 'starting' || this.#hinted.has(w.generation)) return;
    this.#hinted.add(w.generation);
    this.#log('warn', `${w.label} still not listening after ${NOT_LISTENING_HINT_MS / 1000} s; scripts that never listen call worker.ready() from 'corral/worker'; waiting up to ${this.#config.bootTimeout / 1000} s`);
  }

  #judgeCanary(w: WorkerHandle): void {
    const rollout = this.#reloads.running;
    if (!rollout || rollout.canary !== w) return;
    const verdict = rollout.judgeCanary(this.#clock.now());
    if (verdict.kind === 'wait') return this.#arm(w, 'verify', verdict.ms);
    if (verdict.kind === 'fail') return this.#failReload(verdict.reason);
    this.#log('info', `${w.label} (generation ${w.generation}) served for ${rollout.verifyMs} ms beside the old worker; the reload goes on`);
  }

  #judgeWatchdog(w: WorkerHandle): void {
    if ((w.state !== 'ready' && w.state !== 'spare') || this.#config.watchdog <= 0) return;
    const silent = silentFor(w, this.#clock.now());
    if (silent < this.#config.watchdog) return this.#arm(w, 'watchdog', this.#config.watchdog - silent);
    this.#log('error', `${w.label} unresponsive for ${silent} ms (no heartbeat); killing it`);
    w.endBecause('watchdog');
    w.noteKilledFor(`was killed: no heartbeat for ${silent} ms (--watchdog)`);
    this.#kill(w, 'SIGKILL');
  }

  /** Kill a worker that should have ended by itself: on stop, that makes the exit code 1. */
  #kill(w: WorkerHandle, signal: NodeJS.Signals): void {
    // A fork that failed has no process; its spawn error is on its way.
    if (w.pid === undefined) return;
    w.noteKilled();
    if (this.#phase === 'stopping') this.#exitCode ||= 1;
    w.proc.kill(signal);
  }

  /** A worker that has not become ready serves nobody: end it at once instead of draining it. */
  #endStarting(w: WorkerHandle, reason: EndReason): void {
    w.transition('draining', this.#clock.now());
    w.endBecause(reason);
    if (w.pid === undefined) return;
    w.noteKilled();
    w.proc.kill('SIGKILL');
  }

  #onExit(w: WorkerHandle, code: number | null, signal: string | null): void {
    const was = w.state;
    w.noteExit({ code, signal });
    if (was === 'exited') return;
    w.transition('exited', this.#clock.now());
    this.#metricsPoll.forget(w);
    this.#router?.forget(w.id);
    this.#lingering.delete(w);
    if ((was === 'starting' || was === 'ready' || was === 'spare') && this.#reloads.running?.target === w.generation) this.#onRefusedRelease(w, was === 'spare' ? 'ready' : was);
    else if (was === 'starting') this.#onFailedStart(w);
    else if (was === 'ready') this.#onCrash(w);
    else if (was === 'spare') this.#onSpareCrash(w);
    else {
      if (w.readyAt === undefined) this.#boot.showHeld(w);
      w.proc.releaseOutput();
      this.#log('info', `${w.label} stopped${w.killed ? ` (killed, ${describeEnd(w)})` : ''}`);
    }
    // Whatever the paths above did not take is printed now, not lost when the primary exits.
    w.proc.releaseOutput();
    this.#events.emit('worker:exit', { slot: w.slot, pid: w.pid, code, signal, reason: w.endReason ?? (was === 'starting' ? 'boot-failure' : 'crash') });
    this.#reapIfGone(w);
  }

  /**
   * A worker of the generation being rolled out died (at boot, or after it
   * listened). The release is refused: it counts against the reload, not as
   * a restart of the slot whose old worker is still fine.
   */
  #onRefusedRelease(w: WorkerHandle, was: 'starting' | 'ready'): void {
    const reason = was === 'starting' ? this.#boot.failedStart(w).reason : this.#boot.crashReason(w);
    this.#log('error', `${w.label} of generation ${w.generation} ${was === 'starting' ? 'failed to start' : 'exited after it listened'} (${reason})`);
    this.#failReload(`worker ${w.slot} of generation ${w.generation} ${was === 'starting' ? 'failed to start' : 'crashed after it started'} (${reason})`);
  }

  #onFailedStart(w: WorkerHandle): void {
    const { reason, repeated } = this.#boot.failedStart(w);
    this.#log('error', `${w.label} failed to start (${reason})${repeated ? '; same output as the previous failed start' : ''}`);
    this.#countFailedStart(w, reason);
  }

  /** fork() itself failed: no process, so no exit or disconnect will follow. */
  #onSpawnFailed(w: WorkerHandle, error: Error): void {
    if (w.state === 'exited') return;
    w.noteExit({ code: null, signal: null });
    w.noteDisconnect();
    w.transition('exited', this.#clock.now());
    this.#log('error', `cannot start worker ${w.slot}: ${error.message}`);
    this.#boot.noteCause(error.message);
    if (this.#reloads.running?.target === w.generation) this.#failReload(`worker ${w.slot} of generation ${w.generation} could not be started (${error.message})`);
    else this.#countFailedStart(w, error.message);
    this.#reapIfGone(w);
  }

  #countFailedStart(w: WorkerHandle, reason: string): void {
    this.#slots.failedStart(w.slot, this.#clock.now());
    // A spare that fails to boot backs off like a slot, but no slot lost a worker.
    if (!w.isSpare) this.#slots.countRestart(w.slot, 'boot-failure');
    if (this.#scaleFrom !== null && w.slot >= this.#scaleFrom) return this.#failScale(w.slot, reason);
    const fatal = this.#boot.crashLoop(this.#everReady, describeEnd(w), this.#config.script);
    if (fatal) this.#fatal(fatal);
  }

  #onCrash(w: WorkerHandle): void {
    const now = this.#clock.now();
    const delay = this.#slots.crashed(w.slot, now, now - (w.readyAt ?? w.spawnedAt));
    this.#slots.countRestart(w.slot, w.endReason === 'watchdog' ? 'watchdog' : 'crash');
    // A crash-looping slot prints the same trace every time: show it once, then count.
    const { reason, repeats } = this.#boot.crashed(w);
    const same = repeats > 0 ? ` (same error as the previous ${repeats === 1 ? 'crash' : `${repeats} crashes`} of slot ${w.slot}; output not shown again)` : '';
    if (this.#phase !== 'running' || w.slot >= this.#desired) {
      this.#log('warn', `${w.label} ${reason}${same}`);
      return;
    }
    const when = delay === 0 ? 'now' : `in ${delay} ms`;
    this.#log('warn', `${w.label} ${reason}${same}; restarting ${when} (restart ${this.#slots.get(w.slot).restarts} of this slot)`);
  }

  /** A booted spare died: nothing served by it, a new one boots (with the spares' own back-off). */
  #onSpareCrash(w: WorkerHandle): void {
    const now = this.#clock.now();
    const delay = this.#slots.crashed(SPARE_SLOT, now, now - w.spawnedAt);
    this.#log('warn', `${w.label} ${describeEnd(w)}; ${this.#phase === 'running' ? `another spare boots ${delay === 0 ? 'now' : `in ${delay} ms`}` : 'not replaced (stopping)'}`);
  }

  #reapIfGone(w: WorkerHandle): void {
    if (!w.gone) return;
    this.#workers.delete(w.id);
    const completing = this.#completing;
    if (completing?.old.delete(w.id) && completing.old.size === 0) this.#sayReloadComplete(completing.generation);
  }

  #sayReloadComplete(generation: number): void {
    this.#completing = null;
    this.#log('info', `reload to generation ${generation} complete`);
  }

  #onReload(reply: Deferred<void>, hard: boolean): void {
    if (this.#phase !== 'running') return reply.reject(new CorralError('E_STOPPING', 'the cluster is stopping; nothing to reload'));
    this.#hardQueued ||= hard;
    if (this.#reloads.request(reply)) this.#beginReload();
    else this.#log('info', 'reload requested while one runs; it will follow');
  }

  #beginReload(): void {
    const hard = this.#hardQueued;
    this.#hardQueued = false;
    const target = ++this.#lastGeneration;
    // Nothing serves beside a hard restart's first worker, so there is no canary to compare.
    const rollout = new Rollout(target, this.#generation, hard ? 0 : this.#config.reloadVerify);
    try {
      this.#releases.set(target, this.#spawner.release());
    } catch (err) {
      this.#reloads.begin(rollout);
      return this.#failReload(`the release cannot be read: ${(err as Error).message}`);
    }
    this.#generation = target;
    this.#reloads.begin(rollout);
    if (hard) {
      const old = this.#liveWorkers();
      this.#log('info', `hard restart to generation ${target}: draining all ${plural(old.length, 'worker')} and starting new ones at once`);
      for (const w of old) this.#retire(w, 'reload');
      return;
    }
    const canary = this.#config.reloadVerify > 0 ? `, the first one verified for ${this.#config.reloadVerify} ms` : '';
    this.#log('info', `rolling reload to generation ${target} (${this.#config.reloadParallel} at a time${canary})`);
    this.#events.emit('reload:start', { generation: target });
  }

  /**
   * The reload stops. Every slot goes back to the previous generation: new
   * workers beside an old one are taken out (at once if still booting), and
   * slots that had already switched are replaced, replacement first, from
   * the previous release when it is still on disk as a release of its own
   * (a symlinked layout). Respawns from now on use that release too.
   */
  #failReload(message: string): void {
    const rollout = this.#reloads.running;
    if (rollout === null) return;
    this.#generation = rollout.previous;
    const rollback = this.#releases.get(rollout.previous)?.id !== this.#releases.get(rollout.target)?.id;
    const kept: number[] = [];
    for (const w of this.#liveWorkers()) {
      if (w.generation !== rollout.target) continue;
      if (this.#slotHasOld(w.slot, rollout.target)) this.#retire(w, 'reload');
      else if (rollback) w.markForReplacement('reload');
      else kept.push(w.slot);
    }
    this.#reloadCounts.failed += 1;
    this.#reloadCounts.lastError = message;
    const tail = kept.length === 0
      ? 'every slot is served by the previous generation'
      : `slot${kept.length === 1 ? '' : 's'} ${kept.join(', ')} already run${kept.length === 1 ? 's' : ''} it: the release was changed in place, so the previous code is no longer on disk`;
    this.#log('error', `reload to generation ${rollout.target} failed: ${message}; ${tail}`);
    this.#reloads.fail(new ReloadError(message));
    this.#events.emit('reload:failed', { generation: rollout.target, error: message });
    this.#startQueuedReload();
  }

  #startQueuedReload(): void {
    if (this.#reloads.hasQueued && this.#phase === 'running') this.#beginReload();
  }

  #onScale(to: number, force: boolean, reply: Deferred<number>): void {
    if (this.#phase !== 'running') return reply.reject(new CorralError('E_STOPPING', 'the cluster is stopping; nothing to scale'));
    const problem = !Number.isInteger(to) || to < 1
      ? `cannot scale to ${to} workers: the count must be at least 1 (use 'corral stop' to stop the cluster)`
      : !force && to > this.#maxWorkers
        ? `cannot scale to ${to} workers: more than ${this.#maxWorkers}, the limit for this machine's usable CPUs; add --force to run that many anyway`
        : null;
    if (problem) {
      const err = new UsageError(problem);
      this.#log('warn', err.message);
      return reply.reject(err);
    }
    if (to !== this.#desired) this.#log('info', `scaling from ${this.#desired} to ${to} workers`);
    if (to > this.#desired) this.#scaleFrom ??= this.#desired;
    this.#desired = to;
    this.#scaleWaiters.add(reply);
  }

  /** A worker added by a scale-up cannot start: the count goes back, the callers get the error. */
  #failScale(slot: number, reason: string): void {
    const from = this.#scaleFrom ?? this.#desired;
    this.#scaleFrom = null;
    this.#log('error', `scale-up to ${this.#desired} failed: worker ${slot} could not start (${reason}); back to ${from} workers`);
    this.#desired = from;
    this.#scaleWaiters.rejectAll(new BootError(`worker ${slot} could not start (${reason}); the cluster stays at ${from} workers`));
  }

  #onStop(force: boolean): void {
    if (this.#phase === 'stopped') return;
    if (this.#phase === 'idle') this.#startedAt = this.#clock.now();
    if (force) {
      this.#exitCode = 130;
      this.#log('warn', 'forced stop: killing every worker now');
      for (const w of this.#workers.values()) if (w.state !== 'exited') this.#kill(w, 'SIGKILL');
    } else if (this.#phase !== 'stopping') {
      this.#log('info', `stopping: draining ${plural(this.#liveWorkers().length, 'worker')} (grace ${this.#config.grace} ms)`);
    }
    this.#enterStopping();
  }

  #fatal(err: CorralError): void {
    this.#log('error', err.message);
    this.#exitCode = 1;
    this.#started.reject(err);
    this.#enterStopping();
  }

  #enterStopping(): void {
    if (this.#phase === 'stopping') return;
    this.#phase = 'stopping';
    const err = new CorralError('E_STOPPING', 'the cluster is stopping');
    this.#reloads.rejectAll(err);
    this.#scaleWaiters.rejectAll(err);
    this.#started.reject(err);
    this.#respawnTimer?.timer.cancel();
    this.#respawnTimer = null;
    this.#events.emit('stopping');
  }

  // ---- reconcile: make reality match the desired state --------------------

  #reconcile(): void {
    if (this.#phase === 'stopping') {
      for (const w of this.#inService()) this.#retire(w, 'stop');
      if (this.#workers.size === 0) this.#finishStop();
      return;
    }
    if (this.#phase !== 'running') return;
    const rollout = this.#reloads.running;
    const spares = sparePool(this.#workers.values(), this.#generation);
    for (const w of spares.retire) this.#retire(w, w.replaceReason ?? 'reload');
    // Before the slots: a reload's replacements should be this generation's spares.
    this.#topUpSpares(spares);
    let replacing = this.#replacementsInFlight();
    // Until a reload has its canary, one replacement at most is under way (a spare it waits for included).
    let canaryPending = false;
    for (const slot of this.#slotsBelowDesired()) {
      const live = this.#liveIn(slot);
      const fresh = live.filter((w) => !this.#isStale(w));
      const stale = live.filter((w) => this.#isStale(w));
      const readyFresh = fresh.find((w) => w.state === 'ready');
      if (readyFresh) {
        // The canary serves beside the old worker until it has proved itself.
        if (rollout && !rollout.mayRetireOld(readyFresh)) continue;
        for (const w of stale) this.#retire(w, w.replaceReason ?? 'reload');
        for (const w of fresh) if (w !== readyFresh) this.#retire(w, 'scale');
      } else if (fresh.length === 0) {
        const oldServing = stale.some((w) => w.state === 'ready');
        for (const w of stale) if (w.state === 'starting') this.#endStarting(w, 'reload');
        if (!oldServing) this.#fill(slot, spares);
        else if (replacing < this.#config.reloadParallel && !canaryPending && (!rollout || rollout.mayStartReplacement())) {
          const w = this.#fill(slot, spares);
          if (w === 'waiting') canaryPending = rollout !== null && !rollout.verified;
          if (w !== null) replacing += 1;
          if (w instanceof WorkerHandle) rollout?.noteReplacement(w);
        }
      }
    }
    for (const w of this.#liveWorkers()) if (w.slot >= this.#desired) this.#retire(w, 'scale');
    // And after: a promoted spare is replaced by one booting behind it.
    this.#topUpSpares(spares);
  }

  /** Boot spares until `--spares` of them are booted or booting (not counting those promised to a slot). */
  #topUpSpares(spares: { ready: WorkerHandle[]; booting: number }): void {
    while (spares.ready.length + spares.booting < this.#sparesWanted()) {
      if (!this.#trySpawn(SPARE_SLOT)) return;
      spares.booting += 1;
    }
  }

  /**
   * Give a slot a worker: promote a booted spare, or wait for one that is
   * booting (it started earlier than a new worker would), or fork one.
   */
  #fill(slot: number, spares: { ready: WorkerHandle[]; booting: number }): WorkerHandle | 'waiting' | null {
    const spare = spares.ready.shift();
    if (spare) return this.#promote(spare, slot);
    if (spares.booting > 0) {
      spares.booting -= 1;
      return 'waiting';
    }
    return this.#trySpawn(slot);
  }

  /** Spares wanted now: none before the start is done (they would slow it) or while stopping. */
  #sparesWanted(): number {
    return this.#phase === 'running' && (this.#startedOnce || this.#reloads.running !== null) ? (this.#config.spares ?? 0) : 0;
  }

  /** Workers a stop must take out: serving, booting, or waiting as spares. */
  #inService(): WorkerHandle[] {
    return [...this.#workers.values()].filter((w) => w.live || w.state === 'spare');
  }

  /** Take a worker out of service: drain it if it serves, end it at once if it is still starting. */
  #retire(w: WorkerHandle, reason: EndReason): void {
    if (w.state === 'starting') this.#endStarting(w, reason);
    else this.#drainWorker(w, reason);
  }

  get #maxWorkers(): number {
    return this.#config.maxWorkers ?? Infinity;
  }

  #isStale(w: WorkerHandle): boolean {
    const rollout = this.#reloads.running;
    return w.replaceReason !== undefined || (rollout !== null && rollout.isStale(w));
  }

  #slotsBelowDesired(): number[] {
    return Array.from({ length: this.#desired }, (_, i) => i);
  }

  #liveWorkers(): WorkerHandle[] {
    return [...this.#workers.values()].filter((w) => w.live);
  }

  #liveIn(slot: number): WorkerHandle[] {
    return this.#liveWorkers().filter((w) => w.slot === slot);
  }

  /** Slots where a new worker boots beside an old one that still serves. */
  #replacementsInFlight(): number {
    return this.#slotsBelowDesired().filter((slot) => {
      const live = this.#liveIn(slot);
      return live.some((w) => w.state === 'starting' && !this.#isStale(w)) && live.some((w) => this.#isStale(w));
    }).length;
  }

  /** Does a ready worker of another generation than `target` serve this slot? */
  #slotHasOld(slot: number, target: number): boolean {
    return this.#liveIn(slot).some((w) => w.state === 'ready' && w.generation !== target);
  }

  #trySpawn(slot: number): WorkerHandle | null {
    const booting = this.#liveWorkers().filter((w) => w.state === 'starting').length;
    // Past the batch, the next 'ready' or exit runs reconcile again.
    if (booting >= (this.#config.spawnBatch ?? Infinity)) return null;
    const at = this.#slots.get(slot).respawnAt;
    if (at > this.#clock.now()) {
      this.#wakeAt(at);
      return null;
    }
    return this.#spawnWorker(slot);
  }

  #wakeAt(at: number): void {
    if (this.#respawnTimer && this.#respawnTimer.at <= at) return;
    this.#respawnTimer?.timer.cancel();
    const timer = this.#clock.setTimeout(() => this.#enqueue({ type: 'respawn-due' }), at - this.#clock.now());
    this.#respawnTimer = { at, timer };
  }

  #spawnWorker(slot: number): WorkerHandle {
    const id = this.#nextId++;
    let handle: WorkerHandle | undefined;
    const requestLimit = this.#requestLimit();
    const release = this.#releases.get(this.#generation);
    const proc = this.#spawner.spawn(
      { slot, workers: this.#desired, requestLimit, release, spare: slot === SPARE_SLOT },
      {
        message: (message, sent) => handle && this.#enqueue({ type: 'worker-message', worker: handle, message, handle: sent }),
        exit: (code, signal) => handle && this.#enqueue({ type: 'worker-exit', worker: handle, code, signal }),
        disconnect: () => handle && this.#enqueue({ type: 'worker-disconnect', worker: handle }),
        spawnError: (error) => handle && this.#enqueue({ type: 'worker-spawn-failed', worker: handle, error }),
      },
    );
    handle = new WorkerHandle(id, slot, this.#generation, proc, this.#clock.now(), slot === SPARE_SLOT ? undefined : requestLimit);
    this.#workers.set(id, handle);
    this.#arm(handle, 'boot', this.#config.bootTimeout);
    if (this.#config.bootTimeout > NOT_LISTENING_HINT_MS) this.#arm(handle, 'hint', NOT_LISTENING_HINT_MS);
    return handle;
  }

  /** Each worker gets its own limit (gunicorn's max-requests + jitter) so they do not all recycle at once. */
  #requestLimit(): number | undefined {
    const { maxRequests, maxRequestsJitter } = this.#config;
    return maxRequests === undefined ? undefined : maxRequests + Math.floor((this.#config.random ?? Math.random)() * (maxRequestsJitter + 1));
  }

  #drainWorker(w: WorkerHandle, reason: EndReason): void {
    if (!w.live && w.state !== 'spare') return;
    const serving = w.state === 'ready';
    w.transition('draining', this.#clock.now());
    w.endBecause(reason);
    if (serving && isRestart(reason)) this.#slots.countRestart(w.slot, reason);
    // Older workers still accept connections: clients closed now could reconnect to one that goes next.
    const linger = serving && reason !== 'stop' && this.#staleAccepting();
    if (linger) this.#lingering.add(w);
    w.proc.send({ corral: 1, type: 'drain', idleCloseMs: this.#config.idleCloseMs, graceMs: this.#config.grace, reason, linger });
    this.#arm(w, 'grace', this.#config.grace);
  }

  /**
   * Once no stale worker accepts connections (every old one is draining),
   * lingering workers close their WebSockets: clients reconnect, and only
   * current workers accept them.
   */
  #releaseLingering(): void {
    if (this.#lingering.size === 0 || this.#staleAccepting()) return;
    for (const w of this.#lingering) w.proc.send({ corral: 1, type: 'release' });
    this.#lingering.clear();
  }

  /** A ready worker that is to be replaced (an older generation's, or one marked for recycling) still accepts connections. */
  #staleAccepting(): boolean {
    return this.#liveWorkers().some((w) => w.state === 'ready' && this.#isStale(w));
  }

  /**
   * The router's view: ready workers; new clients go to those of the
   * generation being served (during a canary's window, old ones and the
   * canary alike, so the canary serves beside them).
   */
  #publishRoutes(): void {
    if (!this.#router) return;
    const rollout = this.#reloads.running;
    const canaryWindow = rollout !== null && !rollout.verified;
    const targets: RouteTarget[] = this.#liveWorkers()
      .filter((w) => w.state === 'ready')
      .map((w) => ({ id: w.id, slot: w.slot, preferred: !this.#isStale(w) || (canaryWindow && w.replaceReason === undefined), proc: w.proc }));
    const routes = targets.map((t) => `${t.id}${t.preferred ? '+' : ''}`).join(',');
    if (routes === this.#routes) return;
    this.#routes = routes;
    this.#router.update(targets);
  }

  #finishStop(): void {
    this.#phase = 'stopped';
    this.#log('info', `stopped (exit code ${this.#exitCode})`);
    this.#events.emit('stopped', { exitCode: this.#exitCode });
    this.#done.resolve(this.#exitCode);
  }

  // ---- waiters: resolved once the state they wait for holds ---------------

  #settle(): void {
    if (this.#phase !== 'running' || !this.#allSlotsServedFresh()) return;
    this.#started.resolve();
    if (!this.#startedOnce) {
      this.#startedOnce = true;
      // The start is done: the spares may boot now.
      if ((this.#config.spares ?? 0) > 0) this.#enqueue({ type: 'reconcile' });
    }
    const rollout = this.#reloads.running;
    if (rollout && !this.#liveWorkers().some((w) => this.#isStale(w))) {
      this.#reloads.succeed();
      this.#reloadCounts.succeeded += 1;
      this.#noteCompletion(rollout.target);
      this.#events.emit('reload:done', { generation: rollout.target });
      this.#startQueuedReload();
    }
    if (!this.#liveWorkers().some((w) => w.slot >= this.#desired)) {
      this.#scaleFrom = null;
      this.#slots.forgetFrom(this.#desired);
      this.#scaleWaiters.resolveAll(this.#desired);
    }
  }

  /** Every slot serves the new generation; the log says "complete" once the old workers have also stopped. */
  #noteCompletion(generation: number): void {
    const old = [...this.#workers.values()].filter((w) => w.generation !== generation && !w.gone).map((w) => w.id);
    if (this.#completing) this.#sayReloadComplete(this.#completing.generation);
    this.#completing = { generation, old: new Set(old) };
    if (old.length === 0) this.#sayReloadComplete(generation);
  }

  #allSlotsServedFresh(): boolean {
    return this.#slotsBelowDesired().every((slot) => this.#liveIn(slot).some((w) => w.state === 'ready' && !this.#isStale(w)));
  }

  #log(level: LogRecord['level'], msg: string): void {
    this.#sink.write(corralRecord(level, msg, new Date(this.#clock.now())));
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

