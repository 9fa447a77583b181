import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Supervisor } from '../../dist/primary/supervisor.js';
import { FakeClock, FakeSpawner, MemorySink, config, tick } from './fakes.js';

/** `views`: what a connection router was told, one line per update ("0+ 1": slot, + when preferred). */
function setup(over) {
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const sink = new MemorySink();
  const views = [];
  const received = [];
  const router = {
    update: (t) => views.push(t.map((x) => `${x.slot}${x.preferred ? '+' : ''}`).join(' ')),
    receive: (w, m) => received.push(`${m.type} from ${w.id}`),
    forget: (id) => received.push(`forget ${id}`),
    close() {},
  };
  const sup = new Supervisor(config(over), spawner, sink, clock, router);
  return { clock, spawner, sink, sup, views, received };
}

async function started(over) {
  const s = setup(over);
  const p = s.sup.start();
  for (const proc of [...s.spawner.procs]) proc.ready();
  await p;
  return s;
}

const drained = (proc) => proc.sent.some((m) => m.type === 'drain');

test('start forks one worker per slot and resolves when all are ready', async () => {
  const { spawner, sup } = setup({ workers: 3 });
  let resolved = false;
  const p = sup.start().then(() => (resolved = true));
  assert.deepEqual(spawner.procs.map((p) => p.slot), [0, 1, 2]);
  spawner.procs[0].ready();
  spawner.procs[1].ready();
  await tick();
  assert.equal(resolved, false);
  spawner.procs[2].ready();
  await p;
  assert.equal(sup.status().totals.ready, 3);
});

test('a crashed worker is replaced in its slot at once; a second crash backs off', async () => {
  const { spawner, clock, sup, sink } = await started();
  spawner.procs[1].die(1);
  assert.equal(spawner.procs.length, 3);
  assert.equal(spawner.last.slot, 1);
  spawner.last.ready();
  clock.advance(1000);
  spawner.last.die(1);
  assert.equal(spawner.procs.length, 3, 'second crash within the window is delayed');
  assert.deepEqual(sup.status().waiting, [{ slot: 1, restartInMs: 100, restarts: 2, restartReasons: { crash: 2 } }]);
  clock.advance(99);
  assert.equal(spawner.procs.length, 3);
  clock.advance(1);
  assert.equal(spawner.procs.length, 4);
  assert.match(sink.text, /restarting in 100 ms/);
  assert.equal(sup.status().workers.find((w) => w.slot === 1).restarts, 2);
});

test('back-off resets after a worker stays up 30 s', async () => {
  const { spawner, clock } = await started({ workers: 1 });
  spawner.last.die(1);
  spawner.last.ready();
  clock.advance(30_000);
  spawner.last.die(1);
  assert.equal(spawner.procs.length, 3, 'restarted at once again');
});

test('repeated boot failures before any worker was ready stop the cluster with exit code 1', async () => {
  const { spawner, sup, sink } = setup({ workers: 2 });
  const start = sup.start();
  spawner.procs[0].held = [{ level: 'error', msg: 'SyntaxError: Unexpected token', source: 'worker' }];
  spawner.procs[0].die(1);
  spawner.procs[1].die(1);
  assert.equal(spawner.procs.length, 4, 'each slot restarts at once after its first failure');
  spawner.procs[2].die(1);
  await assert.rejects(start, { code: 'E_BOOT', message: /SyntaxError: Unexpected token/ });
  assert.equal(spawner.procs.length, 4, 'nothing is forked after the crash loop is detected');
  assert.deepEqual(spawner.procs[3].signals, ['SIGKILL'], 'the last booting worker serves nobody: ended at once, not drained');
  spawner.procs[3].die(0);
  assert.equal(await sup.done, 1);
  assert.match(sink.text, /the app cannot start/);
});

test('a worker missing its boot deadline is killed and counted as a failed start', async () => {
  const { spawner, clock, sup } = setup({ workers: 1, bootTimeout: 500 });
  void sup.start().catch(() => {});
  clock.advance(500);
  assert.deepEqual(spawner.procs[0].signals, ['SIGKILL']);
  spawner.procs[0].die(null, 'SIGKILL');
  assert.equal(spawner.procs.length, 2);
  assert.equal(sup.status().workers[0].restartReasons['boot-failure'], 1);
});

