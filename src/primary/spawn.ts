import cluster, { type ClusterSettings, type Worker } from 'node:cluster';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isWorkerMessage, ENV, type PrimaryToWorker, type WorkerToPrimary } from '../common/ipc.js';
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { signalProcess } from '../common/signal.js';
import { envFromFiles } from '../config/env-file.js';
import type { ResolvedOptions } from '../config/options.js';
import { corralRecord, type LogRecord, type LogSink } from '../logs/sink.js';
import { WorkerOutput } from '../logs/worker-output.js';
import { AdapterRelay, isAdapterMessage, type RelayPeer } from './adapter-relay.js';
import type { Balancer } from './balancing.js';
import { describeSticky } from '../config/sticky.js';

/** What the supervisor may do to a running worker process. */
export interface SpawnedProcess {
  /** Undefined when the process could not be created (see SpawnEvents.spawnError). */
  readonly pid: number | undefined;
  send(message: PrimaryToWorker): void;
  /**
   * Send a message with a socket handle (a routed connection). `done` gets an
   * error when it could not be sent (the channel closed): the handle is still
   * the caller's then.
   */
  sendHandle(message: PrimaryToWorker, handle: object, done: (err: Error | null) => void): void;
  /** Signal the process; a process that is already gone is not an error. */
  kill(signal: NodeJS.Signals): void;
  /** Print output held back while the worker booted. */
  releaseOutput(): void;
  /** A spare was promoted: its log lines carry this slot from now on. */
  assignSlot(slot: number): void;
  /** Take held boot output without printing it. */
  takeHeldOutput(): LogRecord[];
  /** Take the error lines a dying worker printed last, not yet shown. */
  takeCrashOutput(): LogRecord[];
  recentErrors(): string[];
}

/** How a spawned process reports back; each callback becomes a supervisor event. */
export interface SpawnEvents {
  /** `handle`: a socket that came with the message (a sticky connection sent back). */
  message(message: WorkerToPrimary, handle?: unknown): void;
  exit(code: number | null, signal: string | null): void;
  disconnect(): void;
  /**
   * The process could not be created at all (deleted cwd, EAGAIN under a
   * pids limit, EACCES). No exit or disconnect follows. Always reported
   * after spawn() returned.
   */
  spawnError(err: Error): void;
}

/**
 * The code a generation runs: its working directory and script, resolved to
 * physical paths when the generation began (at start, at each reload). In a
 * symlinked layout (`current -> releases/v2`) a generation keeps its own
 * release even after `current` moves, until the next reload.
 */
export interface Release {
  /** Two generations with the same id run the same files (an in-place deploy). */
  readonly id: string;
  readonly cwd: string;
  readonly script: string;
}

export interface SpawnRequest {
  slot: number;
  workers: number;
  /** Requests after which the worker reports at once, so it is recycled promptly. */
  requestLimit?: number | undefined;
  /** What to run; the spawner falls back to the configured paths if this release is gone. */
  release?: Release | undefined;
  /** Boot as a warm spare: listen() calls are held until the primary promotes it. */
  spare?: boolean;
}

export interface Spawner {
  /** Resolve the release the configured (logical) paths name right now; throws if they name nothing. */
  release(): Release;
  spawn(request: SpawnRequest, events: SpawnEvents): SpawnedProcess;
}

const RUNTIME_URL = pathToFileURL(fileURLToPath(new URL('../worker/runtime.js', import.meta.url))).href;

/** After `exit`, how long to wait for the pipes to deliver the last lines (a grandchild may hold them open). */
const OUTPUT_SETTLE_MS = 500;
const BOOT_HOLD_MS = 1000;

/** What a worker needs to know to drain by itself when it gets SIGTERM directly. */
export interface DrainTimes {
  graceMs: number;
  idleCloseMs: number;
}

const SETSID = ['/usr/bin/setsid', '/bin/setsid'].find(isExecutable);

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Fork through setsid(1), so each worker leads a session and process group
 * of its own: Ctrl-C, a closed terminal or `kill -- -PGID` then reach only
 * the primary, which alone decides when a worker drains (an app's own
 * SIGINT handler would otherwise race the drain). Workers still exit when
 * the primary dies: their IPC channel closes. node:cluster has no option
 * for this and forks process.execPath, so that is pointed at setsid for the
 * synchronous duration of the fork, with node as setsid's first argument.
 * Where setsid(1) is missing (macOS), workers share the primary's group.
 */
