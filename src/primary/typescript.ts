import { createRequire } from 'node:module';
import path from 'node:path';
import { UsageError } from '../common/errors.js';

const TS_EXT = /\.[cm]?ts$/;

function nodeCanStrip(version: string): 'default' | 'flag' | 'no' {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18)) return 'default';
  if (major === 23 || (major === 22 && minor >= 6)) return 'flag';
  return 'no';
}

function hasTsx(cwd: string): boolean {
  try {
    createRequire(path.join(cwd, 'noop.js')).resolve('tsx');
    return true;
  } catch {
    return false;
  }
}

/**
 * What a worker needs to run a TypeScript script: nothing where Node strips
 * types by default, the flag where it can but does not by default, tsx's
 * loader where it is installed; otherwise a UsageError saying what to do.
 */
export function typeScriptExecArgv(script: string, cwd: string, version = process.versions.node, tsxAvailable = hasTsx(cwd)): string[] {
  if (!TS_EXT.test(script)) return [];
  const strip = nodeCanStrip(version);
  if (strip === 'default') return [];
  if (strip === 'flag') return ['--experimental-strip-types'];
  if (tsxAvailable) return ['--import', 'tsx'];
  throw new UsageError(
    `${path.basename(script)} is TypeScript and Node ${version} cannot run it by itself; install tsx in your project (npm i -D tsx) or use Node >= 22.18`,
  );
}
