import type { Supervisor } from '../primary/supervisor.js';
import type { ControlRequest } from './protocol.js';

/** What the control socket's commands do: each maps to one supervisor call, nothing else. */
export async function runCommand(
  supervisor: Supervisor,
  req: ControlRequest,
  progress: (data: Record<string, unknown>) => void,
  stopDeadlineMs: number,
): Promise<unknown> {
  switch (req.cmd) {
    case 'ping':
      return { pid: process.pid };
    case 'status':
      return supervisor.status();
    case 'reload':
      progress({ deadlineMs: supervisor.reloadDeadlineMs() });
      await supervisor.reload();
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
  }
}