function forkInOwnSession(settings: ClusterSettings, env: Record<string, string>): Worker {
  // Settings are process-wide; set them per fork so two clusters in one process do not mix.
  if (!SETSID) {
    cluster.setupPrimary(settings);
    return cluster.fork(env);
  }
  const node = process.execPath;
  cluster.setupPrimary({ ...settings, execArgv: [node, ...(settings.execArgv ?? [])] });
  process.execPath = SETSID;
  try {
    return cluster.fork(env);
  } finally {
    process.execPath = node;
  }
}

/** The only place that forks: node:cluster with the worker runtime preloaded. */
export class ClusterSpawner implements Spawner {
  readonly #options: ResolvedOptions;
  readonly #sink: LogSink;
  readonly #balancer: Balancer;
  readonly #settings: ClusterSettings;
  readonly #drain: DrainTimes;
  readonly #warnedGone = new Set<string>();
  readonly #compileCache: string | undefined;
  /** Socket.IO cluster-adapter messages between this app's workers (see adapter-relay.ts). */
  readonly #relay: AdapterRelay | undefined;

  constructor(options: ResolvedOptions, sink: LogSink, balancer: Balancer, drain: DrainTimes, extraExecArgv: string[] = [], compileCache?: string) {
    this.#options = options;
    this.#drain = drain;
    this.#compileCache = compileCache;
    this.#sink = sink;
    this.#balancer = balancer;
    this.#relay = options.adapterRelay ? new AdapterRelay() : undefined;
    // node:cluster freezes the policy at the first setupPrimary(): one strategy per process.
    cluster.schedulingPolicy = balancer.schedulingPolicy;
    this.#settings = {
      exec: options.script,
      args: options.args,
      cwd: options.cwd,
      silent: true,
      execArgv: [...process.execArgv, ...extraExecArgv, '--import', RUNTIME_URL, ...options.nodeArgs],
    };
  }

  release(): Release {
    const { cwd, script } = this.#options;
    let real: { cwd: string; script: string };
    try {
      real = { cwd: realpathSync(cwd), script: realpathSync(script) };
    } catch (err) {
      const missing = existsSync(cwd) ? script : cwd;
      throw new Error(`${missing} does not exist (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return { id: `${real.cwd}\0${real.script}`, ...real };
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warnedGone.has(key)) return;
    this.#warnedGone.add(key);
    this.#sink.write(corralRecord('warn', message));
  }

  /** The pinned release while it exists; else the configured paths, which resolve afresh (`current` moved on). */
  #where(release: Release | undefined): { cwd: string; exec: string } {
    if (release && existsSync(release.cwd) && existsSync(release.script)) return { cwd: release.cwd, exec: release.script };
    if (release && !this.#warnedGone.has(release.id)) {
      this.#warnedGone.add(release.id);
      this.#sink.write(corralRecord('warn', `release ${release.cwd} is gone; starting workers from ${this.#options.cwd} instead`));
    }
    return { cwd: this.#options.cwd, exec: this.#options.script };
  }

  spawn(request: SpawnRequest, events: SpawnEvents): SpawnedProcess {
    const env: Record<string, string> = {
      ...envFromFiles(this.#options.envFile, process.env, (file, err) => this.#warnOnce(file, `cannot read env file ${file} (${(err as NodeJS.ErrnoException).code ?? err.message}); its variables are left out`)),
      ...this.#options.env,
      ...this.#balancer.workerEnv,
      [ENV.workerId]: request.spare ? '' : String(request.slot),
      [ENV.workers]: String(request.workers),
      [ENV.name]: this.#options.name,
      [ENV.graceMs]: String(this.#drain.graceMs),
      [ENV.idleCloseMs]: String(this.#drain.idleCloseMs),
    };
    if (this.#options.port !== undefined) env.PORT = String(this.#options.port);
    if (this.#options.sticky) env[ENV.sticky] = describeSticky(this.#options.sticky);
    if (request.requestLimit !== undefined) env[ENV.requestLimit] = String(request.requestLimit);
    if (request.spare) env[ENV.spare] = '1';
    if (this.#compileCache) env.NODE_COMPILE_CACHE = this.#compileCache;
    const where = this.#where(request.release);
    const settings = { ...this.#settings, ...where };
    let worker: Worker;
    try {
      worker = forkInOwnSession(settings, env);
    } catch (err) {
      // Some spawn errors are thrown rather than emitted; report them the same way.
      return failedProcess(err as Error, where.cwd, events);
    }
    const pid = worker.process.pid;
    if (pid === undefined) {
      // node:cluster keeps the worker in cluster.workers until exit + disconnect, which never come.
      if (worker.id !== undefined) delete cluster.workers?.[worker.id];
      // node:cluster re-emits the child's 'error' on the worker; unheard, that would throw here.
      worker.on('error', () => {});
      worker.process.once('error', (err: Error) => events.spawnError(explainSpawnError(err, where.cwd)));
      return failedProcess(null, where.cwd, events);
    }
    const output = new WorkerOutput(this.#sink, request.slot, pid, worker.process, BOOT_HOLD_MS);
    wireEvents(worker, output, events, this.#relay);
    return {
      pid,
      send: (message) => sendTo(worker, message),
      sendHandle: (message, handle, done) => sendHandleTo(worker, message, handle, done),
      kill: (signal) => void signalProcess(pid, signal),
      releaseOutput: () => output.release(),
      assignSlot: (slot) => output.assignSlot(slot),
      takeHeldOutput: () => output.takeHeld(),
      takeCrashOutput: () => output.takeBurst(),
      recentErrors: () => output.recentErrors(),
    };
  }
}

/**
 * A process that never existed: nothing to send to or signal. With `err`
 * (thrown by fork) the failure is reported on the next turn, so the caller
 * has its handle first; otherwise the child's own 'error' event reports it.
 */
function failedProcess(err: Error | null, cwd: string | undefined, events: SpawnEvents): SpawnedProcess {
  if (err) setImmediate(() => events.spawnError(explainSpawnError(err, cwd)));
  return {
    pid: undefined,
    send: () => {},
    sendHandle: (_message, _handle, done) => done(new Error('no such process')),
    kill: () => {},
    releaseOutput: () => {},
    assignSlot: () => {},
    takeHeldOutput: () => [],
    takeCrashOutput: () => [],
    recentErrors: () => [],
  };
}

/** `spawn /usr/bin/node ENOENT` blames node when the missing thing is the working directory. */
export function explainSpawnError(err: Error, cwd: string | undefined, exists: (p: string) => boolean = existsSync): Error {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  let hint = '';
  if (cwd !== undefined && !exists(cwd)) hint = ` (cwd ${cwd} no longer exists)`;
  else if (code === 'EAGAIN') hint = ' (too many processes: a pids limit or ulimit -u was reached)';
  else if (code === 'EACCES') hint = ` (permission denied running ${process.execPath}${cwd ? ` in ${cwd}` : ''})`;
  return Object.assign(new Error(`spawn ${code}${hint}`), { code });
}

function wireEvents(worker: Worker, output: WorkerOutput, events: SpawnEvents, relay: AdapterRelay | undefined): void {
  let disconnected = false;
  const peer: RelayPeer = { send: (message) => worker.isConnected() && worker.send(message as object, undefined, () => {}) };
  relay?.add(peer);
  const disconnect = (): void => {
    if (disconnected) return;
    disconnected = true;
    relay?.remove(peer);
    events.disconnect();
  };
  worker.on('message', (message: unknown, handle: unknown) => {
    if (isWorkerMessage(message)) events.message(message, handle);
    else if (relay && isAdapterMessage(message)) relay.forward(peer, message);
  });
  // Without a listener an IPC error (send on a closing channel) would be thrown in the primary.
  worker.on('error', () => {});
  worker.once('disconnect', disconnect);
  worker.once('exit', (code: number | null, signal: string | null) => {
    let reported = false;
    const report = (): void => {
      if (reported) return;
      reported = true;
      clearTimeout(timer);
      // A worker that exits while a message to it is still being written
      // may never emit 'disconnect' (seen on Node 24); a dead process's
      // channel carries nothing more, so count it as closed.
      disconnect();
      events.exit(code, signal);
    };
    const timer = setTimeout(report, OUTPUT_SETTLE_MS);
    void output.closed.then(report);
  });
}

function sendTo(worker: Worker, message: PrimaryToWorker): void {
  if (!worker.isConnected()) return;
  worker.send(message, undefined, () => {});
}

function sendHandleTo(worker: Worker, message: PrimaryToWorker, handle: object, done: (err: Error | null) => void): void {
  if (!worker.isConnected()) return done(new Error('the worker\'s channel is closed'));
  try {
    worker.send(message, handle as never, {}, (err) => done(err ?? null));
  } catch (err) {
    done(err as Error);
  }
}

