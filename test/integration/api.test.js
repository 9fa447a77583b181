import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, ROOT, alive, freePort, get, startCorral, tempHome, waitFor, within } from '../helpers.js';

test('library API: start, requests to the primary, broadcast, scale, reload, stop, shutdown hooks', async (t) => {
  const home = tempHome();
  const shutdownLog = path.join(home, 'shutdown.log');
  writeFileSync(shutdownLog, '');
  const child = spawn(process.execPath, [path.join(FIXTURES, 'api-driver.mjs')], {
    cwd: ROOT,
    env: { ...process.env, CORRAL_HOME: home, SCRIPT: path.join(FIXTURES, 'api-worker.mjs'), PORT: String(await freePort()), SHUTDOWN_LOG: shutdownLog },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const steps = {};
  const pids = new Set();
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    for (const line of String(d).split('\n')) {
      if (!line.startsWith('{"step"')) {
        const m = /"pid":(\d+)/.exec(line);
        if (m) pids.add(Number(m[1]));
        continue;
      }
      const s = JSON.parse(line);
      steps[s.step] = s;
    }
  });
  child.stderr.on('data', (d) => (out += d));
  t.after(() => {
    for (const pid of [child.pid, ...pids]) try { process.kill(pid, 'SIGKILL'); } catch {}
  });
  await waitFor(() => steps.stopped, 40000, `the driver to finish; output:\n${out}`);

  assert.equal(steps.started.pids.length, 2);
  assert.equal(steps.add.value, 5);
  assert.deepEqual(steps.fail.value, { code: 'E_NOPE', message: 'the primary says no' });
  assert.equal(steps.unknown.value.code, 'E_NO_HANDLER');
  assert.match(steps.big.value, /payload is \d+ bytes; the limit is 1048576/);
  assert.equal(steps.broadcast.delivered, 2);
  assert.deepEqual(steps.received.value, [{ payload: { hello: 'everyone' }, from: 'primary' }]);
  assert.equal(steps.scaled.pids.length, 3);
  assert.equal(steps.scaled.served.length, 3);
  for (const pid of steps.reloaded.after) assert.ok(!steps.reloaded.before.includes(pid));
  assert.equal(steps.reloaded.generation, 2);
  assert.equal(steps.stopped.code, 0);
  for (const pid of [...steps.reloaded.before, ...steps.reloaded.after]) assert.equal(alive(pid), false);
  const hooks = readFileSync(shutdownLog, 'utf8').trim().split('\n').map((l) => l.split(' ')[1]);
  assert.equal(hooks.filter((r) => r === 'reload').length, 3, `hooks: ${hooks}`);
  assert.equal(hooks.filter((r) => r === 'stop').length, 3, `hooks: ${hooks}`);
});

test('a worker broadcast reaches every other worker', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'api-worker.mjs'), '-w', '2', '--port', String(await freePort())]);
  const port = await c.ready(2);
  await get(port, '/broadcast');
  await waitFor(async () => {
    const seen = await Promise.all(Array.from({ length: 8 }, () => get(port, '/received').then((r) => JSON.parse(r.body))));
    return seen.some((r) => r.length === 1 && typeof r[0].from === 'number');
  }, 5000, 'the other worker to receive the broadcast');
});

test('the worker API works under plain node too', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', "import { worker } from 'corral/worker'; console.log(JSON.stringify({ m: worker.isPrimaryManaged, id: worker.id, n: worker.count })); await worker.request('x').catch((e) => console.log(e.code));"], { cwd: ROOT });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((r) => child.on('exit', r));
  assert.equal(out, '{"m":false,"id":0,"n":1}\nE_NOT_MANAGED\n');
});

test('a script that never listens becomes ready with worker.ready()', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'consumer.mjs'), '-w', '2', '--boot-timeout', '5000']);
  await waitFor(() => c.lines.filter((l) => /worker \d \(pid \d+\) ready in \d+ ms$/.test(l)).length === 2, 5000, '2 ready workers');
  const s = await c.status();
  assert.deepEqual(s.workers.map((w) => w.state), ['ready', 'ready']);
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(5000)).code, 0);
});

function rawUpgrade(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      data += d;
      if (data.includes('\r\n\r\n') && !sock.headers) {
        sock.headers = data;
        resolve({ sock, received: () => data });
      }
    });
    sock.on('error', reject);
    sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  });
}

test('on stop, upgraded connections are left to the app\'s onShutdown hook, then the worker exits', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'upgrade.mjs'), '-w', '1', '--grace', '20000'], { env: { WITH_UPGRADE: '1' } });
  const port = await c.ready(1);
  const { sock, received } = await within(rawUpgrade(port), 5000, 'the 101 response');
  t.after(() => sock.destroy());
  assert.match(received(), /^HTTP\/1\.1 101/);
  const closed = new Promise((r) => sock.on('close', r));
  const started = Date.now();
  c.signal('SIGTERM');
  await within(closed, 8000, 'the hook to close the upgraded connection');
  assert.match(received(), /bye stop\n$/);
  assert.equal((await c.waitForExit(10000)).code, 0);
  assert.ok(Date.now() - started < 5000, 'did not wait for the grace period');
});

test('an app without an upgrade listener still answers upgrade requests as plain requests', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'upgrade.mjs'), '-w', '1']);
  const port = await c.ready(1);
  let sock;
  t.after(() => sock?.destroy());
  const reply = await within(new Promise((resolve, reject) => {
    sock = net.connect(port, '127.0.0.1');
    let data = '';
    sock.on('data', (d) => {
      data += d;
      if (data.includes('plain')) {
        sock.destroy();
        resolve(data);
      }
    });
    sock.on('error', reject);
    sock.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n');
  }), 5000, 'an answer to the upgrade request');
  assert.match(reply, /^HTTP\/1\.1 200/);
});

test('a raw TCP connection is not cut by the drain; the worker exits once the client closes it', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'tcp.cjs'), '-w', '1', '--grace', '20000']);
  const port = await c.ready(1);
  const sock = net.connect(port, '127.0.0.1');
  t.after(() => sock.destroy());
  sock.setEncoding('utf8');
  const echo = (text) => within(new Promise((resolve) => sock.once('data', resolve)), 3000, `echo of ${text}`);
  let reply = echo('a');
  sock.write('a');
  assert.equal(await reply, 'a');
  c.signal('SIGTERM');
  await c.waitForLine(/stopping: draining 1 worker/);
  await new Promise((r) => setTimeout(r, 1500));
  reply = echo('b');
  sock.write('b');
  assert.equal(await reply, 'b', 'still served after 1.5 s of draining');
  const stoppedAt = Date.now();
  sock.end();
  assert.equal((await c.waitForExit(5000)).code, 0);
  assert.ok(Date.now() - stoppedAt < 3000);
});