test('rolling reload replaces one slot at a time, draining the old worker only after the new one is ready', async () => {
  const { spawner, sup } = await started({ workers: 2 });
  const [old0, old1] = spawner.procs;
  let done = false;
  const reload = sup.reload().then(() => (done = true));
  assert.equal(spawner.procs.length, 3);
  const new0 = spawner.last;
  assert.equal(new0.slot, 0);
  assert.equal(drained(old0), false);
  new0.ready();
  assert.equal(drained(old0), true);
  assert.equal(drained(old1), false);
  assert.equal(spawner.procs.length, 4, 'next slot begins');
  const new1 = spawner.last;
  assert.equal(new1.slot, 1);
  old0.die(0);
  new1.ready();
  assert.equal(drained(old1), true);
  await tick();
  assert.equal(done, true);
  await reload;
  assert.equal(sup.status().generation, 2);
  const s = sup.status();
  assert.deepEqual(s.workers.find((w) => w.pid === new0.pid).restartReasons, {}, 'a reload is not a restart');
  assert.equal(s.totals.restarts, 0);
  assert.equal(s.reloads.succeeded, 1);
});

test('--reload-parallel 2 boots two replacements at once', async () => {
  const { spawner, sup } = await started({ workers: 3, reloadParallel: 2 });
  void sup.reload();
  assert.deepEqual(spawner.procs.slice(3).map((p) => p.slot), [0, 1]);
});

test('a replacement that fails to boot stops the reload; old workers keep serving', async () => {
  const { spawner, sup, sink } = await started({ workers: 2 });
  const [old0, old1] = spawner.procs;
  const reload = sup.reload();
  spawner.last.held = [{ level: 'error', msg: 'Error: broken release', source: 'worker' }];
  spawner.last.die(1);
  await assert.rejects(reload, { code: 'E_RELOAD', message: /broken release/ });
  assert.equal(drained(old0), false);
  assert.equal(drained(old1), false);
  assert.equal(spawner.procs.length, 3, 'no more replacements');
  assert.match(sink.text, /reload to generation 2 failed: .*broken release.*every slot is served by the previous generation/);
  assert.equal(sup.status().state, 'running');
});

test('a reload requested while one runs follows it, never interleaves', async () => {
  const { spawner, sup } = await started({ workers: 1 });
  const first = sup.reload();
  const second = sup.reload();
  assert.equal(spawner.procs.length, 2);
  spawner.last.ready();
  spawner.procs[0].die(0);
  await first;
  assert.equal(spawner.procs.length, 3, 'the queued reload starts after the first');
  spawner.last.ready();
  await second;
  assert.equal(sup.status().generation, 3);
});

test('scaling up forks new slots; scaling down drains the highest slots', async () => {
  const { spawner, sup } = await started({ workers: 2 });
  const up = sup.scale(4);
  assert.deepEqual(spawner.procs.slice(2).map((p) => p.slot), [2, 3]);
  spawner.procs[2].ready();
  spawner.procs[3].ready();
  assert.equal(await up, 4);
  await sup.scale(1);
  assert.deepEqual(spawner.procs.map(drained), [false, true, true, true]);
  await assert.rejects(sup.scale(0), { code: 'E_USAGE' });
});

test('stop drains every worker, escalates SIGTERM then SIGKILL, and resolves once all are reaped', async () => {
  const { spawner, clock, sup } = await started({ workers: 2, grace: 3000, killTimeout: 1000 });
  const done = sup.stop();
  assert.ok(spawner.procs.every(drained));
  spawner.procs[0].die(0);
  clock.advance(3000);
  assert.deepEqual(spawner.procs[1].signals, ['SIGTERM']);
  clock.advance(1000);
  assert.deepEqual(spawner.procs[1].signals, ['SIGTERM', 'SIGKILL']);
  spawner.procs[1].events.exit(null, 'SIGKILL');
  let finished = false;
  void done.then(() => (finished = true));
  await tick();
  assert.equal(finished, false, 'not before disconnect');
  spawner.procs[1].events.disconnect();
  assert.equal(await done, 1, 'a worker had to be killed');
});

test('a clean stop exits 0 and spawns nothing more', async () => {
  const { spawner, sup } = await started({ workers: 2 });
  const done = sup.stop();
  for (const p of spawner.procs) p.die(0);
  assert.equal(await done, 0);
  assert.equal(spawner.procs.length, 2);
});

test('the watchdog kills a worker whose heartbeats stop, not one whose heartbeats flow', async () => {
  const { spawner, clock, sink } = await started({ workers: 2, watchdog: 5000 });
  for (let i = 0; i < 10; i++) {
    clock.advance(1000);
    spawner.procs[0].heartbeat();
  }
  assert.deepEqual(spawner.procs[0].signals, []);
  assert.deepEqual(spawner.procs[1].signals, ['SIGKILL']);
  assert.match(sink.text, /worker 1 \(pid \d+\) unresponsive for 5000 ms/);
  spawner.procs[1].die(null, 'SIGKILL');
  assert.equal(spawner.last.slot, 1);
});

