/**
 * What a user's script may import to cooperate with corral. Every member
 * works under plain `node` too, so the same app runs with and without it.
 */
import cluster from 'node:cluster';
import { ENV, type WorkerToPrimary } from '../common/ipc.js';

const managed = cluster.isWorker && process.env[ENV.workerId] !== undefined && typeof process.send === 'function';

function send(message: WorkerToPrimary): void {
  if (managed && process.connected) process.send?.(message);
}

export const worker = {
  /** True when this process is a worker run by corral. */
  isPrimaryManaged: managed,
  /** This worker's stable slot, 0..count-1 (0 outside corral). */
  id: managed ? Number(process.env[ENV.workerId]) : 0,
  /** How many workers the cluster had when this one started (1 outside corral). */
  count: managed ? Number(process.env[ENV.workers]) : 1,
  /**
   * Tell the primary this worker can take work. Servers are ready when they
   * listen; scripts that never listen (queue consumers) call this instead.
   */
  ready(): void {
    send({ corral: 1, type: 'ready' });
  },
};
