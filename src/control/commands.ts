import type { LogRing } from '../logs/ring.js';
import { toWire } from '../logs/ring.js';
import type { Supervisor } from '../primary/supervisor.js';
import type { ControlRequest } from './protocol.js';

/** What a command may reach besides the supervisor. */
export interface CommandContext {
  /** The app's recent log lines, for `logs`. */
  logs?: LogRing;
  /** Aborts when the client goes away (ends a `logs --follow`). */
  gone?: AbortSignal;
  /** The app's working directory, so a CLI without a cluster name can find the app it stands in. */
  cwd?: string;
}

/** What the control socket's commands do: each maps to one supervisor call, nothing else. */
export async function runCommand(
  supervisor: Supervisor,
  req: ControlRequest,
  progress: (data: Record<string, unknown>) => boolean | void,
  stopDeadlineMs: number,
  context: CommandContext = {},
): Promise<unknown> {
  switch (req.cmd) {
    case 'ping':
      return { pid: process.pid, cwd: context.cwd ?? null };
    case 'status':
      return supervisor.status();
    case 'reload':
      progress({ deadlineMs: supervisor.reloadDeadlineMs() });
      await supervisor.reload({ hard: req.hard === true });
      return { generation: supervisor.status().generation };
    case 'scale': {
      const to = 'workers' in req ? req.workers : supervisor.desired + req.delta;
      progress({ deadlineMs: supervisor.scaleDeadlineMs(to) });
      return { workers: await supervisor.scale(to, { force: req.force === true }) };
    }
    case 'stop': {
      progress({ pid: process.pid, deadlineMs: stopDeadlineMs });
      // The verdict, not just "stopping": 1 when a worker had to be killed.
      return { pid: process.pid, exitCode: await supervisor.stop() };
    }
    case 'logs':
      return streamLogs(supervisor, req, progress, context);
  }
}

/**
 * The recent lines, then (with follow) every new one until the client
 * leaves or the cluster stops. A reader that falls more than the socket's
 * allowance behind loses lines, and is told how many.
 */
async function streamLogs(supervisor: Supervisor, req: Extract<ControlRequest, { cmd: 'logs' }>, progress: (data: Record<string, unknown>) => boolean | void, context: CommandContext): Promise<unknown> {
  const ring = context.logs;
  if (!ring) return { lines: 0, follow: false };
  const recent = ring.recent(req.lines);
  for (const r of recent) progress({ log: toWire(r) });
  if (!req.follow || context.gone?.aborted) return { lines: recent.length };
  // The client merges several apps' recent lines by time before it prints new ones as they come.
  progress({ caughtUp: true });
  let skipped = 0;
  const stop = ring.follow((r) => {
    const sent = progress(skipped > 0 ? { skipped, log: toWire(r) } : { log: toWire(r) });
    skipped = sent === false ? skipped + 1 : 0;
  });
  try {
    await new Promise<void>((resolve) => {
      context.gone?.addEventListener('abort', () => resolve(), { once: true });
      void supervisor.done.then(() => resolve());
    });
  } finally {
    stop();
  }
  return { lines: recent.length, stopped: supervisor.stopping };
}