test('a worker over --max-memory for 3 heartbeats is replaced before it drains', async () => {
  const { spawner, sup } = await started({ workers: 1, maxMemory: 100 });
  const old = spawner.procs[0];
  old.heartbeat({ rss: 200 });
  old.heartbeat({ rss: 50 });
  old.heartbeat({ rss: 200 });
  old.heartbeat({ rss: 200 });
  assert.equal(spawner.procs.length, 1);
  old.heartbeat({ rss: 200 });
  assert.equal(spawner.procs.length, 2);
  assert.equal(drained(old), false);
  spawner.last.ready();
  assert.equal(drained(old), true);
  assert.equal(sup.status().workers.find((w) => w.pid === spawner.last.pid).restartReasons.memory, 1);
});

test('max-requests recycles a worker once its own limit is reached', async () => {
  const { spawner } = await started({ workers: 1, maxRequests: 100, maxRequestsJitter: 0 });
  spawner.procs[0].heartbeat({ requests: 99 });
  assert.equal(spawner.procs.length, 1);
  spawner.procs[0].heartbeat({ requests: 100 });
  assert.equal(spawner.procs.length, 2);
});

test('a worker leaves the table only after both exit and disconnect', async () => {
  const { spawner, sup } = await started({ workers: 1 });
  void sup.scale(1);
  const p = spawner.procs[0];
  p.events.exit(1, null);
  assert.equal(sup.status().workers.filter((w) => w.pid === p.pid).length, 0, 'exited workers are not listed');
  p.events.disconnect();
  assert.equal(spawner.last.slot, 0);
});

test('a fork that fails is a failed start: nothing is signalled, it backs off, the other workers keep serving', async () => {
  const { spawner, clock, sup, sink } = await started({ workers: 2 });
  spawner.failNext = Object.assign(new Error('spawn ENOENT (cwd /srv/app/releases/v1 no longer exists)'), { code: 'ENOENT' });
  spawner.procs[0].die(null, 'SIGKILL');
  const failed = spawner.last;
  assert.equal(failed.pid, undefined);
  failed.failSpawn();
  assert.match(sink.text, /cannot start worker 0: spawn ENOENT \(cwd \/srv\/app\/releases\/v1 no longer exists\)/);
  assert.equal(spawner.procs.length, 3, 'the next try waits for the back-off');
  assert.equal(sup.status().workers.length, 1, 'the failed worker left the table');
  assert.deepEqual(spawner.procs[1].signals, [], 'the other worker is untouched');
  clock.advance(5000);
  assert.equal(spawner.procs.length, 4, 'retried after the back-off');
  assert.equal(spawner.last.slot, 0);
  spawner.last.ready();
  assert.equal(sup.status().totals.ready, 2);
  assert.equal(sup.status().workers.find((w) => w.slot === 0).restartReasons['boot-failure'], 1);
});

test('forks that keep failing before anything served end the start with the cause; a late boot timer signals nothing', async () => {
  const { spawner, clock, sup } = setup({ workers: 1, bootTimeout: 500 });
  const start = sup.start();
  spawner.failNext = new Error('spawn EAGAIN (too many processes: a pids limit or ulimit -u was reached)');
  spawner.last.die(1);
  clock.advance(1000);
  assert.equal(spawner.last.pid, undefined, 'its boot timer fired before the spawn error arrived, and signalled nothing');
  spawner.failNext = new Error('spawn EAGAIN');
  spawner.last.failSpawn();
  clock.advance(100);
  assert.equal(spawner.procs.length, 3);
  spawner.last.failSpawn();
  await assert.rejects(start, { code: 'E_BOOT', message: /the app cannot start: .*spawn EAGAIN/ });
  assert.equal(await sup.done, 1);
});

test('stop while a replacement boots: the booting worker is ended at once, the ready one drains, exit 0', async () => {
  const { spawner, sup } = await started({ workers: 2, grace: 10_000 });
  spawner.procs[0].die(null, 'SIGKILL');
  const booting = spawner.last;
  const done = sup.stop();
  assert.deepEqual(booting.signals, ['SIGKILL']);
  assert.equal(drained(booting), false, 'no drain message for a worker that never served');
  assert.ok(drained(spawner.procs[1]));
  booting.die(null, 'SIGKILL');
  spawner.procs[1].die(0);
  assert.equal(await done, 0);
});

