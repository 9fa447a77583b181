// The supervisor's concerns, each tested on its own: slot bookkeeping, the
// health rules, boot failure reports, request/broadcast messaging, reload
// and scale waiters, and the status view.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SlotTable } from '../../dist/primary/slots.js';
import { judgeHeartbeat, silentFor } from '../../dist/primary/health.js';
import { BootReport, describeExit } from '../../dist/primary/boot-report.js';
import { HOLD_UNHANDLED_MS, Messenger } from '../../dist/primary/messaging.js';
import { ListenerBus, UserErrors } from '../../dist/primary/user-errors.js';
import { ReloadQueue, ScaleWaiters } from '../../dist/primary/waiters.js';
import { CANARY_HEARTBEAT_SLACK_MS, Rollout } from '../../dist/primary/rollout.js';
import { deferred } from '../../dist/primary/deferred.js';
import { buildStatus } from '../../dist/primary/status.js';
import { WorkerHandle } from '../../dist/primary/worker.js';
import { DEFAULT_BACKOFF } from '../../dist/primary/backoff.js';
import { FakeClock, MemorySink } from './fakes.js';

function fakeProc(pid = 10, held = []) {
  const sent = [];
  return { pid, sent, send: (m) => sent.push(m), kill() {}, releaseOutput() {}, takeHeldOutput: () => held, takeCrashOutput: () => [], recentErrors: () => [] };
}

const stats = (over = {}) => ({ rss: 1, heapUsed: 1, heapTotal: 1, cpuUser: 0, cpuSystem: 0, loopDelayMean: 0, loopDelayMax: 0, loopUtilization: 0, connections: 0, requests: 0, ...over });

test('SlotTable: failed starts back off, a long-lived worker resets the count, restarts are counted by reason', () => {
  const slots = new SlotTable(DEFAULT_BACKOFF);
  assert.equal(slots.failedStart(0, 1000), 0);
  assert.equal(slots.failedStart(0, 1000), 100);
  assert.equal(slots.get(0).respawnAt, 1100);
  assert.equal(slots.crashed(0, 2000, 30_000), 0, 'up for 30 s: the slot starts over');
  slots.countRestart(0, 'crash');
  slots.countRestart(1, 'memory');
  slots.countRestart(1, 'memory');
  assert.deepEqual(slots.get(1).reasons, { memory: 2 });
  slots.forgetFrom(1);
  assert.deepEqual(slots.view(1), { failures: 0, respawnAt: 0, restarts: 0, reasons: {} }, 'a slot removed by a scale-down no longer counts');
  assert.equal(slots.view(0).restarts, 1);
});

test('health: memory over the limit for N beats in a row, or the request limit, recycles', () => {
  const w = new WorkerHandle(1, 0, 1, fakeProc(), 0, 100);
  const limits = { maxMemory: 1000, memoryBeats: 3 };
  assert.equal(judgeHeartbeat(w, stats({ rss: 2000 }), limits), null);
  assert.equal(judgeHeartbeat(w, stats({ rss: 2000 }), limits), null);
  assert.equal(judgeHeartbeat(w, stats({ rss: 10 }), limits), null, 'a beat under the limit resets the count');
  judgeHeartbeat(w, stats({ rss: 2000 }), limits);
  judgeHeartbeat(w, stats({ rss: 2000 }), limits);
  assert.equal(judgeHeartbeat(w, stats({ rss: 2000 }), limits)?.reason, 'memory');
  const v = new WorkerHandle(2, 0, 1, fakeProc(), 0, 100);
  assert.equal(judgeHeartbeat(v, stats({ requests: 99 }), limits), null);
  assert.match(judgeHeartbeat(v, stats({ requests: 100 }), limits)?.message, /served 100 requests \(limit 100\)/);
  v.recordHeartbeat(stats(), 5000);
  assert.equal(silentFor(v, 7000), 2000);
});

