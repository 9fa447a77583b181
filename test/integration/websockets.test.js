// WebSockets across reloads, scale-downs and stops, with unmodified `ws`
// servers: clients see a clean close (1000/1001, never 1006), reconnect to
// the new workers, and none is dropped twice in one reload.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, runCli, sleep, startCorral, waitFor, QUICK_CANARY } from '../helpers.js';
import { wsFleet } from '../realtime-helpers.js';

const readyPids = async (c) => (await c.status()).workers.filter((w) => w.state === 'ready').map((w) => w.pid);

/** Every session that ended during the test, by close code; sessions per client. */
function summary(fleet) {
  const ended = fleet.ended();
  const codes = {};
  for (const s of ended) codes[s.code] = (codes[s.code] ?? 0) + 1;
  const drops = fleet.clients.map((c) => c.sessions.filter((s) => s.code !== null).length);
  const unanswered = ended.reduce((n, s) => n + (s.sent - s.echoed), 0);
  return { codes, maxDrops: Math.max(...drops), drops, unanswered };
}

for (const strategy of ['os', 'rr']) {
  test(`ws (${strategy}), 40 clients, a reload: every close is 1001, all reconnect to new pids, none dropped twice, no echo lost`, async (t) => {
    const c = startCorral(t, [path.join(FIXTURES, 'ws-echo.cjs'), '-w', '2', '--strategy', strategy, '--name', `ws-${strategy}`, '--grace', '10000']);
    const port = await c.ready(2);
    const fleet = wsFleet(port, 40, { echoEveryMs: 200 });
    t.after(() => fleet.stop());
    const before = await readyPids(c);
    await waitFor(() => fleet.allOn(before), 10000, 'all 40 clients connected');
    const started = Date.now();
    const r = await runCli(['reload', `ws-${strategy}`], { home: c.home, timeout: 30000 });
    assert.equal(r.code, 0, r.stderr);
    const after = (await readyPids(c)).filter((p) => !before.includes(p));
    assert.equal(after.length, 2);
    await waitFor(() => fleet.allOn(after), 10000, 'every client on a new worker');
    await waitFor(async () => (await c.status()).workers.length === 2, 10000, 'the old workers to exit');
    const took = Date.now() - started;
    await sleep(300);
    const s = summary(fleet);
    assert.deepEqual(s.codes, { 1001: 40 }, `close codes ${JSON.stringify(s.codes)}`);
    assert.equal(s.maxDrops, 1, `a client was dropped twice: ${s.drops.join(',')}`);
    assert.equal(s.unanswered, 0, 'an echo sent before the close went unanswered');
    assert.ok(took < 10000, `reload and drain took ${took} ms`);
    assert.doesNotMatch(c.output, /grace period/);
    t.diagnostic(`reload with 40 WebSockets: ${took} ms until the old workers exited`);
  });
}

/** 10 clients on a 2-worker cluster of `app`, a reload, every client back on a new worker: the fleet, to read its closes. */
async function reloadedFleet(t, app, name, env = {}) {
  const c = startCorral(t, [path.join(FIXTURES, app), '-w', '2', '--name', name, ...QUICK_CANARY], { env });
  const port = await c.ready(2);
  const fleet = wsFleet(port, 10);
  t.after(() => fleet.stop());
  const before = await readyPids(c);
  await waitFor(() => fleet.allOn(before), 10000, 'all clients connected');
  const r = await runCli(['reload', name], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  const after = (await readyPids(c)).filter((p) => !before.includes(p));
  await waitFor(() => fleet.allOn(after), 10000, 'every client on a new worker');
  return fleet;
}

test('ws with permessage-deflate, the server streaming 16 KiB messages: closes land between frames (1001, no protocol error)', async (t) => {
  const fleet = await reloadedFleet(t, 'ws-echo.cjs', 'wsdeflate', { WS_DEFLATE: '1', WS_STREAM: '16384' });
  const s = summary(fleet);
  assert.deepEqual(s.codes, { 1001: 10 }, `close codes ${JSON.stringify(s.codes)}`);
  assert.equal(s.maxDrops, 1);
});

test('ws: the app\'s shutdown hook closes its sockets itself (1000, its reason); corral leaves those closes alone', async (t) => {
  const fleet = await reloadedFleet(t, 'ws-hook.mjs', 'wshook');
  const ended = fleet.ended();
  assert.equal(ended.length, 10);
  for (const e of ended) assert.deepEqual([e.code, e.reason], [1000, 'bye (reload)']);
});

test('ws: scale down from 2 to 1: the removed worker\'s clients get 1001 and move to the other; the rest stay connected', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'ws-echo.cjs'), '-w', '2', '--name', 'wsscale']);
  const port = await c.ready(2);
  const fleet = wsFleet(port, 20);
  t.after(() => fleet.stop());
  const pids = await readyPids(c);
  await waitFor(() => fleet.allOn(pids), 10000, 'all clients connected');
  const s0 = (await c.status()).workers.find((w) => w.slot === 0).pid;
  const onRemoved = fleet.clients.filter((cl) => cl.sessions[0].pid !== s0).length;
  const r = await runCli(['scale', 'wsscale', '1'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  await waitFor(() => fleet.allOn([s0]), 10000, 'every client on the remaining worker');
  const s = summary(fleet);
  assert.deepEqual(s.codes, onRemoved > 0 ? { 1001: onRemoved } : {});
  assert.equal(s.maxDrops, onRemoved > 0 ? 1 : 0);
});

test('ws: stop with 20 open WebSockets: every client gets 1001 and the primary exits 0 well within the grace', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'ws-echo.cjs'), '-w', '2', '--name', 'wsstop', '--grace', '10000']);
  const port = await c.ready(2);
  const fleet = wsFleet(port, 20, { reconnectMs: 60000 });
  t.after(() => fleet.stop());
  await waitFor(async () => fleet.allOn(await readyPids(c)), 10000, 'all clients connected');
  const sentAt = Date.now();
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(10000)).code, 0, c.output);
  const took = Date.now() - sentAt;
  await waitFor(() => fleet.ended().length === 20, 5000, 'every client to see its close');
  assert.deepEqual(summary(fleet).codes, { 1001: 20 });
  assert.ok(took < 3000, `stop took ${took} ms`);
});