test('scaling past the CPU limit needs force; new workers boot in batches', async () => {
  const { spawner, sup } = await started({ workers: 1, maxWorkers: 4, spawnBatch: 2 });
  await assert.rejects(sup.scale(5), { code: 'E_USAGE', message: /more than 4.*--force/ });
  const up = sup.scale(6, { force: true });
  assert.deepEqual(spawner.procs.slice(1).map((p) => p.slot), [1, 2], 'two boot at once');
  spawner.procs[1].ready();
  assert.deepEqual(spawner.procs.slice(1).map((p) => p.slot), [1, 2, 3], 'the next starts when one is ready');
  for (const p of spawner.procs.slice(2)) p.ready();
  for (const p of spawner.procs.slice(4)) p.ready();
  assert.equal(await up, 6);
});

test('scale-down ends booting workers at once and drains serving ones', async () => {
  const { spawner, sup } = await started({ workers: 1 });
  void sup.scale(3);
  const [, one, two] = spawner.procs;
  one.ready();
  const down = sup.scale(1);
  assert.deepEqual(two.signals, ['SIGKILL'], 'still booting: ended at once');
  assert.equal(drained(two), false);
  assert.ok(drained(one), 'serving: drained');
  assert.deepEqual(one.signals, []);
  assert.equal(await down, 1);
});

test('a worker that got SIGTERM itself drains and is replaced; during a stop it is only let finish', async () => {
  const { spawner, sup, sink } = await started({ workers: 2 });
  const [a, b] = spawner.procs;
  a.events.message({ corral: 1, type: 'draining', signal: 'SIGTERM' });
  assert.match(sink.text, /worker 0 \(pid \d+\) received SIGTERM and is draining; replacing it/);
  assert.equal(spawner.procs.length, 3, 'its slot gets a replacement at once');
  assert.equal(sup.status().workers.find((w) => w.pid === a.pid).state, 'draining');
  const done = sup.stop();
  b.events.message({ corral: 1, type: 'draining', signal: 'SIGTERM' });
  assert.equal(spawner.procs.length, 3, 'no replacement while stopping');
  assert.deepEqual(spawner.last.signals, ['SIGKILL'], 'the replacement that was booting is ended');
  for (const p of spawner.procs) p.die(0);
  assert.equal(await done, 0, 'workers that drained by themselves are not a failed stop');
});

test('a throwing worker:exit listener is logged and the cluster keeps working', async () => {
  const { spawner, sup, sink, clock } = await started({ workers: 1 });
  sup.on('worker:exit', () => {
    throw new Error('listener bug');
  });
  spawner.procs[0].die(1);
  await tick();
  assert.match(sink.text, /a 'worker:exit' listener threw/);
  assert.equal(spawner.procs.length, 2, 'replaced as usual');
  spawner.last.ready();
  clock.advance(30_000);
  spawner.last.die(1);
  await tick();
  assert.equal(spawner.procs.length, 3);
  assert.equal(sink.records.filter((r) => /listener threw/.test(r.msg)).length, 1, 'shown once');
  assert.equal(sup.status().userErrors, 2);
});

const beat = (proc) => proc.heartbeat();

test('canary: the first replacement serves beside the old worker for --reload-verify before the reload goes on', async () => {
  const { spawner, clock, sup } = await started({ workers: 2, reloadVerify: 2000 });
  const [old0, old1] = spawner.procs;
  spawner.releaseId = 'r2';
  const reload = sup.reload();
  const canary = spawner.last;
  assert.equal(canary.slot, 0);
  assert.equal(canary.release, 'r2');
  canary.ready();
  assert.equal(drained(old0), false, 'the old worker keeps serving beside the canary');
  assert.equal(spawner.procs.length, 3, 'no other slot is touched yet');
  clock.advance(1000);
  beat(canary);
  clock.advance(1000);
  assert.equal(drained(old0), true, 'verified: the old worker of its slot drains');
  const next = spawner.last;
  assert.equal(next.slot, 1);
  next.ready();
  assert.equal(drained(old1), true, 'later replacements are not held');
  await reload;
  assert.equal(sup.status().generation, 2);
  assert.deepEqual(sup.status().reloads, { succeeded: 1, failed: 0, lastError: null });
});

