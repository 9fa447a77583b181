// Warm spares: booted workers whose listen() waits until a slot needs them.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, alive, freePort, get, runCli, sleep, startCorral, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'spare-app.mjs');

const spareOf = (s) => s.workers.find((w) => w.state === 'spare');
const serving = (s) => s.workers.filter((w) => w.state === 'ready').map((w) => w.pid);

async function withSpare(t, args, env = {}) {
  const port = await freePort();
  const c = startCorral(t, [APP, '--port', String(port), ...args], { env });
  await c.ready(Number(args[args.indexOf('-w') + 1]));
  const spare = await waitFor(async () => spareOf(await c.status()), 10000, 'a booted spare');
  return { c, port, spare };
}

test('a spare never accepts a connection before it is promoted', async (t) => {
  const { c, port, spare } = await withSpare(t, ['-w', '1', '--spares', '1']);
  const [worker] = serving(await c.status());
  const pids = new Set();
  for (let i = 0; i < 50; i++) {
    const rs = await Promise.all(Array.from({ length: 4 }, () => get(port, '/')));
    for (const r of rs) pids.add(Number(r.body));
  }
  assert.deepEqual([...pids], [worker], `a spare (pid ${spare.pid}) answered`);
  assert.equal(spare.slot, null);
  assert.doesNotMatch(c.output, new RegExp(`\\[\\S+ \\S+ ${spare.pid}\\] listening on`), 'its listen callback ran before promotion');
});

test('kill -9 of the serving worker: the spare is promoted and serves, its listen callback fired once with the address asked for', async (t) => {
  const { c, port, spare } = await withSpare(t, ['-w', '1', '--spares', '1']);
  const [worker] = serving(await c.status());
  process.kill(worker, 'SIGKILL');
  const killedAt = Date.now();
  const info = await waitFor(async () => {
    const r = JSON.parse((await get(port, '/info')).body);
    return r.pid === spare.pid ? r : null;
  }, 3000, 'the promoted spare to answer');
  const tookMs = Date.now() - killedAt;
  assert.ok(tookMs < 3000, `first answer after ${tookMs} ms`);
  assert.equal(info.bootedAsSpare, true);
  assert.equal(info.isSpare, false);
  assert.equal(info.id, 0, 'it learned its slot');
  assert.equal(info.callbacks, 1);
  assert.equal(info.listeningEvents, 1);
  assert.deepEqual([info.boundTo.address, info.boundTo.port], ['127.0.0.1', port]);
  assert.match(c.output, new RegExp(`spare \\(pid ${spare.pid}\\) promoted to worker 0`));
  const next = await waitFor(async () => spareOf(await c.status()), 10000, 'a new spare behind it');
  assert.notEqual(next.pid, spare.pid);
});

test('a reload never promotes a spare of the old generation', async (t) => {
  const { c, spare } = await withSpare(t, ['-w', '2', '--spares', '1', '--name', 'sparerl', '--reload-verify', '500']);
  const r = await runCli(['reload', 'sparerl'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  const s = await c.status();
  assert.ok(!serving(s).includes(spare.pid), 'the old spare serves');
  assert.ok(s.workers.filter((w) => w.state === 'ready').every((w) => w.generation === 2));
  await waitFor(() => !alive(spare.pid), 10000, 'the old spare to exit');
  assert.doesNotMatch(c.output, new RegExp(`spare \\(pid ${spare.pid}\\) promoted`));
  assert.match(c.output, /spare \(pid \d+\) promoted to worker 0\n?/, 'the canary was a spare of the new generation');
  const fresh = await waitFor(async () => spareOf(await c.status()), 10000, 'a spare of generation 2');
  assert.equal(fresh.generation, 2);
});

test('a spare over --max-memory is replaced; a spare whose event loop blocks is killed by the watchdog', async (t) => {
  const leaky = await withSpare(t, ['-w', '1', '--spares', '1', '--max-memory', '150M'], { SPARE_LEAK_MB: '200' });
  await leaky.c.waitForLine(new RegExp(`spare \\(pid ${leaky.spare.pid}\\) uses \\d+ MiB RSS, over the 150 MiB limit; replacing it`), 10000);
  await waitFor(() => !alive(leaky.spare.pid), 10000, 'the leaking spare to exit');

  const port = await freePort();
  const c = startCorral(t, [APP, '-w', '1', '--spares', '1', '--watchdog', '1500', '--port', String(port)], { env: { SPARE_HANG: '1' } });
  await c.ready(1);
  const line = await c.waitForLine(/spare \(pid (\d+)\) unresponsive for \d+ ms \(no heartbeat\); killing it/, 15000);
  const hung = Number(/pid (\d+)/.exec(line)[1]);
  await waitFor(() => !alive(hung), 5000, 'the hung spare to die');
  assert.equal((await get(port, '/')).status, 200, 'the serving worker is untouched');
});

test('status and stop: spares are listed without a slot and stopped with the cluster', async (t) => {
  const { c, spare } = await withSpare(t, ['-w', '1', '--spares', '1', '--name', 'sparest']);
  const table = await runCli(['status', 'sparest'], { home: c.home });
  assert.match(table.stdout, /spares 1\/1/);
  assert.match(table.stdout, new RegExp(`-\\s+${spare.pid}\\s+spare`));
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(10000)).code, 0, c.output);
  assert.equal(alive(spare.pid), false);
  await sleep(0);
});

test('the workers share a compile cache under CORRAL_HOME on Node >= 22.1 (off on older Node, and with --no-compile-cache)', async (t) => {
  const { readdirSync } = await import('node:fs');
  const { default: module } = await import('node:module');
  const supported = typeof module.enableCompileCache === 'function';
  const c = startCorral(t, [APP, '-w', '2', '--name', 'cc']);
  await c.ready(2);
  const s = await c.status();
  if (!supported) {
    assert.equal(s.compileCache, null);
    return;
  }
  assert.equal(s.compileCache, path.join(c.home, 'cache', 'cc'));
  c.signal('SIGTERM');
  await c.waitForExit(10000);
  const files = readdirSync(s.compileCache, { recursive: true });
  assert.ok(files.length > 0, 'the workers wrote nothing to the compile cache');
  const off = startCorral(t, [APP, '-w', '1', '--name', 'nocc', '--no-compile-cache']);
  await off.ready(1);
  assert.equal((await off.status()).compileCache, null);
});
