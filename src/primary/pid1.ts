/**
 * Running as PID 1 (a container started without an init) differs in two
 * ways. The kernel never applies a default action to init: a signal without
 * a handler is dropped, so SIGTERM before corral's handlers exist would be
 * lost and `docker stop` would wait for its SIGKILL. And orphaned processes
 * are re-parented to PID 1, but Node only waits for the children it spawned
 * itself, so a grandchild an app abandons stays a zombie.
 */

export const PID1_WARNING =
  'corral is PID 1 (a container without an init): Node cannot reap orphaned grandchildren, so processes your app ' +
  'starts and abandons stay zombies. Run with `docker run --init`, or make tini the entrypoint ' +
  '(ENTRYPOINT ["/usr/bin/tini", "--"], as examples/docker/Dockerfile does)';

let warned = false;

/** The warning, the first time it is asked for in a PID 1 process; null otherwise. */
export function pid1Warning(pid = process.pid): string | null {
  if (pid !== 1 || warned) return null;
  warned = true;
  return PID1_WARNING;
}

const EARLY_EXIT: Array<[NodeJS.Signals, number]> = [
  ['SIGTERM', 128 + 15],
  ['SIGINT', 128 + 2],
];

/**
 * As PID 1, give SIGTERM/SIGINT the default action they would have anywhere
 * else (exit) for as long as nothing else handles them: from the CLI's first
 * line until the clusters' own handlers take over, and after they are gone.
 */
export function exitOnUnhandledStopSignals(pid = process.pid): void {
  if (pid !== 1) return;
  for (const [signal, code] of EARLY_EXIT) {
    process.on(signal, () => {
      if (process.listenerCount(signal) === 1) process.exit(code);
    });
  }
}
