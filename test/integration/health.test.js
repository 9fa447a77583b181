import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, alive, get, load, sleep, startCorral, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

test('a worker stuck in while(true) is killed by the watchdog and replaced; the other answers throughout', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--watchdog', '2000']);
  const port = await c.ready(2);
  // /block answers, then spins forever; the log names which worker the watchdog killed.
  assert.equal((await get(port, '/block')).body, 'blocking');
  const blockedAt = Date.now();
  const traffic = load(port, { concurrency: 2, keepAlive: false, maxMs: 15000 });
  const line = await c.waitForLine(/worker \d \(pid (\d+)\) unresponsive for \d+ ms/, 2000 + 2000 + 1000);
  const victim = Number(/pid (\d+)/.exec(line)[1]);
  assert.ok(Date.now() - blockedAt <= 2000 + 2000 + 1000);
  await waitFor(() => !alive(victim), 2000, 'the hung worker to die');
  await waitFor(async () => (await c.status()).workers.filter((w) => w.state === 'ready').length === 2, 5000, 'replacement');
  const stats = await traffic.stop();
  assert.equal(stats.failed, 0, stats.errors.slice(0, 5).join(', '));
  const s = await c.status();
  assert.equal(s.workers.reduce((n, w) => n + (w.restartReasons.watchdog ?? 0), 0), 1);
});

test('a busy worker whose heartbeats still flow between requests is not killed', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--watchdog', '5000']);
  const port = await c.ready(1);
  const pid = (await c.status()).workers[0].pid;
  for (let i = 0; i < 4; i++) {
    const r = await get(port, '/busy?ms=2000');
    assert.equal(r.body, String(pid));
    await sleep(50);
  }
  assert.doesNotMatch(c.output, /unresponsive/);
  assert.equal((await c.status()).workers[0].pid, pid);
});

test('a worker that leaks past --max-memory is replaced with zero failed requests', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--max-memory', '150M']);
  const port = await c.ready(2);
  const before = (await c.status()).workers.map((w) => w.pid);
  const traffic = load(port, { concurrency: 4, keepAlive: true, maxMs: 30000 });
  // Leak into whichever worker answers until one crosses the limit.
  const leaky = Number((await get(port, '/leak?mb=200')).body);
  const line = await c.waitForLine(new RegExp(`worker \\d \\(pid ${leaky}\\) uses \\d+ MiB RSS, over the 150 MiB limit; replacing it`), 10000);
  assert.ok(line);
  await waitFor(() => !alive(leaky), 15000, 'the leaking worker to be drained');
  const stats = await traffic.stop();
  assert.equal(stats.failed, 0, stats.errors.slice(0, 5).join(', '));
  const s = await c.status();
  const pids = s.workers.map((w) => w.pid);
  assert.ok(!pids.includes(leaky));
  assert.ok(pids.some((p) => before.includes(p)), 'the other worker was left alone');
  assert.equal(s.workers.reduce((n, w) => n + (w.restartReasons.memory ?? 0), 0), 1);
});

test('--max-requests 100 --max-requests-jitter 20: 1000 requests recycle every worker within its limit, none fail', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--max-requests', '100', '--max-requests-jitter', '20']);
  const port = await c.ready(2);
  const first = (await c.status()).workers.map((w) => w.pid);
  const http = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  let failed = 0;
  let sent = 0;
  const loop = async () => {
    while (sent < 1000) {
      sent += 1;
      try {
        const r = await get(port, '/', { agent });
        if (r.status !== 200) failed += 1;
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all([loop(), loop(), loop(), loop()]);
  assert.equal(failed, 0);
  const recycles = c.lines.filter((l) => /served \d+ requests \(limit \d+\); recycling it/.test(l));
  const limits = new Set(recycles.map((l) => /limit (\d+)/.exec(l)[1]));
  for (const pid of first) assert.ok(recycles.some((l) => l.includes(`(pid ${pid})`)), `worker ${pid} was never recycled`);
  // That the limits differ between workers is the unit test's job (random jitter, checked with a seeded source).
  for (const l of limits) assert.ok(Number(l) >= 100 && Number(l) <= 120);
  const recycled = async () => (await c.status()).workers.reduce((n, w) => n + (w.restartReasons['max-requests'] ?? 0), 0);
  await waitFor(async () => (await recycled()) >= 2, 5000, 'status to count the recycles');
});
