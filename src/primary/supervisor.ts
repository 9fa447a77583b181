import { EventEmitter } from 'node:events';
import { BootError, CorralError, ReloadError, UsageError } from '../common/errors.js';
import type { WorkerToPrimary } from '../common/ipc.js';
import { corralRecord, type LogRecord, type LogSink } from '../logs/sink.js';
import { summarizeError } from '../logs/worker-output.js';
import { DEFAULT_BACKOFF, failuresAfterExit, isCrashLoop, restartDelay, type BackoffPolicy } from './backoff.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { deferred, type Deferred } from './deferred.js';
import type { Spawner } from './spawn.js';
import type { ClusterStatus, WaitingSlot, WorkerStatus } from './status.js';
import { WorkerHandle, type RestartReason, type TimerKind } from './worker.js';

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
  /** A draining worker closes keep-alive connections idle for this long. */
  idleCloseMs: number;
  backoff?: BackoffPolicy;
  /** Consecutive heartbeats over --max-memory before a worker is replaced. */
  memoryBeats?: number;
}

type Phase = 'idle' | 'running' | 'stopping' | 'stopped';

export type SupervisorEvent =
  | { type: 'start' }
  | { type: 'worker-message'; worker: WorkerHandle; message: WorkerToPrimary }
  | { type: 'worker-exit'; worker: WorkerHandle; code: number | null; signal: string | null }
  | { type: 'worker-disconnect'; worker: WorkerHandle }
  | { type: 'timer'; kind: TimerKind; worker: WorkerHandle }
  | { type: 'respawn-due' }
  | { type: 'reload'; reply: Deferred<void> }
  | { type: 'scale'; to: number; reply: Deferred<number> }
  | { type: 'stop'; force: boolean };

/** Answers a worker's `worker.request(name, payload)`; what it returns (or throws) goes back. */
export type RequestHandler = (payload: unknown, from: { slot: number; pid: number }) => unknown;

/** What the library API and the log can observe, in order. */
export interface ClusterEvents {
  'worker:message': [{ slot: number; pid: number; payload: unknown }];
  'worker:ready': [{ slot: number; pid: number; generation: number }];
  'worker:exit': [{ slot: number; pid: number; code: number | null; signal: string | null; reason: RestartReason | 'stop' }];
  'reload:done': [{ generation: number }];
  'reload:failed': [{ generation: number; error: string }];
  stopped: [{ exitCode: number }];
}

interface SlotRecord {
  failures: number;
  respawnAt: number;
  restarts: number;
  reasons: Partial<Record<RestartReason, number>>;
}

interface ReloadJob {
  target: number;
  waiters: Deferred<void>[];
}

/**
 * Owns the worker table, the desired count and the code generation. Every
 * input (signal, command, worker exit, IPC message, timer) is an event on
 * one queue; a handler changes only the desired state, and `reconcile()`
 * then takes the next safe step toward it. Respawn, rolling reload, scaling
 * and health recycling are all "a slot is out of date: replace it safely".
 */
export class Supervisor extends EventEmitter<ClusterEvents> {
  readonly #config: SupervisorConfig;
  readonly #spawner: Spawner;
  readonly #sink: LogSink;
  readonly #clock: Clock;
  readonly #backoff: BackoffPolicy;

  readonly #workers = new Map<number, WorkerHandle>();
  readonly #slots = new Map<number, SlotRecord>();
  #desired: number;
  #generation = 1;
  #nextId = 1;
  #phase: Phase = 'idle';
  #startedAt = 0;

  #everReady = false;
  #bootFailures = 0;
  #lastBootOutput: string | undefined;
  /** The first error a failed start printed: what the crash-loop message names. */
  #bootCause: string | undefined;
  #exitCode = 0;
  #reload: ReloadJob | null = null;
  #queuedReloads: Deferred<void>[] = [];
  #scaleWaiters: Array<{ to: number; reply: Deferred<number> }> = [];
  #respawnTimer: { at: number; timer: Timer } | null = null;

