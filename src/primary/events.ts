import type { WorkerToPrimary } from '../common/ipc.js';
import type { Deferred } from './deferred.js';
import type { EndReason, TimerKind, WorkerHandle } from './worker.js';

/** Every input of the supervisor, handled one at a time. */
export type SupervisorEvent =
  | { type: 'start' }
  | { type: 'worker-message'; worker: WorkerHandle; message: WorkerToPrimary; handle?: unknown }
  | { type: 'worker-exit'; worker: WorkerHandle; code: number | null; signal: string | null }
  | { type: 'worker-disconnect'; worker: WorkerHandle }
  | { type: 'worker-spawn-failed'; worker: WorkerHandle; error: Error }
  | { type: 'timer'; kind: TimerKind; worker: WorkerHandle }
  | { type: 'respawn-due' }
  /** Nothing changed outside, but the desired state did: look again (e.g. spares may boot now). */
  | { type: 'reconcile' }
  | { type: 'reload'; reply: Deferred<void>; hard?: boolean }
  | { type: 'scale'; to: number; force: boolean; reply: Deferred<number> }
  | { type: 'stop'; force: boolean };

/** What the library API and the log can observe, in order. */
export interface ClusterEvents {
  'worker:message': [{ slot: number; pid: number | undefined; payload: unknown }];
  'worker:ready': [{ slot: number; pid: number | undefined; generation: number }];
  'worker:exit': [{ slot: number; pid: number | undefined; code: number | null; signal: string | null; reason: EndReason }];
  'reload:start': [{ generation: number }];
  'reload:done': [{ generation: number }];
  'reload:failed': [{ generation: number; error: string }];
  /** The stop began (a request, a signal, or an app that cannot start): no more reloads or scaling. */
  stopping: [];
  stopped: [{ exitCode: number }];
}
