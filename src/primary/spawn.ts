import cluster, { type ClusterSettings, type Worker } from 'node:cluster';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isWorkerMessage, ENV, type PrimaryToWorker, type WorkerToPrimary } from '../common/ipc.js';
import { isErrnoException } from '../common/errors.js';
import type { ResolvedOptions } from '../config/options.js';
import type { LogRecord, LogSink } from '../logs/sink.js';
import { WorkerOutput } from '../logs/worker-output.js';
import type { Balancer } from './balancing.js';

/** What the supervisor may do to a running worker process. */
export interface SpawnedProcess {
  readonly pid: number;
  send(message: PrimaryToWorker): void;
  /** Signal the process; a process that is already gone is not an error. */
  kill(signal: NodeJS.Signals): void;
  /** Print output held back while the worker booted. */
  releaseOutput(): void;
  /** Take held boot output without printing it. */
  takeHeldOutput(): LogRecord[];
  recentErrors(): string[];
}

/** How a spawned process reports back; each callback becomes a supervisor event. */
export interface SpawnEvents {
  message(message: WorkerToPrimary): void;
  exit(code: number | null, signal: string | null): void;
  disconnect(): void;
}

export interface SpawnRequest {
  slot: number;
  workers: number;
  /** Requests after which the worker reports at once, so it is recycled promptly. */
  requestLimit?: number | undefined;
}

export interface Spawner {
  spawn(request: SpawnRequest, events: SpawnEvents): SpawnedProcess;
}

const RUNTIME_URL = pathToFileURL(fileURLToPath(new URL('../worker/runtime.js', import.meta.url))).href;

/** After `exit`, how long to wait for the pipes to deliver the last lines (a grandchild may hold them open). */
const OUTPUT_SETTLE_MS = 500;
const BOOT_HOLD_MS = 1000;

/** The only place that forks: node:cluster with the worker runtime preloaded. */
export class ClusterSpawner implements Spawner {
  readonly #options: ResolvedOptions;
  readonly #sink: LogSink;
  readonly #balancer: Balancer;
  readonly #settings: ClusterSettings;

  constructor(options: ResolvedOptions, sink: LogSink, balancer: Balancer, extraExecArgv: string[] = []) {
    this.#options = options;
    this.#sink = sink;
    this.#balancer = balancer;
    // node:cluster freezes the policy at the first setupPrimary(): one strategy per process.
    cluster.schedulingPolicy = balancer.schedulingPolicy;
    this.#settings = {
      exec: options.script,
      args: options.args,
      cwd: options.cwd,
      silent: true,
      execArgv: [...process.execArgv, ...extraExecArgv, '--import', RUNTIME_URL],
    };
  }

  spawn(request: SpawnRequest, events: SpawnEvents): SpawnedProcess {
    const env: Record<string, string> = {
      ...this.#options.env,
      ...this.#balancer.workerEnv,
      [ENV.workerId]: String(request.slot),
      [ENV.workers]: String(request.workers),
      [ENV.name]: this.#options.name,
    };
    if (this.#options.port !== undefined) env.PORT = String(this.#options.port);
    if (request.requestLimit !== undefined) env[ENV.requestLimit] = String(request.requestLimit);
    // Settings are process-wide; set them per fork so two clusters in one process do not mix.
    cluster.setupPrimary(this.#settings);
    const worker = cluster.fork(env);
    const pid = worker.process.pid ?? -1;
    const output = new WorkerOutput(this.#sink, request.slot, pid, worker.process, BOOT_HOLD_MS);
    wireEvents(worker, output, events);
    return {
      pid,
      send: (message) => sendTo(worker, message),
      kill: (signal) => killProcess(pid, signal),
      releaseOutput: () => output.release(),
      takeHeldOutput: () => output.takeHeld(),
      recentErrors: () => output.recentErrors(),
    };
  }
}

function wireEvents(worker: Worker, output: WorkerOutput, events: SpawnEvents): void {
  let disconnected = false;
  const disconnect = (): void => {
    if (disconnected) return;
    disconnected = true;
    events.disconnect();
  };
  worker.on('message', (message: unknown) => {
    if (isWorkerMessage(message)) events.message(message);
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

export function killProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if (!isErrnoException(err, 'ESRCH')) throw err;
  }
}
