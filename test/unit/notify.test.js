// The systemd notifier's state machine with a fake sender, and the
// supervisor events it follows (reload:start, stopping).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { ServiceNotifier } from '../../dist/systemd/notify.js';
import { Supervisor } from '../../dist/primary/supervisor.js';
import { FakeClock, FakeSpawner, MemorySink, config, tick } from './fakes.js';

function recorder({ fail } = {}) {
  const sent = [];
  const warnings = [];
  const send = async (fields) => {
    if (fail) throw fail;
    sent.push(fields);
  };
  const notifier = new ServiceNotifier(send, () => 'web: 2/2 workers ready, generation 1', (w) => warnings.push(w));
  const kinds = () => sent.map((f) => f[0]);
  return { sent, warnings, notifier, kinds };
}

/** A stand-in for a ClusterHandle: only what the notifier listens to. */
function fakeCluster(name) {
  const e = new EventEmitter();
  e.name = name;
  return e;
}

const settle = () => new Promise((r) => setImmediate(r));

test('READY=1 with a status line once every app runs; reloads and the stop follow', async () => {
  const { sent, notifier, kinds } = recorder();
  const web = fakeCluster('web');
  notifier.watch([web]);
  await settle();
  assert.deepEqual(sent[0], ['READY=1', 'STATUS=web: 2/2 workers ready, generation 1']);
  web.emit('reload:start', { generation: 2 });
  await settle();
  assert.equal(sent[1][0], 'RELOADING=1');
  assert.match(sent[1][1], /^MONOTONIC_USEC=\d+$/);
  assert.equal(sent[1][2], 'STATUS=reloading web');
  web.emit('reload:failed', { generation: 2, error: 'worker 0 of the new release failed to start (exited with code 1)' });
  await settle();
  assert.deepEqual(sent[2], ['READY=1', 'STATUS=web: reload failed (worker 0 of the new release failed to start (exited with code 1)); the previous workers keep serving; web: 2/2 workers ready, generation 1']);
  web.emit('stopping');
  web.emit('stopping');
  await settle();
  assert.deepEqual(kinds(), ['READY=1', 'RELOADING=1', 'READY=1', 'STOPPING=1']);
});

test('a queued reload that starts as the last one ends sends no READY=1 in between; several apps reload as one service', async () => {
  const { notifier, kinds } = recorder();
  const [web, jobs] = [fakeCluster('web'), fakeCluster('jobs')];
  notifier.watch([web, jobs]);
  await settle();
  web.emit('reload:start', { generation: 2 });
  jobs.emit('reload:start', { generation: 2 });
  await settle();
  web.emit('reload:done', { generation: 2 });
  await settle();
  assert.deepEqual(kinds(), ['READY=1', 'RELOADING=1'], 'jobs is still reloading');
  jobs.emit('reload:done', { generation: 2 });
  jobs.emit('reload:start', { generation: 3 });
  await settle();
  assert.deepEqual(kinds(), ['READY=1', 'RELOADING=1']);
  jobs.emit('reload:done', { generation: 3 });
  await settle();
  assert.deepEqual(kinds(), ['READY=1', 'RELOADING=1', 'READY=1']);
});

test('a reload refused before it began leaves no note for the next READY=1', async () => {
  const { sent, notifier } = recorder();
  const web = fakeCluster('web');
  notifier.watch([web]);
  web.emit('reload:failed', { generation: 2, error: 'the release cannot be read' });
  await settle();
  web.emit('reload:start', { generation: 2 });
  await settle();
  web.emit('reload:done', { generation: 2 });
  await settle();
  assert.deepEqual(sent.at(-1), ['READY=1', 'STATUS=web: 2/2 workers ready, generation 1']);
});

test('nothing is sent before the apps run; a stop during start sends STOPPING=1 only', async () => {
  const { notifier, kinds } = recorder();
  notifier.reloadStarted('web');
  await settle();
  assert.deepEqual(kinds(), []);
  notifier.stopping();
  await settle();
  assert.deepEqual(kinds(), ['STOPPING=1']);
});

test('systemd-notify missing: one warning that says what to do, then silence', async () => {
  const enoent = Object.assign(new Error('spawn systemd-notify ENOENT'), { code: 'ENOENT' });
  const { warnings, notifier } = recorder({ fail: enoent });
  const web = fakeCluster('web');
  notifier.watch([web]);
  await settle();
  web.emit('stopping');
  await notifier.idle(1000);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /systemd-notify is not on PATH.*Type=simple/);
});

test('fromEnv takes NOTIFY_SOCKET out of the environment the workers inherit', () => {
  const env = { NOTIFY_SOCKET: '/run/systemd/notify', PATH: '/usr/bin' };
  assert.ok(ServiceNotifier.fromEnv(env, () => '', () => {}));
  assert.deepEqual(env, { PATH: '/usr/bin' });
  assert.equal(ServiceNotifier.fromEnv({}, () => '', () => {}), null);
});

test('the supervisor emits reload:start when a reload begins and stopping once when the stop begins', async () => {
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const sup = new Supervisor(config({ workers: 1 }), spawner, new MemorySink(), clock);
  const seen = [];
  sup.on('reload:start', (e) => seen.push(`reload:start ${e.generation}`));
  sup.on('reload:done', (e) => seen.push(`reload:done ${e.generation}`));
  sup.on('stopping', () => seen.push('stopping'));
  const started = sup.start();
  spawner.last.ready();
  await started;
  const reloaded = sup.reload();
  spawner.last.ready();
  await reloaded;
  void sup.stop();
  void sup.stop();
  await tick();
  assert.deepEqual(seen, ['reload:start 2', 'reload:done 2', 'stopping']);
});
