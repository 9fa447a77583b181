import { closeSync, constants, openSync } from 'node:fs';
import { corralRecord, type LogSink } from '../logs/sink.js';
import type { Supervisor } from './supervisor.js';

/** Does this process still have a controlling terminal? (/dev/tty opens only if so.) */
export function hasControllingTerminal(): boolean {
  try {
    closeSync(openSync('/dev/tty', constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY));
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGHUP means two things: "reload" (gunicorn's convention, systemd's
 * ExecReload, `kill -HUP`) and "your terminal is gone" (a closed terminal
 * window or SSH session). A run that had a terminal and has lost it stops
 * cleanly, as any foreground program would, instead of half-dying with a
 * stale socket; every other SIGHUP reloads.
 */
export function meaningOfHangup(hadTerminal: boolean, hasTerminal: () => boolean): 'reload' | 'stop' {
  return hadTerminal && !hasTerminal() ? 'stop' : 'reload';
}

/**
 * The primary's signals become supervisor calls (gunicorn's conventions):
 * INT/TERM stop gracefully (a second one forces), HUP reloads (or stops when
 * the terminal went away), TTIN/TTOU add or remove a worker. Returns a
 * function that removes the handlers.
 */
export function installSignals(supervisor: Supervisor, sink: LogSink): () => void {
  const hadTerminal = hasControllingTerminal();
  const onHangup = (): void => {
    if (meaningOfHangup(hadTerminal, hasControllingTerminal) === 'reload') {
      supervisor.reload().catch(() => {});
      return;
    }
    sink.write(corralRecord('warn', 'the terminal was closed (SIGHUP); stopping gracefully'));
    void supervisor.stop(supervisor.stopping);
  };
  const handlers: Array<[NodeJS.Signals, () => void]> = [
    ['SIGINT', () => void supervisor.stop(supervisor.stopping)],
    ['SIGTERM', () => void supervisor.stop(supervisor.stopping)],
    ['SIGHUP', onHangup],
    ['SIGTTIN', () => supervisor.scale(supervisor.desired + 1).catch(() => {})],
    ['SIGTTOU', () => supervisor.scale(supervisor.desired - 1).catch(() => {})],
  ];
  for (const [sig, fn] of handlers) process.on(sig, fn);
  return () => {
    for (const [sig, fn] of handlers) process.off(sig, fn);
  };
}
