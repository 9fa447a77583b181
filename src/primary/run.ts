import path from 'node:path';
import type { AdminServer } from '../admin/server.js';
import { CorralError } from '../common/errors.js';
import type { AdminOptions, ResolvedOptions } from '../config/options.js';
import { ControlServer } from '../control/server.js';
import { ensurePrivateHome } from '../control/paths.js';
import { compileCacheFor, prepareCompileCache } from './compile-cache.js';
import { runCommand } from '../control/commands.js';
import { pathToFileURL } from 'node:url';
import { LogRing } from '../logs/ring.js';
import { JsonSink, TeeSink, TextSink, corralRecord, type LogSink } from '../logs/sink.js';
import { chooseStrategy, reusePortCaveat } from './balancing.js';
import { autoWorkers, readText, usableCpus, type WorkerSizing } from './cpus.js';
import { describeSticky } from '../config/sticky.js';
import { StickyRouter } from './sticky/router.js';
import { ClusterSpawner } from './spawn.js';
import { typeScriptExecArgv } from './typescript.js';
import type { ClusterStatus } from './status.js';
import { installSignals } from './signals.js';
import { pid1Warning } from './pid1.js';
import { Supervisor, type ClusterEvents, type RequestHandler } from './supervisor.js';
import { checkPayload } from '../common/ipc.js';
import { corralVersion } from '../common/version.js';
import { watchFiles, type Watching } from './watch.js';

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
  /** Rolling reload; `{ hard: true }` replaces every worker at once (`corral restart --hard`). */
  reload(options?: { hard?: boolean }): Promise<void>;
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
    // With the control channel on, an unusable home is the user's error to fix (exit 2), said once.
    if (options.control && err instanceof CorralError) throw err;
    sink.write(corralRecord('warn', `compile cache off: cannot use ${cache.dir} (${(err as Error).message})`));
    return { dir: undefined };
  }
}

/** Workers booting at once: booting is CPU-bound, more than two per CPU only slows them all. */
function spawnBatch(): number {
  return Math.max(4, 2 * usableCpus());
}

/** Where the lines go: stdout/stderr, and the ring `corral logs` reads. */
function makeSink(options: ResolvedOptions, ring: LogRing): LogSink {
  const out = options.logFormat === 'json' ? new JsonSink(options.name) : new TextSink(options.name, options.prefix, process.stdout, process.stderr, options.logTime);
  return new TeeSink(out, (record) => ring.add(record));
}

/** Each running cluster's sink, for lines the CLI adds (announce). */
const sinks = new WeakMap<ClusterHandle, LogSink>();

/** One of corral's own lines in a running cluster's log. */
export function announce(handle: ClusterHandle, message: string): void {
  sinks.get(handle)?.write(corralRecord('info', message));
}

