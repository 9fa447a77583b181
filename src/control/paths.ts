import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { CorralError } from '../common/errors.js';

/** Linux's sun_path holds 107 bytes plus the terminator. */
const MAX_SOCKET_PATH = 107;

export function socketPath(home: string, name: string): string {
  const p = path.join(home, `${name}.sock`);
  if (Buffer.byteLength(p) > MAX_SOCKET_PATH) {
    throw new CorralError('E_CONFIG', `control socket path is too long (${p}); set CORRAL_HOME to a shorter directory`);
  }
  return p;
}

/**
 * The control directory must be private: anyone who can reach the socket can
 * stop or reload the cluster. Create it 0700, and refuse an existing one that others can enter
 * rather than change the mode of a directory we may not own alone.
 */
export function ensurePrivateHome(home: string): void {
  try {
    makeDirs(path.resolve(home));
  } catch (err) {
    throw new CorralError('E_CONFIG', `cannot create the control directory ${home} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set CORRAL_HOME or --home to a writable directory`);
  }
  const st = statSync(home);
  if (!st.isDirectory()) throw new CorralError('E_CONFIG', `CORRAL_HOME ${home} is not a directory; point CORRAL_HOME at a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new CorralError('E_CONFIG', `CORRAL_HOME ${home} belongs to another user; point CORRAL_HOME at a directory of your own`);
  }
  if ((st.mode & 0o077) !== 0) {
    throw new CorralError('E_CONFIG', `CORRAL_HOME ${home} is open to other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 700 ${home}`);
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdirSync spins forever on
 * some paths (under /proc, mkdir answers ENOENT for a parent that exists).
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) mkdirSync(d, { mode: 0o700 });
}

/** Names of clusters with a socket in `home` (live or stale). */
export function socketNames(home: string): string[] {
  try {
    return readdirSync(home)
      .filter((f) => f.endsWith('.sock'))
      .map((f) => f.slice(0, -'.sock'.length))
      .sort();
  } catch {
    return [];
  }
}
