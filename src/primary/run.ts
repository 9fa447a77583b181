import type { AdminServer } from '../admin/server.js';
import type { AdminOptions, ResolvedOptions } from '../config/options.js';
import { ControlServer } from '../control/server.js';
import { ensurePrivateHome } from '../control/paths.js';
import { compileCacheFor, prepareCompileCache } from './compile-cache.js';
import { runCommand } from '../control/commands.js';
import { JsonSink, TextSink, corralRecord, type LogSink } from '../logs/sink.js';
import { chooseStrategy, reusePortCaveat } from './balancing.js';
import { autoWorkers, readText, usableCpus, type WorkerSizing } from './cpus.js';
import { ClusterSpawner } from './spawn.js';
import { typeScriptExecArgv } from './typescript.js';
import type { ClusterStatus } from './status.js';
import { installSignals } from './signals.js';
import { pid1Warning } from './pid1.js';
import { Supervisor, type ClusterEvents, type RequestHandler } from './supervisor.js';
import { checkPayload } from '../common/ipc.js';
import { corralVersion } from '../common/version.js';

/** After SIGTERM at the end of the grace period, how long a worker has before SIGKILL. */
export const KILL_TIMEOUT_MS = 3000;
/** A draining worker closes keep-alive connections that stayed idle this long. */
export const IDLE_CLOSE_MS = 1000;

/** A running cluster, as the library API and the CLI see it. */
export interface ClusterHandle {
  readonly name: string;
  readonly pid: number;
  /** Path of the control socket, when the control channel is on. */
  readonly controlSocket: string | undefined;
  /** URL of the admin HTTP server (`--admin`), with the port it really got. */
  readonly adminUrl: string | undefined;
  /** Resolves with the primary's exit code once every worker is gone. */
  readonly done: Promise<number>;
  reload(): Promise<void>;
  /** More than 4 per usable CPU needs `{ force: true }`. */
  scale(workers: number, options?: { force?: boolean }): Promise<number>;
  stop(): Promise<number>;
  status(): ClusterStatus;
  /** Answer workers' `worker.request(name, payload)`. */
  onRequest(name: string, handler: RequestHandler): ClusterHandle;
  /** Send a message to every worker's `worker.on('message')`; returns how many got it. */
  broadcast(payload: unknown): number;
  on<E extends keyof ClusterEvents>(event: E, listener: (...args: ClusterEvents[E]) => void): ClusterHandle;
  off<E extends keyof ClusterEvents>(event: E, listener: (...args: ClusterEvents[E]) => void): ClusterHandle;
}

export interface RunOptions {
  /** Turn SIGINT/SIGTERM/SIGHUP/SIGTTIN/SIGTTOU into supervisor events (the CLI does). */
  handleSignals?: boolean;
}

/** The workers' shared compile cache, or why there is none (said once, at debug level). */
function setUpCompileCache(options: ResolvedOptions, sink: LogSink): { dir: string | undefined } {
  const cache = compileCacheFor({ enabled: options.compileCache, home: options.home, name: options.name, env: options.env });
  if ('off' in cache) {
    sink.write(corralRecord('debug', `compile cache off: ${cache.off}`));
    return { dir: undefined };
  }
  try {
    ensurePrivateHome(options.home);
    prepareCompileCache(cache.dir);
    return { dir: cache.dir };
  } catch (err) {
    sink.write(corralRecord('warn', `compile cache off: cannot use ${cache.dir} (${(err as Error).message})`));
    return { dir: undefined };
  }
}

/** Workers booting at once: booting is CPU-bound, more than two per CPU only slows them all. */
function spawnBatch(): number {
  return Math.max(4, 2 * usableCpus());
}

function makeSink(options: ResolvedOptions): LogSink {
  return options.logFormat === 'json' ? new JsonSink(options.name) : new TextSink(options.name, options.prefix);
}