test('a canary that crashes in its window fails the reload; every slot stays on the old generation; not a restart', async () => {
  const { spawner, clock, sup } = await started({ workers: 2, reloadVerify: 2000 });
  const [old0, old1] = spawner.procs;
  spawner.releaseId = 'r2';
  const reload = sup.reload();
  const canary = spawner.last;
  canary.ready();
  clock.advance(800);
  canary.die(1);
  await assert.rejects(reload, { code: 'E_RELOAD', message: /worker 0 of generation 2 crashed after it started/ });
  assert.equal(drained(old0) || drained(old1), false);
  assert.equal(spawner.procs.length, 3, 'nothing respawns the new release');
  const s = sup.status();
  assert.equal(s.generation, 1, 'status shows the generation that serves');
  assert.equal(s.totals.restarts, 0, 'a refused replacement is not a restart of the old worker');
  assert.equal(s.reloads.failed, 1);
  assert.match(s.reloads.lastError, /crashed after it started/);
  old0.die(1);
  assert.equal(spawner.last.release, 'r1', 'a respawn after the failed reload runs the previous release');
});

test('a later replacement that crashes fails the reload and rolls the switched slots back to the previous release', async () => {
  const { spawner, clock, sup } = await started({ workers: 3, reloadVerify: 1000 });
  const [old0, old1, old2] = spawner.procs;
  spawner.releaseId = 'r2';
  const reload = sup.reload();
  const canary = spawner.last;
  canary.ready();
  clock.advance(500);
  beat(canary);
  clock.advance(500);
  assert.ok(drained(old0));
  old0.die(0);
  const second = spawner.last;
  assert.equal(second.slot, 1);
  second.ready();
  assert.ok(drained(old1));
  old1.die(0);
  const third = spawner.last;
  third.die(1);
  await assert.rejects(reload, { code: 'E_RELOAD' });
  assert.equal(drained(old2), false, 'slot 2 never switched');
  const rollbacks = spawner.procs.slice(6);
  assert.deepEqual(rollbacks.map((p) => [p.slot, p.release]), [[0, 'r1']], 'slot 0 is replaced from the previous release first');
  rollbacks[0].ready();
  assert.ok(drained(canary), 'the new-generation worker drains once its replacement serves');
  const next = spawner.last;
  assert.deepEqual([next.slot, next.release], [1, 'r1']);
});

test('an in-place release cannot be rolled back: switched slots keep it and the log says why', async () => {
  const { spawner, clock, sup, sink } = await started({ workers: 2, reloadVerify: 1000 });
  const reload = sup.reload();
  const canary = spawner.last;
  canary.ready();
  clock.advance(500);
  beat(canary);
  clock.advance(500);
  spawner.procs[0].die(0);
  spawner.last.die(1);
  await assert.rejects(reload, { code: 'E_RELOAD' });
  assert.match(sink.text, /slot 0 already runs it: the release was changed in place/);
  assert.equal(drained(canary), false);
});

test('a broken release where a slot is empty (waiting out a back-off) fails the reload instead of retrying forever', async () => {
  const { spawner, clock, sup } = await started({ workers: 2 });
  spawner.procs[1].die(1);
  spawner.last.ready();
  spawner.last.die(1);
  assert.equal(sup.status().waiting.length, 1, 'slot 1 waits out its back-off');
  const reload = sup.reload();
  clock.advance(1000);
  const fill = spawner.procs.find((p) => p.slot === 1 && !p.signals.length && p !== spawner.procs[1] && spawner.procs.indexOf(p) > 3);
  assert.ok(fill, 'slot 1 is filled with the new generation');
  fill.die(1);
  await assert.rejects(reload, { code: 'E_RELOAD' });
});

test('a scale-up whose new workers cannot start fails and the count goes back', async () => {
  const { spawner, sup } = await started({ workers: 1 });
  const up = sup.scale(3);
  spawner.procs[1].ready();
  spawner.procs[2].die(1);
  await assert.rejects(up, { code: 'E_BOOT', message: /worker 2 could not start.*stays at 1 workers/ });
  assert.equal(sup.desired, 1);
  assert.ok(drained(spawner.procs[1]), 'the extra worker that did start is taken out again');
  assert.equal(spawner.procs.length, 3, 'nothing retries');
});

test('a reload whose release cannot be read fails at once', async () => {
  const { spawner, sup } = await started({ workers: 1 });
  spawner.releaseError = new Error('/srv/app/current does not exist (ENOENT)');
  await assert.rejects(sup.reload(), { code: 'E_RELOAD', message: /release cannot be read: \/srv\/app\/current does not exist/ });
  assert.equal(sup.status().generation, 1);
  assert.equal(spawner.procs.length, 1);
});

