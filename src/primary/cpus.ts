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

/** Where cgroup controllers are mounted; CORRAL_CGROUP_ROOT overrides it (tests, unusual mounts). */
export function cgroupRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.CORRAL_CGROUP_ROOT || '/sys/fs/cgroup';
}

/** A CPU limit found on one cgroup directory. */
export interface CpuLimit {
  /** CPUs the quota allows, possibly fractional. */
  cpus: number;
  /** How it reads in the file, e.g. "cpu.max 150000/100000". */
  setting: string;
  /** The cgroup directory that holds it. */
  dir: string;
}

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

/**
 * The process's cgroup directory and each ancestor up to the mount point.
 * A path that leaves the mount (a cgroup namespace shows "/.." for groups
 * outside it) yields the mount point alone: that is all this process sees.
 */
export function cgroupDirs(mount: string, rel: string): string[] {
  if (rel.split('/').includes('..')) return [mount];
  const inside = path.posix.normalize(`/${rel}`);
  const out: string[] = [];
  for (let d = inside; ; d = path.posix.dirname(d)) {
    out.push(d === '/' ? mount : path.join(mount, d));
    if (d === '/') return out;
  }
}

function v2Limit(read: ReadText, dir: string): CpuLimit | null {
  const text = read(path.join(dir, 'cpu.max'));
  const cpus = text === undefined ? null : parseCpuMax(text);
  return cpus === null ? null : { cpus, setting: `cpu.max ${text!.trim().split(/\s+/).join('/')}`, dir };
}

function v1Limit(read: ReadText, dir: string): CpuLimit | null {
  const q = read(path.join(dir, 'cpu.cfs_quota_us'));
  const p = read(path.join(dir, 'cpu.cfs_period_us'));
  const cpus = q === undefined || p === undefined ? null : parseCfs(q, p);
  return cpus === null ? null : { cpus, setting: `cpu.cfs_quota_us/cfs_period_us ${q!.trim()}/${p!.trim()}`, dir };
}

const V1_CPU_MOUNTS = ['cpu', 'cpu,cpuacct', 'cpuacct,cpu'];

/**
 * The tightest CPU quota on this process's cgroup or any ancestor, v2 or v1
 * (systemd's CPUQuota= sits on the service's own group, a container's on the
 * container's group, Kubernetes' on the pod's). Null when nothing limits it.
 * The mount root is always among the directories read: inside a container
 * /proc/self/cgroup may name a path the container cannot see.
 */
export function cgroupCpuLimit(read: ReadText = readText, root = cgroupRoot()): CpuLimit | null {
  let tightest: CpuLimit | null = null;
  const consider = (l: CpuLimit | null): void => {
    if (l && (tightest === null || l.cpus < tightest.cpus)) tightest = l;
  };
  for (const line of (read('/proc/self/cgroup') ?? '').split('\n')) {
    const [, controllers, rel] = line.split(':');
    if (rel === undefined || controllers === undefined) continue;
    if (controllers === '') {
      for (const dir of cgroupDirs(root, rel)) consider(v2Limit(read, dir));
    } else if (controllers.split(',').includes('cpu')) {
      for (const mount of V1_CPU_MOUNTS.map((m) => path.join(root, m))) {
        for (const dir of cgroupDirs(mount, rel)) consider(v1Limit(read, dir));
      }
    }
  }
  return tightest;
}

/** The quota in CPUs (possibly fractional), or null. */
export function cgroupCpuQuota(read: ReadText = readText, root = cgroupRoot()): number | null {
  return cgroupCpuLimit(read, root)?.cpus ?? null;
}

/** "0-3,8,10-11" -> 7 */
export function parseCpuList(list: string): number | null {
  let n = 0;
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return n > 0 ? n : null;
}

/**
 * CPUs in this process's affinity mask (which a cpuset cgroup also narrows).
 * Read from /proc rather than os.availableParallelism(): from libuv 1.49
 * (Node 22) that also applies the cgroup quota, truncated (1.5 CPUs -> 1).
 */
export function affinityCpus(read: ReadText = readText): number {
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(read('/proc/self/status') ?? '');
  return (line && parseCpuList(line[1] as string)) || os.availableParallelism();
}

/** How many workers `auto` means here, and why, in words `corral status` shows. */
export interface WorkerSizing {
  workers: number;
  source: string;
}

/**
 * `auto`: the affinity count capped by the cgroup quota. A fractional quota
 * rounds up (1.5 CPUs are best used by two workers), never below one.
 */
export function autoWorkers(read: ReadText = readText, root = cgroupRoot(), affinity = affinityCpus(read)): WorkerSizing {
  const limit = cgroupCpuLimit(read, root);
  const cpus = `${affinity} CPU${affinity === 1 ? '' : 's'} in the affinity mask`;
  if (limit === null) return { workers: Math.max(1, affinity), source: `${cpus}, no cgroup CPU limit` };
  const byQuota = Math.max(1, Math.ceil(limit.cpus - 1e-9));
  const where = `cgroup ${limit.setting} (${limit.dir})`;
  if (byQuota > affinity) return { workers: Math.max(1, affinity), source: `${cpus}; ${where} allows ${byQuota}` };
  return { workers: byQuota, source: where };
}

/** CPUs this process may really use; what `--workers auto` starts. */
export function usableCpus(read: ReadText = readText, root?: string, parallelism?: number): number {
  return autoWorkers(read, root ?? cgroupRoot(), parallelism ?? affinityCpus(read)).workers;
}