test('BootReport: the same boot output prints once; three failed starts before ever serving are a crash loop', () => {
  const sink = new MemorySink();
  const report = new BootReport(sink);
  const held = [{ level: 'error', msg: 'Error: boom', source: 'worker' }];
  const w = (pid) => {
    const h = new WorkerHandle(pid, 0, 1, fakeProc(pid, held), 0, undefined);
    h.noteExit({ code: 1, signal: null });
    return h;
  };
  assert.deepEqual(report.failedStart(w(1)), { reason: 'exited with code 1: Error: boom', repeated: false });
  assert.equal(report.failedStart(w(2)).repeated, true);
  assert.equal(sink.records.length, 1);
  assert.equal(report.crashLoop(false, undefined, 'app.js'), null);
  assert.equal(report.crashLoop(false, undefined, 'app.js'), null);
  assert.match(report.crashLoop(false, undefined, 'app.js').message, /the app cannot start: Error: boom \(app\.js\)/);
  assert.equal(report.crashLoop(true, undefined, 'app.js'), null, 'after serving once, never fatal');
  assert.equal(describeExit({ code: null, signal: 'SIGKILL' }), 'was killed by SIGKILL');
});

test('Messenger: a handler answers, a throwing handler answers with its code, an unknown name says so after the hold', async () => {
  const clock = new FakeClock();
  const sink = new MemorySink();
  const m = new Messenger(clock, new UserErrors(sink));
  const proc = fakeProc();
  const w = new WorkerHandle(1, 3, 1, proc, 0, undefined);
  m.onRequest('add', ({ a, b }, from) => a + b + from.slot);
  m.onRequest('no', () => {
    throw Object.assign(new Error('nope'), { code: 'E_NOPE' });
  });
  m.answer(w, 1, 'add', { a: 1, b: 2 });
  m.answer(w, 2, 'no', null);
  m.answer(w, 3, 'missing', null);
  m.onRequest('bug', () => null.x);
  m.answer(w, 4, 'bug', null);
  await new Promise((r) => setImmediate(r));
  assert.equal(proc.sent.some((s) => s.id === 3), false, 'held while no handler exists');
  clock.advance(HOLD_UNHANDLED_MS);
  const byId = Object.fromEntries(proc.sent.map((s) => [s.id, s]));
  assert.equal(byId[1].result, 6);
  assert.deepEqual(byId[2].error, { code: 'E_NOPE', message: 'nope' });
  assert.equal(byId[3].error.code, 'E_NO_HANDLER');
  assert.equal(byId[4].error.code, 'E_HANDLER');
  assert.match(sink.text, /the onRequest handler for "bug" threw .*TypeError/s, 'an uncoded error is a bug: logged with its stack');
  assert.equal(sink.records.length, 1, 'coded errors are answers, not logged');
  assert.equal(m.broadcast([w], { x: 1 }, 'primary'), 1);
});

test('Messenger: a request that arrives before its handler is answered once the handler is registered', async () => {
  const m = new Messenger(new FakeClock(), new UserErrors(new MemorySink()));
  const proc = fakeProc();
  const w = new WorkerHandle(1, 0, 1, proc, 0, undefined);
  m.answer(w, 9, 'config', { region: 'eu' });
  m.onRequest('config', (p) => ({ ok: p.region }));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(proc.sent, [{ corral: 1, type: 'reply', id: 9, ok: true, result: { ok: 'eu' } }]);
});

test('UserErrors and ListenerBus: a throwing listener is logged once with its stack, the others still run', async () => {
  const sink = new MemorySink();
  const errors = new UserErrors(sink);
  const bus = new ListenerBus(errors);
  const seen = [];
  bus.on('x', () => {
    throw new Error('listener bug');
  });
  bus.on('x', (v) => seen.push(v));
  bus.emit('x', 1);
  assert.deepEqual(seen, [], 'listeners run after the emitting code, not inside it');
  await Promise.resolve();
  bus.emit('x', 2);
  await Promise.resolve();
  assert.deepEqual(seen, [1, 2]);
  assert.equal(sink.records.length, 1);
  assert.match(sink.text, /a 'x' listener threw .*Error: listener bug\n\s+at /s);
  assert.equal(errors.total, 2);
});

