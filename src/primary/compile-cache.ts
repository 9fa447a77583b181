import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';

/** A cache grown past this (old releases' entries pile up) is cleared when a cluster starts. */
const MAX_CACHE_BYTES = 256 * 1024 * 1024;

export type CompileCache = { dir: string } | { off: string };

/**
 * Where the workers keep V8's compiled code (Node >= 22.1, NODE_COMPILE_CACHE):
 * the first worker pays for compiling the app's module graph, every later
 * worker, respawn and reload reads it. Off when the user turned it off, set
 * their own, or this Node has none; `off` says why.
 */
export function compileCacheFor(
  opts: { enabled: boolean; home: string; name: string; env: Record<string, string> },
  processEnv: NodeJS.ProcessEnv = process.env,
  supported = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function',
): CompileCache {
  if (!opts.enabled) return { off: 'turned off (--no-compile-cache)' };
  for (const env of [opts.env, processEnv]) {
    if (env.NODE_DISABLE_COMPILE_CACHE) return { off: 'NODE_DISABLE_COMPILE_CACHE is set' };
    if (env.NODE_COMPILE_CACHE) return { off: `NODE_COMPILE_CACHE is set (${env.NODE_COMPILE_CACHE}): the workers use yours` };
  }
  if (!supported) return { off: `Node ${process.versions.node} has no compile cache (22.1 or later has)` };
  return { dir: path.join(opts.home, 'cache', opts.name) };
}

/** Create the cache directory (owner-only, under the private home); clear it when it has grown too big. */
export function prepareCompileCache(dir: string): void {
  if (directorySize(dir) > MAX_CACHE_BYTES) rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { mode: 0o700, recursive: true });
  mkdirSync(dir, { mode: 0o700, recursive: true });
}

function directorySize(dir: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += directorySize(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}
