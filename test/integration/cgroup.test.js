// `--workers auto` against a cgroup tree the test lays out (CORRAL_CGROUP_ROOT),
// and `corral status` saying where the count came from.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { affinityCpus } from '../../dist/primary/cpus.js';
import { FIXTURES, runCli, startCorral, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

function cgroupRoot(t, cpuMax) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'corral-cgroot-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(path.join(root, 'cpu.max'), `${cpuMax}\n`);
  return root;
}

async function autoCount(t, cpuMax) {
  const root = cgroupRoot(t, cpuMax);
  const c = startCorral(t, [APP, '--name', 'cg'], { env: { CORRAL_CGROUP_ROOT: root } });
  const status = await waitFor(async () => {
    const s = await c.status();
    // 'running' means one worker served; the count is settled once every slot is ready.
    return s.state === 'running' && s.totals.ready === s.desired && s;
  }, 15000, 'every worker to be ready');
  return { c, root, status };
}

test('cpu.max 100000 100000 under CORRAL_CGROUP_ROOT: one worker, and status says why', async (t) => {
  const { c, root, status } = await autoCount(t, '100000 100000');
  assert.equal(status.desired, 1);
  assert.equal(status.totals.ready, 1);
  assert.deepEqual(status.sizing, { workers: 1, source: `cgroup cpu.max 100000/100000 (${root})` });
  const table = await runCli(['status'], { home: c.home });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^1 worker: cgroup cpu\.max 100000\/100000 /m);
});

test('cpu.max 150000 100000: 1.5 CPUs round up to two workers', async (t) => {
  const { c, status } = await autoCount(t, '150000 100000');
  const want = Math.min(2, affinityCpus());
  assert.equal(status.desired, want);
  assert.equal(status.totals.ready, want);
  if (want === 2) {
    const table = await runCli(['status'], { home: c.home });
    assert.match(table.stdout, /^2 workers: cgroup cpu\.max 150000\/100000 /m);
  }
});

test('cpu.max max: as many workers as the affinity mask has CPUs', async (t) => {
  const { status } = await autoCount(t, 'max 100000');
  assert.equal(status.desired, affinityCpus());
  assert.match(status.sizing.source, /CPUs? in the affinity mask, no cgroup CPU limit$/);
});