export async function runCluster(options: ResolvedOptions, run: RunOptions = {}): Promise<ClusterHandle> {
  const choice = chooseStrategy(options.strategy);
  const execArgv = typeScriptExecArgv(options.script, options.cwd);
  const ring = new LogRing(options.logBuffer);
  const sink = makeSink(options, ring);
  const cache = setUpCompileCache(options, sink);
  const sizing: WorkerSizing = options.workers === 'auto' ? autoWorkers() : { workers: options.workers, source: 'set explicitly' };
  // Listens corral does not route (Unix sockets) still follow the strategy's policy.
  const router = options.sticky ? new StickyRouter(options.sticky, sink) : undefined;
  const supervisor = new Supervisor(
    {
      name: options.name,
      script: options.script,
      strategy: options.sticky ? `sticky ${describeSticky(options.sticky)}` : choice.balancer.name,
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
    undefined,
    router,
  );
  for (const [name, handler] of Object.entries(options.onRequest)) supervisor.onRequest(name, handler);
  const stopDeadlineMs = options.grace + KILL_TIMEOUT_MS + 5000;
  const context = { logs: ring, cwd: options.cwd };
  const control = options.control
    ? await ControlServer.listen(options.home, options.name, (req, progress, gone) => runCommand(supervisor, req, progress, stopDeadlineMs, { ...context, gone }))
    : undefined;
  let admin;
  try {
    admin = options.admin ? await startAdmin(options.admin, supervisor, stopDeadlineMs, sink) : undefined;
  } catch (err) {
    await control?.close();
    throw err;
  }
  const pid1 = pid1Warning();
  if (pid1) sink.write(corralRecord('warn', pid1));
  const caveat = choice.balancer.name === 'reuseport' ? reusePortCaveat(readText) : null;
  if (caveat) sink.write(corralRecord('warn', caveat));
  const removeSignals = run.handleSignals ? installSignals(supervisor, sink) : () => {};
  let watching: Watching | undefined;
  // Done once the control socket has written its last answers (a stop's verdict) and closed.
  const done = supervisor.done.then(async (code) => {
    router?.close();
    admin?.close();
    removeSignals();
    await watching?.close();
    await control?.close();
    return code;
  });
  const handle = makeHandle(options, supervisor, done, control?.path, admin?.url);
  sinks.set(handle, sink);
  if (options.handlers) await loadHandlers(options.handlers, handle, sink);
  try {
    await supervisor.start();
  } catch (err) {
    await done;
    throw err;
  }
  if (options.watch.length > 0 && !supervisor.stopping) watching = await startWatching(options, supervisor, sink);
  return handle;
}

function makeHandle(options: ResolvedOptions, supervisor: Supervisor, done: Promise<number>, controlSocket: string | undefined, adminUrl: string | undefined): ClusterHandle {
  const handle: ClusterHandle = {
    name: options.name,
    pid: process.pid,
    controlSocket,
    adminUrl,
    done,
    reload: (opts) => supervisor.reload(opts),
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

/**
 * `--handlers <module>`: a module of the user's, loaded in the primary
 * before any worker boots, whose default export registers request handlers
 * (`export default (cluster) => { cluster.onRequest('config', ...) }`). Its
 * errors are logged; the primary runs on (requests for names it did not
 * register are answered with E_NO_HANDLER).
 */
async function loadHandlers(file: string, handle: ClusterHandle, sink: LogSink): Promise<void> {
  const fail = (what: string, err: unknown): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    sink.write(corralRecord('error', `the handlers module ${file} ${what} (the primary keeps running; worker.request() calls it should answer get E_NO_HANDLER): ${e.stack ?? e.message}`));
  };
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    return fail('could not be loaded', err);
  }
  if (typeof mod.default !== 'function') return fail('has no default export function', new Error('expected: export default (cluster) => { cluster.onRequest(name, handler) }'));
  try {
    await (mod.default as (cluster: ClusterHandle) => unknown)(handle);
  } catch (err) {
    fail('threw while registering its handlers', err);
  }
}

/** `--watch`: every save is a rolling reload, refused (old workers serving) when the new code fails. */
async function startWatching(options: ResolvedOptions, supervisor: Supervisor, sink: LogSink): Promise<Watching | undefined> {
  const log = (level: 'info' | 'warn' | 'error', msg: string): void => void sink.write(corralRecord(level, msg));
  const shown = (files: string[]): string => {
    const first = path.relative(options.cwd, files[0] as string) || files[0];
    return files.length === 1 ? `${first}` : `${first} and ${files.length - 1} more`;
  };
  const onChange = (files: string[]): void => {
    if (supervisor.stopping) return;
    log('info', `watch: ${shown(files)} changed; reloading`);
    supervisor.reload().catch((err: CorralError) => {
      if (err.code === 'E_RELOAD') log('warn', 'watch: the new code was refused; the old workers keep serving. Fix it and save again');
    });
  };
  try {
    const watching = await watchFiles({ paths: options.watch, ignore: options.watchIgnore, script: options.script }, onChange, (msg) => log('warn', `watch: ${msg}`));
    log('info', `watching ${options.watch.map((p) => path.relative(options.cwd, p) || '.').join(', ')} for changes (node_modules, .git and build output ignored)`);
    return watching;
  } catch (err) {
    log('error', `watch: cannot watch ${options.watch.join(', ')}: ${(err as Error).message}; running without --watch`);
    return undefined;
  }
}

/** The admin HTTP server, loaded only when asked for (it brings prom-client). */
async function startAdmin(options: AdminOptions, supervisor: Supervisor, stopDeadlineMs: number, sink: LogSink): Promise<AdminServer> {
  const { AdminServer } = await import('../admin/server.js');
  const admin = await AdminServer.listen(options, supervisor, { version: corralVersion(), stopDeadlineMs });
  const auth = options.token !== undefined ? 'Bearer token required except /healthz, /readyz' : 'loopback only, no token';
  sink.write(corralRecord('info', `admin on ${admin.url} (metrics, status, healthz, readyz, dashboard; ${auth}${options.actions ? '; actions on' : ''})`));
  return admin;
}