const promoted = (proc) => proc.sent.find((m) => m.type === 'promote');

async function withSpare(over = {}) {
  const s = await started({ workers: 2, spares: 1, ...over });
  await tick();
  const spare = s.spawner.last;
  assert.equal(spare.spare, true, 'a spare boots once the start is done');
  spare.booted();
  return { ...s, spare };
}

test('spares: one boots after the start, waits with its listen held, and shows as a spare without a slot', async () => {
  const { sup, spare } = await withSpare();
  const row = sup.status().workers.find((w) => w.pid === spare.pid);
  assert.deepEqual([row.slot, row.state], [null, 'spare']);
  assert.equal(sup.status().totals.ready, 2);
});

test('spares: a crashed worker\'s slot is given to the spare (no fork), and a new spare boots behind it', async () => {
  const { spawner, sup, spare } = await withSpare();
  const before = spawner.procs.length;
  spawner.procs[0].die(null, 'SIGKILL');
  assert.deepEqual(promoted(spare), { corral: 1, type: 'promote', slot: 0, workers: 2 });
  assert.equal(spare.slot, 0, 'its log lines carry the new slot');
  assert.equal(spawner.procs.length, before + 1, 'only the next spare is forked');
  assert.equal(spawner.last.spare, true);
  spare.ready();
  const s = sup.status();
  assert.equal(s.workers.find((w) => w.pid === spare.pid).slot, 0);
  assert.equal(s.totals.ready, 2);
});

test('spares: a slot waits for a spare that is booting rather than forking a worker of its own', async () => {
  const { spawner, spare } = await withSpare();
  spawner.procs[0].die(null, 'SIGKILL');
  const next = spawner.last;
  assert.equal(next.spare, true);
  spawner.procs[1].die(null, 'SIGKILL');
  assert.equal(spawner.procs.filter((p) => !p.spare).length, 2, 'no worker is forked for slot 1');
  assert.equal(spawner.last.spare, true, 'the pool boots one more spare behind the one slot 1 waits for');
  next.booted();
  assert.equal(promoted(next).slot, 1);
  assert.ok(promoted(spare));
});

test('spares: a reload retires the old generation\'s spare, boots a new one and promotes it as the canary', async () => {
  const { spawner, sup, spare, clock } = await withSpare({ reloadVerify: 1000 });
  const [old0, old1] = spawner.procs;
  const reload = sup.reload();
  assert.ok(drained(spare), 'the old spare is never promoted');
  assert.equal(promoted(spare), undefined);
  const [fresh, second] = spawner.procs.filter((p) => p.spare && p !== spare);
  assert.ok(fresh, 'the new generation boots a spare first');
  assert.equal(spawner.procs.filter((p) => !p.spare).length, 2, 'no replacement is forked while the spare boots');
  fresh.booted();
  assert.equal(promoted(fresh).slot, 0, 'the canary is the promoted spare');
  fresh.ready();
  assert.equal(drained(old0), false);
  clock.advance(500);
  fresh.heartbeat();
  clock.advance(500);
  assert.ok(drained(old0));
  assert.ok(second, 'another spare booted beside the canary\'s');
  second.booted();
  assert.equal(promoted(second).slot, 1);
  second.ready();
  assert.ok(drained(old1));
  await reload;
});

test('spares: one over --max-memory or silent past the watchdog is replaced', async () => {
  const { spawner, spare, clock } = await withSpare({ maxMemory: 100, watchdog: 5000 });
  for (let i = 0; i < 3; i++) spare.heartbeat({ rss: 200 });
  assert.ok(drained(spare));
  const next = spawner.last;
  assert.equal(next.spare, true);
  next.booted();
  clock.advance(5000);
  assert.deepEqual(next.signals, ['SIGKILL'], 'a spare whose heartbeats stop is killed by the watchdog');
});

test('spares: stop drains them with the workers', async () => {
  const { spawner, sup, spare } = await withSpare();
  const done = sup.stop();
  assert.ok(drained(spare));
  for (const p of spawner.procs) p.die(0);
  assert.equal(await done, 0);
});

test('max-requests jitter: each worker draws its own limit in [max, max + jitter]', async () => {
  const draws = [0, 0.5, 0.999];
  const { spawner } = await started({ workers: 3, maxRequests: 100, maxRequestsJitter: 20, random: () => draws.shift() ?? 0 });
  spawner.procs[0].heartbeat({ requests: 100 });
  assert.equal(spawner.procs.length, 4, 'the first drew 100');
  spawner.last.ready();
  spawner.procs[1].heartbeat({ requests: 109 });
  assert.equal(spawner.procs.length, 4, 'the second drew 110');
  spawner.procs[1].heartbeat({ requests: 110 });
  assert.equal(spawner.procs.length, 5);
  spawner.last.ready();
  spawner.procs[2].heartbeat({ requests: 119 });
  assert.equal(spawner.procs.length, 5, 'the third drew 120');
  spawner.procs[2].heartbeat({ requests: 120 });
  assert.equal(spawner.procs.length, 6);
});

