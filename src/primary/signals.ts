import type { Supervisor } from './supervisor.js';

/**
 * The primary's signals become supervisor calls (gunicorn's conventions):
 * INT/TERM stop gracefully (a second one forces), HUP reloads, TTIN/TTOU
 * add or remove a worker. Returns a function that removes the handlers.
 */
export function installSignals(supervisor: Supervisor): () => void {
  const handlers: Array<[NodeJS.Signals, () => void]> = [
    ['SIGINT', () => void supervisor.stop(supervisor.stopping)],
    ['SIGTERM', () => void supervisor.stop(supervisor.stopping)],
    ['SIGHUP', () => supervisor.reload().catch(() => {})],
    ['SIGTTIN', () => supervisor.scale(supervisor.desired + 1).catch(() => {})],
    ['SIGTTOU', () => supervisor.scale(supervisor.desired - 1).catch(() => {})],
  ];
  for (const [sig, fn] of handlers) process.on(sig, fn);
  return () => {
    for (const [sig, fn] of handlers) process.off(sig, fn);
  };
}
