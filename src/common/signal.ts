import { isErrnoException } from './errors.js';

/** Thrown when a caller asks to signal something other than one process. */
export class UnsafeSignalError extends Error {
  readonly code = 'E_UNSAFE_SIGNAL';
  constructor(pid: unknown, signal: NodeJS.Signals | 0) {
    super(`refusing to send ${signal === 0 ? 'signal 0' : signal} to pid ${String(pid)}: only one process (pid > 0) may be signalled`);
    this.name = 'UnsafeSignalError';
  }
}

/**
 * The one place corral signals a process. kill(2) with pid 0 signals our
 * own process group, -1 every process we may signal, -N a whole group: a
 * pid that is not a positive integer (a failed fork leaves it undefined) is
 * a bug and must never reach the kernel. Returns false when the process is
 * already gone.
 */
export function signalProcess(pid: number | undefined, signal: NodeJS.Signals | 0): boolean {
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) throw new UnsafeSignalError(pid, signal);
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if (isErrnoException(err, 'ESRCH')) return false;
    throw err;
  }
}

/** Is there a process with this pid? (signal 0: permission and existence check only). */
export function processExists(pid: number): boolean {
  try {
    return signalProcess(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if (isErrnoException(err, 'EPERM')) return true;
    throw err;
  }
}