// ---- issue 14: honest status, hints, hard restarts -------------------------

test('status counts unplanned replacements only; totals are the sum of the rows; a removed slot no longer counts', async () => {
  const { spawner, sup } = await started({ workers: 3 });
  spawner.procs[2].die(1);
  spawner.last.ready();
  spawner.procs[0].die(1);
  spawner.last.ready();
  let s = sup.status();
  assert.equal(s.totals.restarts, 2);
  assert.deepEqual(s.workers.map((w) => w.restarts), [1, 0, 1]);
  const reload = sup.reload();
  for (let i = 0; i < 3; i++) {
    spawner.last.ready();
    for (const p of spawner.procs) if (drained(p) && !p.dead) (p.dead = true), p.die(0);
  }
  await reload;
  const scale = sup.scale(2);
  spawner.procs.find((p) => p.slot === 2 && drained(p) && !p.dead).die(0);
  await scale;
  s = sup.status();
  assert.equal(s.reloads.succeeded, 1);
  assert.equal(s.generation, 2);
  assert.deepEqual(s.workers.map((w) => [w.slot, w.restarts, w.restartReasons]), [[0, 1, { crash: 1 }], [1, 0, {}]]);
  assert.equal(s.totals.restarts, s.workers.reduce((n, w) => n + w.restarts, 0), 'totals equal the rows; slot 2 was removed');
});

test('a worker still booting after 5 s gets one hint per generation; the boot timeout names itself, not SIGKILL', async () => {
  const { spawner, clock, sink, sup } = setup({ workers: 2, bootTimeout: 8000 });
  void sup.start().catch(() => {});
  clock.advance(5000);
  const hints = sink.records.filter((r) => /still not listening after 5 s; scripts that never listen call worker\.ready\(\) from 'corral\/worker'; waiting up to 8 s/.test(r.msg));
  assert.equal(hints.length, 1, sink.text);
  clock.advance(3000);
  assert.deepEqual(spawner.procs[0].signals, ['SIGKILL']);
  spawner.procs[0].die(null, 'SIGKILL');
  assert.match(sink.text, /worker 0 \(pid \d+\) failed to start \(did not become ready within 8000 ms \(--boot-timeout\): it neither listened nor called worker\.ready\(\)\)/);
  assert.doesNotMatch(sink.text, /killed by SIGKILL/);
});

test('no hint when the boot timeout is 5 s or less, nor for a worker that became ready', async () => {
  const { clock, sink, sup, spawner } = setup({ workers: 1, bootTimeout: 5000 });
  void sup.start().catch(() => {});
  clock.advance(4999);
  spawner.procs[0].ready();
  clock.advance(10_000);
  assert.doesNotMatch(sink.text, /still not listening/);
});

test('restart --hard drains every old worker at once and starts the new ones together; not counted as restarts', async () => {
  const { spawner, sup, sink } = await started({ workers: 3, reloadVerify: 2000 });
  const old = [...spawner.procs];
  const done = sup.reload({ hard: true });
  assert.ok(old.every(drained), 'all old workers drain at once');
  assert.equal(spawner.procs.length, 6, 'three new workers boot together, no canary');
  for (const p of spawner.procs.slice(3)) p.ready();
  await done;
  assert.equal(sup.status().generation, 2);
  assert.equal(sup.status().totals.restarts, 0);
  assert.match(sink.text, /hard restart to generation 2: draining all 3 workers and starting new ones at once/);
});

test('"reload complete" is logged after the old workers have stopped', async () => {
  const { spawner, sup, sink } = await started({ workers: 1 });
  const [old] = spawner.procs;
  const reload = sup.reload();
  spawner.last.ready();
  await reload;
  assert.doesNotMatch(sink.text, /reload to generation 2 complete/, 'not while the old worker drains');
  old.die(0);
  const lines = sink.records.map((r) => r.msg);
  const stopped = lines.findIndex((l) => l.includes(`pid ${old.pid}) stopped`));
  const complete = lines.findIndex((l) => l === 'reload to generation 2 complete');
  assert.ok(stopped >= 0 && complete > stopped, lines.join('\n'));
});