  readonly #handlers = new Map<string, RequestHandler>();
  readonly #queue: SupervisorEvent[] = [];
  #processing = false;
  readonly #started = deferred<void>();
  readonly #done = deferred<number>();

  constructor(config: SupervisorConfig, spawner: Spawner, sink: LogSink, clock: Clock = systemClock) {
    super();
    this.#config = config;
    this.#spawner = spawner;
    this.#sink = sink;
    this.#clock = clock;
    this.#backoff = config.backoff ?? DEFAULT_BACKOFF;
    this.#desired = config.workers;
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

  reload(): Promise<void> {
    const reply = deferred<void>();
    this.#enqueue({ type: 'reload', reply });
    return reply.promise;
  }

  scale(to: number): Promise<number> {
    const reply = deferred<number>();
    this.#enqueue({ type: 'scale', to, reply });
    return reply.promise;
  }

  get desired(): number {
    return this.#desired;
  }

  stop(force = false): Promise<number> {
    this.#enqueue({ type: 'stop', force });
    return this.#done.promise;
  }

  /** Handle `worker.request(name, …)` from any worker; replaces an earlier handler for the name. */
  onRequest(name: string, handler: RequestHandler): void {
    this.#handlers.set(name, handler);
  }

  /** Send `payload` to every live worker's `worker.on('message')`. */
  broadcast(payload: unknown, except?: WorkerHandle): number {
    let n = 0;
    for (const w of this.#workers.values()) {
      if (w === except || !w.live) continue;
      w.proc.send({ corral: 1, type: 'message', payload, from: except ? except.slot : 'primary' });
      n += 1;
    }
    return n;
  }

  get stopping(): boolean {
    return this.#phase === 'stopping' || this.#phase === 'stopped';
  }

  status(): ClusterStatus {
    const now = this.#clock.now();
    const workers = [...this.#workers.values()]
      .filter((w) => w.state !== 'exited')
      .sort((a, b) => a.slot - b.slot || a.id - b.id)
      .map((w) => this.#workerStatus(w, now));
    return {
      name: this.#config.name,
      pid: process.pid,
      script: this.#config.script,
      strategy: this.#config.strategy,
      state: this.#phase === 'stopping' || this.#phase === 'stopped' ? 'stopping' : this.#reload ? 'reloading' : this.#everReady ? 'running' : 'starting',
      startedAt: new Date(this.#startedAt || now).toISOString(),
      uptimeMs: this.#startedAt ? now - this.#startedAt : 0,
      desired: this.#desired,
      generation: this.#generation,
      workers,
      waiting: this.#waitingSlots(now),
      totals: {
        workers: workers.length,
        ready: workers.filter((w) => w.state === 'ready').length,
        rss: workers.reduce((s, w) => s + (w.rss ?? 0), 0),
        requests: workers.reduce((s, w) => s + (w.requests ?? 0), 0),
        restarts: [...this.#slots.values()].reduce((s, r) => s + r.restarts, 0),
      },
    };
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
        return this.#onMessage(event.worker, event.message);
      case 'worker-exit':
        return this.#onExit(event.worker, event.code, event.signal);
      case 'worker-disconnect':
        event.worker.disconnected = true;
        return this.#reapIfGone(event.worker);
      case 'timer':
        return this.#onTimer(event.kind, event.worker);
      case 'respawn-due':
        this.#respawnTimer = null;
        return;
      case 'reload':
        return this.#onReload(event.reply);
      case 'scale':
        return this.#onScale(event.to, event.reply);
      case 'stop':
        return this.#onStop(event.force);
    }
  }

  #onStart(): void {
    if (this.#phase !== 'idle') return;
    this.#phase = 'running';
    this.#startedAt = this.#clock.now();
    this.#log('info', `starting ${this.#desired} worker${this.#desired === 1 ? '' : 's'} of ${this.#config.script} (strategy ${this.#config.strategy})`);
  }

  #onMessage(w: WorkerHandle, message: WorkerToPrimary): void {
    switch (message.type) {
      case 'listening':
        w.address ??= message.address;
        if (w.state === 'starting') this.#markReady(w);
        return;
      case 'ready':
        if (w.state === 'starting') this.#markReady(w);
        return;
      case 'heartbeat':
        return this.#onHeartbeat(w, message.stats);
      case 'request':
        return this.#answer(w, message.id, message.name, message.payload);
      case 'broadcast':
        this.broadcast(message.payload, w);
        this.emit('worker:message', { slot: w.slot, pid: w.pid, payload: message.payload });
        return;
    }
  }

  /** The handler runs outside the loop; only its answer goes back to the worker that asked. */
  #answer(w: WorkerHandle, id: number, name: string, payload: unknown): void {
    const handler = this.#handlers.get(name);
    const reply = (ok: boolean, value: unknown): void =>
      w.proc.send(ok ? { corral: 1, type: 'reply', id, ok: true, result: value } : { corral: 1, type: 'reply', id, ok: false, error: value as { code: string; message: string } });
    if (!handler) return reply(false, { code: 'E_NO_HANDLER', message: `the primary has no handler for request "${name}" (register one with cluster.onRequest)` });
    Promise.resolve()
      .then(() => handler(payload, { slot: w.slot, pid: w.pid }))
      .then(
        (result) => reply(true, result === undefined ? null : result),
        (err: unknown) => {
          const e = err as { code?: unknown; message?: unknown };
          reply(false, { code: typeof e?.code === 'string' ? e.code : 'E_HANDLER', message: typeof e?.message === 'string' ? e.message : String(err) });
        },
      );
  }

  #markReady(w: WorkerHandle): void {
    const now = this.#clock.now();
    // Release the held boot output first, so the worker's own lines precede "ready".
    w.proc.releaseOutput();
    w.transition('ready', now);
    this.#everReady = true;
    this.#armWatchdog(w);
    this.#log('info', `worker ${w.slot} (pid ${w.pid}) ready in ${now - w.spawnedAt} ms${w.address ? ` on ${w.address}` : ''}`);
    this.emit('worker:ready', { slot: w.slot, pid: w.pid, generation: w.generation });
  }

  #onHeartbeat(w: WorkerHandle, stats: WorkerHandle['stats'] & object): void {
    w.recordHeartbeat(stats, this.#clock.now());
    if (w.state !== 'ready') return;
    this.#armWatchdog(w);
    if (w.replaceReason) return;
    const limit = this.#config.maxMemory;
    w.overMemoryBeats = limit !== undefined && stats.rss > limit ? w.overMemoryBeats + 1 : 0;
    if (limit !== undefined && w.overMemoryBeats >= (this.#config.memoryBeats ?? 3)) {
      w.replaceReason = 'memory';
      this.#log('warn', `worker ${w.slot} (pid ${w.pid}) uses ${mb(stats.rss)} RSS, over the ${mb(limit)} limit; replacing it`);
    } else if (w.requestLimit !== undefined && stats.requests >= w.requestLimit) {
      w.replaceReason = 'max-requests';
      this.#log('info', `worker ${w.slot} (pid ${w.pid}) served ${stats.requests} requests (limit ${w.requestLimit}); recycling it`);
    }
  }

  #armWatchdog(w: WorkerHandle): void {
    if (this.#config.watchdog > 0) w.arm('watchdog', this.#config.watchdog, this.#clock, () => this.#enqueue({ type: 'timer', kind: 'watchdog', worker: w }));
  }

  #onTimer(kind: TimerKind, w: WorkerHandle): void {
    if (w.state === 'exited') return;
    switch (kind) {
      case 'boot':
        this.#log('error', `worker ${w.slot} (pid ${w.pid}) did not become ready within ${this.#config.bootTimeout} ms; killing it`);
        return this.#kill(w, 'SIGKILL');
      case 'watchdog': {
        const silent = this.#clock.now() - (w.lastHeartbeat ?? w.readyAt ?? w.spawnedAt);
        this.#log('error', `worker ${w.slot} (pid ${w.pid}) unresponsive for ${silent} ms (no heartbeat); killing it`);
        w.endReason = 'watchdog';
        return this.#kill(w, 'SIGKILL');
      }
      case 'grace':
        this.#log('warn', `worker ${w.slot} (pid ${w.pid}) still draining after the ${this.#config.grace} ms grace period; sending SIGTERM`);
        this.#kill(w, 'SIGTERM');
        w.arm('kill', this.#config.killTimeout, this.#clock, () => this.#enqueue({ type: 'timer', kind: 'kill', worker: w }));
        return;
      case 'kill':
        this.#log('warn', `worker ${w.slot} (pid ${w.pid}) ignored SIGTERM; sending SIGKILL`);
        return this.#kill(w, 'SIGKILL');
    }
  }

  #kill(w: WorkerHandle, signal: NodeJS.Signals): void {
    w.killed = true;
    if (this.#phase === 'stopping') this.#exitCode ||= 1;
    w.proc.kill(signal);
  }

  #onExit(w: WorkerHandle, code: number | null, signal: string | null): void {
    const was = w.state;
    w.exit = { code, signal };
    if (was === 'exited') return;
    w.transition('exited', this.#clock.now());
    if (was === 'starting') this.#onBootFailure(w);
    else if (was === 'ready') this.#onCrash(w);
    else this.#log('info', `worker ${w.slot} (pid ${w.pid}) stopped${w.killed ? ` (killed, ${describeExit(code, signal)})` : ''}`);
    this.emit('worker:exit', { slot: w.slot, pid: w.pid, code, signal, reason: w.endReason ?? (was === 'starting' ? 'boot-failure' : 'crash') });
    this.#reapIfGone(w);
  }

  #onBootFailure(w: WorkerHandle): void {
    const slot = this.#slot(w.slot);
    slot.failures += 1;
    slot.respawnAt = this.#clock.now() + restartDelay(slot.failures, this.#backoff);
    this.#countRestart(w.slot, 'boot-failure');
    const held = w.proc.takeHeldOutput();
    const cause = summarizeError(held.filter((r) => r.level === 'error').map((r) => r.msg)) ?? summarizeError(w.proc.recentErrors());
    const repeated = !this.#showBootOutput(held);
    const reason = `${describeExit(w.exit?.code ?? null, w.exit?.signal ?? null)}${cause ? `: ${cause}` : ''}`;
    this.#log('error', `worker ${w.slot} (pid ${w.pid}) failed to start (${reason})${repeated ? '; same output as the previous failed start' : ''}`);
    if (this.#reload && w.generation === this.#reload.target && this.#slotHasOld(w.slot)) {
      return this.#failReload(`worker ${w.slot} of the new release failed to start (${reason})`);
    }
    for (const s of this.#scaleWaiters.splice(0)) s.reply.reject(new BootError(`worker ${w.slot} failed to start (${reason})`));
    if (this.#everReady) return;
    this.#bootFailures += 1;
    this.#bootCause ??= cause;
    if (isCrashLoop(this.#everReady, this.#bootFailures)) {
      const why = this.#bootCause ?? describeExit(w.exit?.code ?? null, w.exit?.signal ?? null);
      this.#fatal(new BootError(`the app cannot start: ${why} (${this.#config.script}); fix it and start again`));
    }
  }

  /** N workers that die at boot usually print the same trace: show it once. False when it was a repeat. */
  #showBootOutput(held: LogRecord[]): boolean {
    const text = held.map((r) => r.msg).join('\n');
    if (text === '') return true;
    if (text === this.#lastBootOutput) return false;
    this.#lastBootOutput = text;
    for (const r of held) this.#sink.write(r);
    return true;
  }

  #onCrash(w: WorkerHandle): void {
    const now = this.#clock.now();
    const reason = w.endReason === 'watchdog' ? 'watchdog' : 'crash';
    const slot = this.#slot(w.slot);
    slot.failures = failuresAfterExit(slot.failures, now - (w.readyAt ?? w.spawnedAt), this.#backoff);
    const delay = restartDelay(slot.failures, this.#backoff);
    slot.respawnAt = now + delay;
    this.#countRestart(w.slot, reason);
    if (this.#phase !== 'running' || w.slot >= this.#desired) {
      this.#log('warn', `worker ${w.slot} (pid ${w.pid}) ${describeExit(w.exit?.code ?? null, w.exit?.signal ?? null)}`);
      return;
    }
    const when = delay === 0 ? 'now' : `in ${delay} ms`;
    this.#log('warn', `worker ${w.slot} (pid ${w.pid}) ${describeExit(w.exit?.code ?? null, w.exit?.signal ?? null)}; restarting ${when} (restart ${slot.restarts} of this slot)`);
  }

  #reapIfGone(w: WorkerHandle): void {
    if (w.gone) this.#workers.delete(w.id);
  }

  #onReload(reply: Deferred<void>): void {
    if (this.#phase !== 'running') return reply.reject(new CorralError('E_STOPPING', 'the cluster is stopping; nothing to reload'));
    if (this.#reload) {
      this.#queuedReloads.push(reply);
      this.#log('info', 'reload requested while one runs; it will follow');
      return;
    }
    this.#beginReload([reply]);
  }

  #beginReload(waiters: Deferred<void>[]): void {
    this.#generation += 1;
    this.#reload = { target: this.#generation, waiters };
    this.#log('info', `rolling reload to generation ${this.#generation} (${this.#config.reloadParallel} at a time)`);
  }

  #failReload(message: string): void {
    const job = this.#reload;
    if (!job) return;
    this.#reload = null;
    this.#log('error', `reload stopped: ${message}; the previous workers keep serving`);
    // Replacements still booting would outlive the reload: stop them.
    for (const w of this.#workers.values()) {
      if (w.state === 'starting' && w.generation === job.target && this.#slotHasOld(w.slot)) this.#drainWorker(w, 'reload');
    }
    const err = new ReloadError(message);
    for (const d of job.waiters) d.reject(err);
    this.emit('reload:failed', { generation: job.target, error: message });
    this.#startQueuedReload();
  }

  #startQueuedReload(): void {
    if (this.#queuedReloads.length === 0 || this.#phase !== 'running') return;
    this.#beginReload(this.#queuedReloads.splice(0));
  }

  #onScale(to: number, reply: Deferred<number>): void {
    if (this.#phase !== 'running') return reply.reject(new CorralError('E_STOPPING', 'the cluster is stopping; nothing to scale'));
    if (!Number.isInteger(to) || to < 1) {
      const err = new UsageError(`cannot scale to ${to} workers: the count must be at least 1 (use 'corral stop' to stop the cluster)`);
      this.#log('warn', err.message);
      return reply.reject(err);
    }
    if (to !== this.#desired) this.#log('info', `scaling from ${this.#desired} to ${to} workers`);
    this.#desired = to;
    this.#scaleWaiters.push({ to, reply });
  }

  #onStop(force: boolean): void {
    if (this.#phase === 'stopped') return;
    if (this.#phase === 'idle') this.#startedAt = this.#clock.now();
    if (force) {
      this.#exitCode = 130;
      this.#log('warn', 'forced stop: killing every worker now');
      for (const w of this.#workers.values()) if (w.state !== 'exited') this.#kill(w, 'SIGKILL');
    } else if (this.#phase !== 'stopping') {
      this.#log('info', `stopping: draining ${this.#liveCount()} worker(s) (grace ${this.#config.grace} ms)`);
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
    if (this.#reload) for (const d of this.#reload.waiters) d.reject(err);
    this.#reload = null;
    for (const d of this.#queuedReloads.splice(0)) d.reject(err);
    for (const s of this.#scaleWaiters.splice(0)) s.reply.reject(err);
    this.#started.reject(err);
    this.#respawnTimer?.timer.cancel();
    this.#respawnTimer = null;
  }

  // ---- reconcile: make reality match the desired state --------------------

  #reconcile(): void {
    if (this.#phase === 'stopping') {
      for (const w of this.#workers.values()) if (w.live) this.#drainWorker(w, 'stop');
      if (this.#workers.size === 0) this.#finishStop();
      return;
    }
    if (this.#phase !== 'running') return;
    let replacing = this.#replacementsInFlight();
    for (let slot = 0; slot < this.#desired; slot++) {
      const live = this.#liveIn(slot);
      const fresh = live.filter((w) => !this.#isStale(w));
      const stale = live.filter((w) => this.#isStale(w));
      const readyFresh = fresh.find((w) => w.state === 'ready');
      if (readyFresh) {
        for (const w of stale) this.#drainWorker(w, w.replaceReason ?? 'reload');
        for (const w of fresh) if (w !== readyFresh) this.#drainWorker(w, 'scale');
      } else if (fresh.length === 0) {
        const oldServing = stale.some((w) => w.state === 'ready');
        for (const w of stale) if (w.state === 'starting') this.#drainWorker(w, 'reload');
        if (!oldServing) this.#trySpawn(slot);
        else if (replacing < this.#config.reloadParallel && this.#trySpawn(slot)) replacing += 1;
      }
    }
    for (const w of this.#workers.values()) if (w.live && w.slot >= this.#desired) this.#drainWorker(w, 'scale');
  }

  #isStale(w: WorkerHandle): boolean {
    return w.replaceReason !== undefined || (this.#reload !== null && w.generation < this.#reload.target);
  }

  #liveIn(slot: number): WorkerHandle[] {
    return [...this.#workers.values()].filter((w) => w.slot === slot && w.live);
  }

  #liveCount(): number {
    return [...this.#workers.values()].filter((w) => w.live).length;
  }

  /** Slots where a new worker boots beside an old one that still serves. */
  #replacementsInFlight(): number {
    let n = 0;
    for (let slot = 0; slot < this.#desired; slot++) {
      const live = this.#liveIn(slot);
      if (live.some((w) => w.state === 'starting' && !this.#isStale(w)) && live.some((w) => this.#isStale(w))) n += 1;
    }
    return n;
  }

  #slotHasOld(slot: number): boolean {
    return this.#liveIn(slot).some((w) => w.state === 'ready' && (this.#reload ? w.generation < this.#reload.target : true));
  }

  #trySpawn(slot: number): boolean {
    const now = this.#clock.now();
    const at = this.#slot(slot).respawnAt;
    if (at > now) {
      this.#wakeAt(at);
      return false;
    }
    this.#spawnWorker(slot);
    return true;
  }

  #wakeAt(at: number): void {
    if (this.#respawnTimer && this.#respawnTimer.at <= at) return;
    this.#respawnTimer?.timer.cancel();
    const timer = this.#clock.setTimeout(() => this.#enqueue({ type: 'respawn-due' }), at - this.#clock.now());
    this.#respawnTimer = { at, timer };
  }

  #spawnWorker(slot: number): void {
    const id = this.#nextId++;
    let handle: WorkerHandle | undefined;
    const requestLimit = this.#requestLimit();
    const proc = this.#spawner.spawn(
      { slot, workers: this.#desired, requestLimit },
      {
        message: (message) => handle && this.#enqueue({ type: 'worker-message', worker: handle, message }),
        exit: (code, signal) => handle && this.#enqueue({ type: 'worker-exit', worker: handle, code, signal }),
        disconnect: () => handle && this.#enqueue({ type: 'worker-disconnect', worker: handle }),
      },
    );
    handle = new WorkerHandle(id, slot, this.#generation, proc, this.#clock.now());
    handle.requestLimit = requestLimit;
    this.#workers.set(id, handle);
    const w = handle;
    w.arm('boot', this.#config.bootTimeout, this.#clock, () => this.#enqueue({ type: 'timer', kind: 'boot', worker: w }));
  }

  /** Each worker gets its own limit (gunicorn's max-requests + jitter) so they do not all recycle at once. */
  #requestLimit(): number | undefined {
    const { maxRequests, maxRequestsJitter } = this.#config;
    return maxRequests === undefined ? undefined : maxRequests + Math.floor(Math.random() * (maxRequestsJitter + 1));
  }

  #drainWorker(w: WorkerHandle, reason: RestartReason | 'stop'): void {
    if (!w.live) return;
    const serving = w.state === 'ready';
    w.transition('draining', this.#clock.now());
    w.endReason = reason;
    if (reason !== 'stop' && serving) this.#countRestart(w.slot, reason);
    w.proc.send({ corral: 1, type: 'drain', idleCloseMs: this.#config.idleCloseMs, reason });
    w.arm('grace', this.#config.grace, this.#clock, () => this.#enqueue({ type: 'timer', kind: 'grace', worker: w }));
  }

  #finishStop(): void {
    this.#phase = 'stopped';
    this.#log('info', `stopped (exit code ${this.#exitCode})`);
    this.emit('stopped', { exitCode: this.#exitCode });
    this.#done.resolve(this.#exitCode);
  }

  // ---- waiters: resolved once the state they wait for holds ---------------

  #settle(): void {
    if (this.#phase !== 'running') return;
    if (this.#allSlotsServedFresh()) this.#started.resolve();
    const job = this.#reload;
    if (job && this.#allSlotsServedFresh() && ![...this.#workers.values()].some((w) => w.live && this.#isStale(w))) {
      this.#reload = null;
      this.#log('info', `reload to generation ${job.target} complete`);
      for (const d of job.waiters) d.resolve();
      this.emit('reload:done', { generation: job.target });
      this.#startQueuedReload();
    }
    const reached = this.#allSlotsServedFresh() && ![...this.#workers.values()].some((w) => w.live && w.slot >= this.#desired);
    if (reached) for (const s of this.#scaleWaiters.splice(0)) s.reply.resolve(this.#desired);
  }

  #allSlotsServedFresh(): boolean {
    for (let slot = 0; slot < this.#desired; slot++) {
      if (!this.#liveIn(slot).some((w) => w.state === 'ready' && !this.#isStale(w))) return false;
    }
    return true;
  }

  // ---- bookkeeping --------------------------------------------------------

  #slot(n: number): SlotRecord {
    let s = this.#slots.get(n);
    if (!s) {
      s = { failures: 0, respawnAt: 0, restarts: 0, reasons: {} };
      this.#slots.set(n, s);
    }
    return s;
  }

  #countRestart(slot: number, reason: RestartReason): void {
    const s = this.#slot(slot);
    s.restarts += 1;
    s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
  }

  #waitingSlots(now: number): WaitingSlot[] {
    if (this.#phase !== 'running') return [];
    const out: WaitingSlot[] = [];
    for (let slot = 0; slot < this.#desired; slot++) {
      if (this.#liveIn(slot).length > 0) continue;
      const rec = this.#slot(slot);
      out.push({ slot, restartInMs: Math.max(0, rec.respawnAt - now), restarts: rec.restarts, restartReasons: { ...rec.reasons } });
    }
    return out;
  }

  #workerStatus(w: WorkerHandle, now: number): WorkerStatus {
    const slot = this.#slot(w.slot);
    return {
      slot: w.slot,
      pid: w.pid,
      state: w.state,
      generation: w.generation,
      uptimeMs: now - w.spawnedAt,
      restarts: slot.restarts,
      restartReasons: { ...slot.reasons },
      rss: w.stats?.rss ?? null,
      heapUsed: w.stats?.heapUsed ?? null,
      cpuPercent: w.stats ? Math.round(w.cpuPercent * 10) / 10 : null,
      requests: w.stats?.requests ?? null,
      connections: w.stats?.connections ?? null,
      loopDelayMs: w.stats ? Math.round(w.stats.loopDelayMax * 10) / 10 : null,
      lastHeartbeatMsAgo: w.lastHeartbeat === undefined ? null : now - w.lastHeartbeat,
      address: w.address ?? null,
    };
  }

  #log(level: LogRecord['level'], msg: string): void {
    this.#sink.write(corralRecord(level, msg, new Date(this.#clock.now())));
  }
}

export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `was killed by ${signal}`;
  return `exited with code ${code ?? 'unknown'}`;
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MB`;
}
