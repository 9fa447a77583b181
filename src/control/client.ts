import net from 'node:net';
import { CorralError, type CorralErrorCode } from '../common/errors.js';
import { LineSplitter } from '../logs/lines.js';
import { socketNames, socketPath } from './paths.js';
import { PROTOCOL_VERSION, type ControlCommand, type ControlProgress, type ControlResponse } from './protocol.js';
import { probeSocket } from './server.js';

/** An error the primary answered with, carrying its code (E_RELOAD, E_USAGE, ...). */
export class RemoteError extends CorralError {
  constructor(code: string, message: string) {
    super(code as CorralErrorCode, message);
  }
}

export interface SendOptions {
  /** Give up after this long (0: wait until the primary answers or its socket closes). */
  timeoutMs?: number;
  /**
   * Progress lines before the answer. Returning a number replaces the
   * timeout, counted from now (the primary says how long it will take).
   */
  onProgress?: (progress: Record<string, unknown>) => number | void;
}

/**
 * Send one command and wait for its response. Commands such as `reload`
 * answer only when the work is done; they announce how long that may take
 * in a progress line, which bounds the wait.
 */
export function sendCommand(file: string, command: ControlCommand, opts: number | SendOptions = {}): Promise<unknown> {
  const { timeoutMs = 0, onProgress } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    const id = 1;
    let settled = false;
    const finish = (err: Error | null, value?: unknown): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number): void => {
      if (timer) clearTimeout(timer);
      timer = ms > 0 ? setTimeout(() => finish(new CorralError('E_TIMEOUT', `no answer from ${file} within ${ms} ms`)), ms) : undefined;
    };
    arm(timeoutMs);
    sock.setEncoding('utf8');
    const splitter = new LineSplitter((line) => {
      let response: ControlResponse | ControlProgress;
      try {
        response = JSON.parse(line) as ControlResponse | ControlProgress;
      } catch {
        return finish(new CorralError('E_PROTOCOL', 'the primary sent an unreadable answer'));
      }
      if (response.id !== id) return;
      if ('progress' in response) {
        const ms = onProgress?.(response.progress);
        if (typeof ms === 'number') arm(ms);
        return;
      }
      if (response.ok) finish(null, response.result);
      else finish(new RemoteError(response.error.code, response.error.message));
    });
    sock.on('data', (chunk: string) => splitter.push(chunk));
    sock.once('error', (err) => finish(new CorralError('E_NO_CLUSTER', `cannot reach the cluster at ${file}: ${err.message}`)));
    sock.once('close', () => finish(new CorralError('E_PROTOCOL', 'the cluster closed the connection before answering (did it stop?)')));
    sock.once('connect', () => sock.write(`${JSON.stringify({ v: PROTOCOL_VERSION, id, ...command })}\n`));
  });
}

/** Names of clusters whose socket answers; stale sockets are skipped. */
export async function liveClusters(home: string): Promise<string[]> {
  const names = socketNames(home);
  const alive = await Promise.all(names.map((n) => probeSocket(socketPath(home, n))));
  return names.filter((_, i) => alive[i]);
}

type Target = { name: string; file: string };

const target = (home: string, name: string): Target => ({ name, file: socketPath(home, name) });

function noCluster(home: string): CorralError {
  return new CorralError('E_NO_CLUSTER', `no running cluster in ${home}; start one with 'corral <script>' (or set CORRAL_HOME)`);
}

function nameNeeded(live: string[], example: string): CorralError {
  return new CorralError('E_NO_CLUSTER', `several clusters are running (${live.join(', ')}); name one, e.g. 'corral ${example} ${live[0]}'`);
}

/** The socket of the named cluster, or of the only one running when no name is given. */
export async function resolveCluster(home: string, name: string | undefined, example = 'status'): Promise<Target> {
  if (name !== undefined) {
    const file = socketPath(home, name);
    if (!(await probeSocket(file))) {
      const live = await liveClusters(home);
      const hint = live.length ? `running: ${live.join(', ')}` : 'none is running';
      throw new CorralError('E_NO_CLUSTER', `no running cluster named "${name}" in ${home} (${hint})`);
    }
    return { name, file };
  }
  const live = await liveClusters(home);
  if (live.length === 0) throw noCluster(home);
  if (live.length > 1) throw nameNeeded(live, example);
  return target(home, live[0] as string);
}

/**
 * Clusters a command without a name applies to: the only one running, or
 * every app of one primary (a config file's apps). Several primaries: a name is needed.
 */
export async function resolveGroup(home: string, name: string | undefined, example: string): Promise<Target[]> {
  if (name !== undefined) return [await resolveCluster(home, name)];
  const live = await liveClusters(home);
  if (live.length === 0) throw noCluster(home);
  const targets = live.map((n) => target(home, n));
  if (targets.length === 1) return targets;
  const pids = await Promise.all(targets.map((t) => sendCommand(t.file, { cmd: 'ping' }, 5000).then((r) => (r as { pid: number }).pid)));
  if (new Set(pids).size === 1) return targets;
  throw nameNeeded(live, example);
}
