import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type ReadText = (file: string) => string | undefined;

export const readText: ReadText = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

/** cgroup v2 `cpu.max`: "max 100000" or "150000 100000". */
export function parseCpuMax(text: string): number | null {
  const [quota, period] = text.trim().split(/\s+/);
  if (!quota || quota === 'max') return null;
  const q = Number(quota);
  const p = Number(period ?? 100000);
  return q > 0 && p > 0 ? q / p : null;
}

/** cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`; -1 means no quota. */
export function parseCfs(quotaText: string, periodText: string): number | null {
  const q = Number(quotaText.trim());
  const p = Number(periodText.trim());
  return q > 0 && p > 0 ? q / p : null;
}

function ancestors(dir: string, root: string): string[] {
  const out: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    out.push(d);
    if (d === root || path.dirname(d) === d || !d.startsWith(root)) break;
  }
  return out;
}

function minQuota(values: Array<number | null>): number | null {
  const set = values.filter((v): v is number => v !== null);
  return set.length ? Math.min(...set) : null;
}

/**
 * The CPU quota (in CPUs, possibly fractional) of this process's cgroup, v2
 * or v1, taking the tightest limit on the path up to the root; null if none.
 * Inside a container /proc/self/cgroup often names a path the container
 * cannot see, so the mount root itself is always checked too.
 */
export function cgroupCpuQuota(read: ReadText = readText, root = '/sys/fs/cgroup'): number | null {
  const cgroup = read('/proc/self/cgroup') ?? '';
  const found: Array<number | null> = [];
  for (const line of cgroup.split('\n')) {
    const [, controllers, rel] = line.split(':');
    if (rel === undefined || controllers === undefined) continue;
    if (controllers === '') {
      for (const dir of ancestors(path.join(root, rel), root)) {
        const text = read(path.join(dir, 'cpu.max'));
        if (text !== undefined) found.push(parseCpuMax(text));
      }
    } else if (controllers.split(',').includes('cpu')) {
      for (const mount of [path.join(root, 'cpu'), path.join(root, 'cpu,cpuacct'), path.join(root, 'cpuacct,cpu')]) {
        for (const dir of ancestors(path.join(mount, rel), mount)) {
          const q = read(path.join(dir, 'cpu.cfs_quota_us'));
          const p = read(path.join(dir, 'cpu.cfs_period_us'));
          if (q !== undefined && p !== undefined) found.push(parseCfs(q, p));
        }
      }
    }
  }
  return minQuota(found);
}

/**
 * CPUs this process may really use: the affinity-aware count capped by the
 * cgroup quota. A fractional quota rounds up (1.5 CPUs are best used by two
 * workers), and never below one. Read by hand because os.availableParallelism
 * ignores quotas on Node 20 and truncates them on later versions.
 */
export function usableCpus(read: ReadText = readText, root?: string, parallelism = os.availableParallelism()): number {
  const quota = cgroupCpuQuota(read, root);
  const byQuota = quota === null ? parallelism : Math.ceil(quota - 1e-9);
  return Math.max(1, Math.min(parallelism, byQuota));
}