export async function runCluster(options: ResolvedOptions, run: RunOptions = {}): Promise<ClusterHandle> {
  const choice = chooseStrategy(options.strategy);
  const execArgv = typeScriptExecArgv(options.script, options.cwd);
  const sink = makeSink(options);
  const cache = setUpCompileCache(options, sink);
  const sizing: WorkerSizing = options.workers === 'auto' ? autoWorkers() : { workers: options.workers, source: 'set explicitly' };
  const supervisor = new Supervisor(
    {
      name: options.name,
      script: options.script,
      strategy: choice.balancer.name,
      workers: sizing.workers,
      sizing,
      bootTimeout: options.bootTimeout,
      grace: options.grace,
      killTimeout: KILL_TIMEOUT_MS,
      watchdog: options.watchdog,
      maxMemory: options.maxMemory,
      maxRequests: options.maxRequests,
      maxRequestsJitter: options.maxRequestsJitter,
      reloadParallel: options.reloadParallel,
      reloadVerify: options.reloadVerify,
      idleCloseMs: IDLE_CLOSE_MS,
      maxWorkers: options.maxWorkers,
      spawnBatch: spawnBatch(),
      spares: options.spares,
      compileCache: cache.dir,
    },
    new ClusterSpawner(options, sink, choice.balancer, { graceMs: options.grace, idleCloseMs: IDLE_CLOSE_MS }, execArgv, cache.dir),
    sink,
  );
  for (const [name, handler] of Object.entries(options.onRequest)) supervisor.onRequest(name, handler);
  const stopDeadlineMs = options.grace + KILL_TIMEOUT_MS + 5000;
  const control = options.control ? await ControlServer.listen(options.home, options.name, (req, progress) => runCommand(supervisor, req, progress, stopDeadlineMs)) : undefined;
  let admin;
  try {
    admin = options.admin ? await startAdmin(options.admin, supervisor, stopDeadlineMs, sink) : undefined;
  } catch (err) {
    await control?.close();
    throw err;
  }
  const pid1 = pid1Warning();
  if (pid1) sink.write(corralRecord('warn', pid1));
  if (choice.note) sink.write(corralRecord('info', `strategy ${choice.note}`));
  const caveat = choice.balancer.name === 'reuseport' ? reusePortCaveat(readText) : null;
  if (caveat) sink.write(corralRecord('warn', caveat));
  const removeSignals = run.handleSignals ? installSignals(supervisor, sink) : () => {};
  // Done once the control socket has written its last answers (a stop's verdict) and closed.
  const done = supervisor.done.then(async (code) => {
    admin?.close();
    removeSignals();
    await control?.close();
    return code;
  });
  try {
    await supervisor.start();
  } catch (err) {
    await done;
    throw err;
  }
  const handle: ClusterHandle = {
    name: options.name,
    pid: process.pid,
    controlSocket: control?.path,
    adminUrl: admin?.url,
    done,
    reload: () => supervisor.reload(),
    scale: (n, opts) => supervisor.scale(n, opts),
    stop: () => supervisor.stop(),
    status: () => supervisor.status(),
    onRequest(name, handler) {
      supervisor.onRequest(name, handler);
      return handle;
    },
    broadcast(payload) {
      checkPayload(payload);
      return supervisor.broadcast(payload);
    },
    on(event, listener) {
      supervisor.on(event, listener as never);
      return handle;
    },
    off(event, listener) {
      supervisor.off(event, listener as never);
      return handle;
    },
  };
  return handle;
}

/** The admin HTTP server, loaded only when asked for (it brings prom-client). */
async function startAdmin(options: AdminOptions, supervisor: Supervisor, stopDeadlineMs: number, sink: LogSink): Promise<AdminServer> {
  const { AdminServer } = await import('../admin/server.js');
  const admin = await AdminServer.listen(options, supervisor, { version: corralVersion(), stopDeadlineMs });
  const auth = options.token !== undefined ? 'Bearer token required except /healthz, /readyz' : 'loopback only, no token';
  sink.write(corralRecord('info', `admin on ${admin.url} (metrics, status, healthz, readyz, dashboard; ${auth}${options.actions ? '; actions on' : ''})`));
  return admin;
}
