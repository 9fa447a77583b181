import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, freePort, get, within, load, runCli, sleep, startCorral, tempHome, waitFor, writeRelease, QUICK_CANARY } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

const readyPids = (s) => s.workers.filter((w) => w.state === 'ready').map((w) => w.pid).sort();

async function reloadUnderLoad(t, { keepAlive, via }) {
  const c = startCorral(t, [APP, '-w', '2', '--name', 'rl', ...QUICK_CANARY]);
  const port = await c.ready(2);
  const before = readyPids(await c.status());
  const traffic = load(port, { concurrency: 8, keepAlive, maxMs: 30000 });
  await sleep(300);
  if (via === 'cli') {
    const r = await runCli(['reload', 'rl'], { home: c.home, timeout: 30000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /reloaded/);
  } else {
    c.signal('SIGHUP');
    await c.waitForLine(/reload to generation 2 complete/, 30000);
  }
  await sleep(300);
  const stats = await traffic.stop();
  const after = readyPids(await c.status());
  assert.equal(after.length, 2);
  for (const pid of after) assert.ok(!before.includes(pid), `pid ${pid} survived the reload`);
  assert.equal(stats.failed, 0, `failed requests: ${stats.errors.slice(0, 5).join(', ')}`);
  assert.ok(stats.ok > 50, `only ${stats.ok} requests went through`);
}

test('corral reload under keep-alive load: every pid changes, zero failed requests', (t) => reloadUnderLoad(t, { keepAlive: true, via: 'cli' }));
test('corral reload with a new connection per request: zero failed requests', (t) => reloadUnderLoad(t, { keepAlive: false, via: 'cli' }));
test('kill -HUP reloads the same way under keep-alive load', (t) => reloadUnderLoad(t, { keepAlive: true, via: 'signal' }));
test('kill -HUP with a new connection per request', (t) => reloadUnderLoad(t, { keepAlive: false, via: 'signal' }));

test('reload serves the code now on disk', async (t) => {
  const dir = tempHome();
  const script = writeRelease(dir, 'v1');
  const c = startCorral(t, [script, '-w', '2', '--name', 'disk']);
  const port = await c.ready(2);
  assert.equal(JSON.parse((await get(port, '/info')).body).version, 'v1');
  writeRelease(dir, 'v2');
  const r = await runCli(['reload'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  for (let i = 0; i < 10; i++) assert.equal(JSON.parse((await get(port, '/info')).body).version, 'v2');
});

test('reload into a release that throws at boot: exit 1 naming the error, old workers keep serving, nothing fails', async (t) => {
  const dir = tempHome();
  const script = writeRelease(dir, 'v1');
  const c = startCorral(t, [script, '-w', '2', '--name', 'broken']);
  const port = await c.ready(2);
  const before = readyPids(await c.status());
  const traffic = load(port, { concurrency: 4, keepAlive: true, maxMs: 30000 });
  writeRelease(dir, 'v2', "throw new Error('release 2 is broken');");
  const r = await runCli(['reload', 'broken'], { home: c.home, timeout: 30000 });
  const stats = await traffic.stop();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /release 2 is broken/);
  assert.deepEqual(readyPids(await c.status()), before);
  assert.equal(JSON.parse((await get(port, '/info')).body).version, 'v1');
  assert.equal(stats.failed, 0, stats.errors.slice(0, 5).join(', '));
  assert.match(c.output, /reload to generation 2 failed: .*release 2 is broken.*every slot is served by the previous generation/);
});

test('scale +1 / -1 and SIGTTIN / SIGTTOU change the worker count', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--name', 'sc']);
  await c.ready(2);
  const count = async () => readyPids(await c.status()).length;
  let r = await runCli(['scale', '+1'], { home: c.home });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await count(), 3);
  r = await runCli(['scale', 'sc', '-1'], { home: c.home });
  assert.equal(r.code, 0, r.stderr);
  await waitFor(async () => (await c.status()).workers.length === 2, 10000, '2 workers');
  c.signal('SIGTTIN');
  await waitFor(async () => (await count()) === 3, 10000, '3 ready workers after SIGTTIN');
  c.signal('SIGTTOU');
  await waitFor(async () => (await c.status()).workers.length === 2, 10000, '2 workers after SIGTTOU');
  r = await runCli(['scale', '0'], { home: c.home });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /at least 1/);
  r = await runCli(['scale', '-5'], { home: c.home });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot scale to -3 workers/);
  // Served by as many pids as the status says.
  const s = await c.status();
  assert.equal(s.desired, 2);
});

