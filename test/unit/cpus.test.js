// The CPU limit -> worker count walk, on fake cgroup trees laid out on disk
// the way the kernel mounts them (v2 unified, v1 per controller).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { affinityCpus, autoWorkers, cgroupCpuLimit, cgroupDirs, cgroupRoot, parseCpuList, readText, usableCpus } from '../../dist/primary/cpus.js';
import { formatSizing } from '../../dist/cli/format.js';

/** A cgroup mount in a temp dir; `proc` stands in for /proc/self/{cgroup,status}. */
function fakeTree(t, files, proc) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'corral-cgroup-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), `${text}\n`);
  }
  const read = (file) => (file === '/proc/self/cgroup' ? proc.cgroup : file === '/proc/self/status' ? proc.status : readText(file));
  return { root, read };
}

const status = (list) => `Name:\tnode\nCpus_allowed:\tff\nCpus_allowed_list:\t${list}\nMems_allowed_list:\t0\n`;

test('cgroup v2 at the root (a container with its own cgroup namespace): 100000/100000 -> 1, 150000/100000 -> 2, max -> the affinity count', (t) => {
  for (const [cpuMax, want] of [['100000 100000', 1], ['150000 100000', 2], ['max 100000', 4], ['50000 100000', 1]]) {
    const { root, read } = fakeTree(t, { 'cpu.max': cpuMax }, { cgroup: '0::/\n', status: status('0-3') });
    assert.equal(autoWorkers(read, root).workers, want, `cpu.max ${cpuMax}`);
  }
  const { root, read } = fakeTree(t, { 'cpu.max': '150000 100000' }, { cgroup: '0::/\n', status: status('0-3') });
  assert.deepEqual(autoWorkers(read, root), { workers: 2, source: `cgroup cpu.max 150000/100000 (${root})` });
});

test('cgroup v2 nested service (systemd CPUQuota=150%): the limit on the process\'s own group is found, the tightest ancestor wins', (t) => {
  const { root, read } = fakeTree(
    t,
    {
      'system.slice/cpu.max': 'max 100000',
      'system.slice/web.service/cpu.max': '150000 100000',
      'system.slice/web.service/cpu.weight': '100',
    },
    { cgroup: '0::/system.slice/web.service\n', status: status('0-7') },
  );
  const limit = cgroupCpuLimit(read, root);
  assert.equal(limit.cpus, 1.5);
  assert.equal(limit.dir, path.join(root, 'system.slice/web.service'));
  assert.equal(usableCpus(read, root), 2);
  assert.match(formatSizing({ desired: 2, sizing: autoWorkers(read, root) }), /^2 workers: cgroup cpu\.max 150000\/100000 \(.*web\.service\)$/);

  const parentTighter = fakeTree(
    t,
    { 'kubepods/cpu.max': '100000 100000', 'kubepods/pod1/cpu.max': '400000 100000', 'kubepods/pod1/c1/cpu.max': 'max 100000' },
    { cgroup: '0::/kubepods/pod1/c1\n', status: status('0-7') },
  );
  assert.equal(cgroupCpuLimit(parentTighter.read, parentTighter.root).dir, path.join(parentTighter.root, 'kubepods'));
  assert.equal(usableCpus(parentTighter.read, parentTighter.root), 1);
});

test('never above the affinity mask: a 4-CPU quota with taskset 0-1 gives 2, and says why', (t) => {
  const { root, read } = fakeTree(t, { 'app/cpu.max': '400000 100000' }, { cgroup: '0::/app\n', status: status('0-1') });
  const sizing = autoWorkers(read, root);
  assert.equal(sizing.workers, 2);
  assert.match(sizing.source, /^2 CPUs in the affinity mask; cgroup cpu\.max 400000\/100000 .* allows 4$/);
});

test('a path outside the visible hierarchy (cgroup namespace "/..") reads the mount root only', (t) => {
  assert.deepEqual(cgroupDirs('/m', '/../../other'), ['/m']);
  assert.deepEqual(cgroupDirs('/m', '/a/b'), ['/m/a/b', '/m/a', '/m']);
  const { root, read } = fakeTree(t, { 'cpu.max': '200000 100000' }, { cgroup: '0::/../sibling\n', status: status('0-7') });
  assert.equal(usableCpus(read, root), 2);
});

test('cgroup v1 (cpu,cpuacct mount, Docker on an older host): cfs quota/period, -1 is no limit', (t) => {
  const { root, read } = fakeTree(
    t,
    {
      'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '250000',
      'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000',
      'cpu,cpuacct/cpu.cfs_quota_us': '-1',
      'cpu,cpuacct/cpu.cfs_period_us': '100000',
      'memory/docker/abc/memory.limit_in_bytes': '1073741824',
    },
    { cgroup: '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n', status: status('0-15') },
  );
  assert.deepEqual(autoWorkers(read, root), {
    workers: 3,
    source: `cgroup cpu.cfs_quota_us/cfs_period_us 250000/100000 (${path.join(root, 'cpu,cpuacct/docker/abc')})`,
  });
  const none = fakeTree(t, { 'cpu/cpu.cfs_quota_us': '-1', 'cpu/cpu.cfs_period_us': '100000' }, { cgroup: '3:cpu:/\n', status: status('0-3') });
  assert.deepEqual(autoWorkers(none.read, none.root), { workers: 4, source: '4 CPUs in the affinity mask, no cgroup CPU limit' });
});

test('the affinity mask is read from /proc/self/status; CORRAL_CGROUP_ROOT moves the mount point', () => {
  assert.equal(parseCpuList('0-3,8,10-11'), 7);
  assert.equal(parseCpuList('0'), 1);
  assert.equal(parseCpuList('garbage'), null);
  assert.equal(affinityCpus(() => status('2-5')), 4);
  assert.equal(affinityCpus(() => undefined), os.availableParallelism(), 'no /proc: what Node says');
  assert.equal(cgroupRoot({ CORRAL_CGROUP_ROOT: '/tmp/x' }), '/tmp/x');
  assert.equal(cgroupRoot({}), '/sys/fs/cgroup');
});

test('corral status words: explicit counts and later scaling', () => {
  assert.equal(formatSizing({ desired: 4, sizing: { workers: 4, source: 'set explicitly' } }), '4 workers: set explicitly');
  assert.equal(formatSizing({ desired: 3, sizing: { workers: 1, source: 'cgroup cpu.max 100000/100000 (/sys/fs/cgroup)' } }), '1 worker: cgroup cpu.max 100000/100000 (/sys/fs/cgroup); scaled to 3 since');
  assert.equal(formatSizing({ desired: 3, sizing: null }), null);
});
