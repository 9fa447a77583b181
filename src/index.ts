/**
 * The library API: `start()` runs a cluster in this process and returns a
 * handle; the `corral` CLI is a thin layer over it.
 */
import { resolveStartOptions, type StartOptions } from './config/options.js';
import { runCluster, type ClusterHandle, type RunOptions } from './primary/run.js';

export type { StartOptions, Strategy, LogFormat } from './config/options.js';
export type { ClusterHandle, RunOptions } from './primary/run.js';
export type { ClusterStatus, WaitingSlot, WorkerStatus } from './primary/status.js';
export type { ClusterEvents, RequestHandler } from './primary/supervisor.js';
export type { RestartReason, WorkerState } from './primary/worker.js';
export { CorralError, UsageError, BootError, ReloadError } from './common/errors.js';
export { usableCpus } from './primary/cpus.js';

/**
 * Validate `options`, fork the workers and resolve once every one is ready.
 * Rejects with UsageError on bad options and BootError when the app cannot
 * start (after its workers are gone).
 */
export async function start(options: StartOptions, run: RunOptions = {}): Promise<ClusterHandle> {
  return runCluster(resolveStartOptions(options), run);
}