test('status works while workers crash and respawn; garbage on the socket gets an error reply', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--name', 'st', '--port', String(await freePort())]);
  const port = await c.ready(2);
  for (let i = 0; i < 5; i++) {
    await get(port, '/crash').catch(() => {});
    const s = await c.status();
    assert.equal(s.name, 'st');
    assert.equal(s.desired, 2);
  }
  const table = await runCli(['status'], { home: c.home });
  assert.equal(table.code, 0);
  assert.match(table.stdout, /SLOT\s+PID\s+STATE\s+UPTIME\s+RESTARTS\s+RSS\s+CPU/);
  const socketFile = path.join(c.home, 'st.sock');
  const reply = await within(new Promise((resolve, reject) => {
    const sock = net.connect(socketFile);
    let data = '';
    sock.on('data', (d) => {
      data += d;
      if (data.includes('\n')) {
        sock.destroy();
        resolve(JSON.parse(data.split('\n')[0]));
      }
    });
    sock.on('error', reject);
    sock.write('this is not json\n');
  }), 5000, 'an error reply to garbage');
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, 'E_PROTOCOL');
  const big = await within(new Promise((resolve) => {
    const sock = net.connect(socketFile);
    let data = '';
    sock.on('data', (d) => (data += d));
    sock.on('close', () => resolve(data));
    sock.on('error', () => resolve(data));
    sock.write('x'.repeat(200 * 1024));
  }), 5000, 'the oversized request to be refused');
  assert.match(big, /longer than/);
  await waitFor(async () => (await get(port, '/')).status === 200, 10000, 'the cluster to serve');
  assert.equal((await c.status()).name, 'st');
});

test('the control directory is 0700 and the socket 0600', async (t) => {
  const home = path.join(tempHome(), 'nested-home');
  const c = startCorral(t, [APP, '-w', '1', '--name', 'perm'], { home });
  await c.ready(1);
  assert.equal(statSync(home).mode & 0o777, 0o700);
  assert.equal(statSync(path.join(home, 'perm.sock')).mode & 0o777, 0o600);
});

test('a live name is refused with exit 2; a stale socket from a killed primary is replaced', async (t) => {
  const home = tempHome();
  const c = startCorral(t, [APP, '-w', '1', '--name', 'dup'], { home });
  await c.ready(1);
  const second = await runCli([APP, '-w', '1', '--name', 'dup'], { home });
  assert.equal(second.code, 2);
  assert.match(second.stderr, /a cluster named "dup" is already running/);
  c.signal('SIGKILL');
  await c.waitForExit(5000);
  const c2 = startCorral(t, [APP, '-w', '1', '--name', 'dup'], { home });
  await c2.ready(1);
  assert.equal((await c2.status()).pid, c2.pid);
});

test('with several clusters a name is required; list shows them all; stop stops one', async (t) => {
  const home = tempHome();
  const a = startCorral(t, [APP, '-w', '1', '--name', 'alpha'], { home });
  const b = startCorral(t, [APP, '-w', '1', '--name', 'beta'], { home });
  await a.ready(1);
  await b.ready(1);
  const r = await runCli(['status'], { home });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /several clusters are running \(alpha, beta\)/);
  const list = await runCli(['list'], { home });
  assert.match(list.stdout, /alpha/);
  assert.match(list.stdout, /beta/);
  const stop = await runCli(['stop', 'alpha'], { home });
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal((await a.waitForExit(5000)).code, 0);
  const missing = await runCli(['reload', 'alpha'], { home });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no running cluster named "alpha".*running: beta/);
});
