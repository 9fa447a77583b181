import { realpathSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
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
  return new CorralError('E_NO_CLUSTER', `several clusters are running (${live.join(', ')}) and none of them runs from this directory; name one, e.g. 'corral ${example} ${live[0]}'`);
}

type Located = Target & { pid: number; cwd: string | null };

/** Every live cluster with its primary's pid and its app's directory. */
async function locate(home: string, live: string[]): Promise<Located[]> {
  const answers = await Promise.all(
    live.map((n) => sendCommand(socketPath(home, n), { cmd: 'ping' }, 5000).then((r) => r as { pid: number; cwd?: string | null }).catch(() => null)),
  );
  return live.flatMap((n, i) => {
    const a = answers[i];
    return a ? [{ ...target(home, n), pid: a.pid, cwd: a.cwd ?? null }] : [];
  });
}

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

const within = (dir: string, root: string): boolean => dir === root || dir.startsWith(root.endsWith(path.sep) ? root : root + path.sep);

/**
 * With several clusters and no name, the one whose app the user stands in
 * (its directory contains the current one; the deepest wins), else those
 * whose app lives under the current directory.
 */
export function pickByDirectory<T extends { cwd: string | null }>(clusters: T[], here: string): T[] {
  const at = real(here);
  const withDir = clusters.filter((c) => c.cwd !== null).map((c) => ({ c, dir: real(c.cwd as string) }));
  const containing = withDir.filter(({ dir }) => within(at, dir));
  if (containing.length > 0) {
    const deepest = Math.max(...containing.map(({ dir }) => dir.length));
    return containing.filter(({ dir }) => dir.length === deepest).map(({ c }) => c);
  }
  return withDir.filter(({ dir }) => within(dir, at)).map(({ c }) => c);
}

/** The socket of the named cluster, or of the only one running (or the one of this directory) when no name is given. */
export async function resolveCluster(home: string, name: string | undefined, example = 'status', here = process.cwd()): Promise<Target> {
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
  if (live.length === 1) return target(home, live[0] as string);
  const mine = pickByDirectory(await locate(home, live), here);
  if (mine.length === 1) return mine[0] as Target;
  throw nameNeeded(live, example);
}

/**
 * Clusters a command without a name applies to: the only one running, or
 * every app of one primary (a config file's apps). Several primaries: a name is needed.
 */
export async function resolveGroup(home: string, name: string | undefined, example: string, here = process.cwd()): Promise<Target[]> {
  if (name !== undefined) return [await resolveCluster(home, name)];
  const live = await liveClusters(home);
  if (live.length === 0) throw noCluster(home);
  if (live.length === 1) return [target(home, live[0] as string)];
  const located = await locate(home, live);
  if (new Set(located.map((c) => c.pid)).size === 1) return located;
  // Several primaries: the one whose app lives here (all its apps, if it runs several).
  const mine = pickByDirectory(located, here);
  if (mine.length > 0 && new Set(mine.map((c) => c.pid)).size === 1) return mine;
  throw nameNeeded(live, example);
}
