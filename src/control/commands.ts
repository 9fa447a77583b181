import type { Supervisor } from '../primary/supervisor.js';
import type { ControlRequest } from './protocol.js';

/** What the control socket's commands do: each maps to one supervisor call, nothing else. */
export async function runCommand(supervisor: Supervisor, req: ControlRequest, stopDeadlineMs: number): Promise<unknown> {
  switch (req.cmd) {
    case 'ping':
      return { pid: process.pid };
    case 'status':
      return supervisor.status();
    case 'reload':
      await supervisor.reload();
      return { generation: supervisor.status().generation };
    case 'scale': {
      const to = 'workers' in req ? req.workers : supervisor.desired + req.delta;
      return { workers: await supervisor.scale(to) };
    }
    case 'stop':
      // Answer now: the socket closes with the primary, so the client waits for the pid instead.
      void supervisor.stop();
      return { pid: process.pid, stopping: true, deadlineMs: stopDeadlineMs };
  }
}