test('a crash-looping slot shows its crash output once, then counts the repeats', async () => {
  const { spawner, clock, sup, sink } = await started({ workers: 1 });
  const trace = [{ time: new Date(), level: 'error', source: 'worker', worker: 0, pid: 1, msg: 'Error: boom' }];
  for (let i = 0; i < 4; i++) {
    const w = spawner.last;
    w.crashOutput = trace.map((r) => ({ ...r }));
    w.die(1);
    clock.advance(1000);
    spawner.last.ready();
  }
  assert.equal(sink.records.filter((r) => r.msg === 'Error: boom').length, 1, sink.text);
  assert.match(sink.text, /exited with code 1 \(same error as the previous crash of slot 0; output not shown again\)/);
  assert.match(sink.text, /exited with code 1 \(same error as the previous 3 crashes of slot 0; output not shown again\)/);
  assert.equal(sup.status().workers[0].restarts, 4);
});

// ---- real-time: lingering drains and the router's view ---------------------

const drainOf = (proc) => proc.sent.find((m) => m.type === 'drain');
const released = (proc) => proc.sent.some((m) => m.type === 'release');

test('a rolling reload: drained old workers linger while an older worker still accepts, and are released when the last one drains', async () => {
  const { spawner, sup } = await started({ workers: 3 });
  const [old0, old1, old2] = spawner.procs;
  const reload = sup.reload();
  spawner.last.ready(); // new 0
  assert.equal(drainOf(old0).linger, true, 'old 1 and 2 still accept');
  spawner.last.ready(); // new 1
  assert.equal(drainOf(old1).linger, true, 'old 2 still accepts');
  assert.equal(released(old0), false);
  spawner.last.ready(); // new 2
  assert.equal(drainOf(old2).linger, false, 'no older worker accepts any more');
  assert.equal(released(old0), true);
  assert.equal(released(old1), true);
  await reload;
});

test('stop, scale-down and recycling never linger', async () => {
  const { spawner, sup } = await started({ workers: 2 });
  const [w0, w1] = spawner.procs;
  await Promise.race([sup.scale(1), tick()]);
  assert.equal(drainOf(w1).linger, false);
  void sup.stop();
  assert.equal(drainOf(w0).linger, false);
});

test('the router sees ready workers; during a canary\'s window old and new are preferred alike, after it only the new generation', async () => {
  const { spawner, sup, clock, views } = await started({ workers: 2, reloadVerify: 1000 });
  assert.equal(views.at(-1), '0+ 1+');
  const reload = sup.reload();
  spawner.last.ready(); // the canary
  assert.equal(views.at(-1), '0+ 1+ 0+');
  clock.advance(10);
  spawner.last.heartbeat();
  clock.advance(1000);
  assert.equal(views.at(-1), '1 0+', 'old 0 drains, old 1 keeps its clients but gets no new ones');
  spawner.last.ready();
  assert.equal(views.at(-1), '0+ 1+');
  await reload;
});

test('a sticky listen read after its worker\'s exit is not given to the router (it would keep a dead member); a returned connection still is', async () => {
  const { spawner, received } = await started({ workers: 1 });
  const w = spawner.procs[0];
  w.die(1);
  w.events.message({ corral: 1, type: 'sticky-listen', id: 1, query: { key: 'a:1:4:0' } });
  w.events.message({ corral: 1, type: 'sticky-return', key: 'a:1:4:0', client: 'x', data: '', hops: 0 });
  await tick();
  assert.equal(received.filter((r) => r.startsWith('forget')).length, 1);
  assert.ok(!received.some((r) => r.startsWith('sticky-listen')), received.join(', '));
  assert.ok(received.some((r) => r.startsWith('sticky-return')), received.join(', '));
});

test('Socket.IO sessions lost across workers: said once however many workers report it; not with one worker serving', async () => {
  const advice = (sink) => sink.records.filter((r) => /Session ID unknown/.test(r.msg)).length;
  const two = await started({ workers: 2 });
  for (const w of two.spawner.procs) w.events.message({ corral: 1, type: 'session-elsewhere' });
  two.spawner.procs[0].events.message({ corral: 1, type: 'session-elsewhere' });
  await tick();
  assert.equal(advice(two.sink), 1);
  const one = await started({ workers: 1 });
  one.spawner.procs[0].events.message({ corral: 1, type: 'session-elsewhere' });
  await tick();
  assert.equal(advice(one.sink), 0, 'a lone worker lost a session to a restart: --sticky would not help');
});