test('ReloadQueue: requests during a reload run together after it; stopping rejects every waiter', async () => {
  const q = new ReloadQueue();
  const a = deferred();
  const b = deferred();
  const c = deferred();
  assert.equal(q.request(a), true);
  q.begin(new Rollout(2, 1, 0));
  assert.equal(q.running.target, 2);
  assert.equal(q.request(b), false);
  assert.equal(q.request(c), false);
  q.succeed();
  await a.promise;
  assert.equal(q.running, null);
  assert.equal(q.hasQueued, true);
  q.begin(new Rollout(3, 2, 0));
  q.rejectAll(new Error('stopping'));
  await assert.rejects(b.promise, /stopping/);
  await assert.rejects(c.promise, /stopping/);
  const s = new ScaleWaiters();
  const d = deferred();
  s.add(d);
  s.resolveAll(4);
  assert.equal(await d.promise, 4);
});

test('Rollout: one canary until it has served the verify window and sent a heartbeat since it listened', () => {
  const r = new Rollout(2, 1, 2000);
  const canary = new WorkerHandle(5, 0, 2, fakeProc(50), 0, undefined);
  assert.equal(r.mayStartReplacement(), true);
  r.noteReplacement(canary);
  assert.equal(r.mayStartReplacement(), false, 'no second replacement while the canary is unproven');
  canary.transition('ready', 1000);
  assert.equal(r.mayRetireOld(canary), false, 'the old worker serves beside the canary');
  assert.deepEqual(r.judgeCanary(2500), { kind: 'wait', ms: 500 });
  assert.deepEqual(r.judgeCanary(3000), { kind: 'wait', ms: 250 }, 'no heartbeat since it listened yet');
  canary.recordHeartbeat(stats(), 3100);
  assert.deepEqual(r.judgeCanary(3100), { kind: 'pass' });
  assert.equal(r.mayStartReplacement(), true);
  assert.equal(r.mayRetireOld(canary), true);
  const hung = new Rollout(3, 2, 1000);
  const h = new WorkerHandle(6, 0, 3, fakeProc(60), 0, undefined);
  hung.noteReplacement(h);
  h.transition('ready', 0);
  assert.equal(hung.judgeCanary(1000 + CANARY_HEARTBEAT_SLACK_MS).kind, 'fail');
  const none = new Rollout(4, 3, 0);
  none.noteReplacement(h);
  assert.equal(none.mayStartReplacement(), true, '--reload-verify 0: no canary');
});

test('status view: rows sorted by slot, totals, waiting slots with their back-off', () => {
  const slots = new SlotTable(DEFAULT_BACKOFF);
  slots.failedStart(1, 0);
  slots.failedStart(1, 0);
  const a = new WorkerHandle(2, 0, 1, fakeProc(20), 0, undefined);
  a.transition('ready', 10);
  a.recordHeartbeat(stats({ rss: 100, requests: 5 }), 500);
  const s = buildStatus({ name: 'n', script: 's', strategy: 'os', state: 'running', startedAt: 0, now: 1000, desired: 2, generation: 1, workers: [a], emptySlots: [1], slots, logLinesDropped: 0, userErrors: 0, reloads: { succeeded: 0, failed: 0, lastError: null } });
  assert.equal(s.workers[0].pid, 20);
  assert.equal(s.workers[0].lastHeartbeatMsAgo, 500);
  assert.deepEqual(s.totals, { workers: 1, ready: 1, rss: 100, requests: 5, restarts: 0 });
  assert.deepEqual(s.waiting, [{ slot: 1, restartInMs: 0, restarts: 0, restartReasons: {} }]);
});
