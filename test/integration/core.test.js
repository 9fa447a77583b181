import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, ROOT, alive, freePort, get, load, runCli, sleep, startCorral, tempHome, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');
const HELLO = path.join(ROOT, 'examples/hello/server.js');

/** Requests that each keep a worker busy, so the kernel must hand new connections to the other. */
async function pidsSeen(port, want, tries = 40) {
  const pids = new Set();
  for (let i = 0; i < tries && pids.size < want; i++) {
    const batch = await Promise.all(Array.from({ length: 4 }, () => get(port, '/busy?ms=30')));
    for (const r of batch) pids.add(r.body.trim());
  }
  return pids;
}

test('the seed-style example (it checks cluster.isMaster itself) serves from 2 distinct pids', async (t) => {
  const c = startCorral(t, [HELLO, '-w', '2', '--port', '0']);
  const port = await c.ready(2);
  const pids = new Set();
  for (let i = 0; i < 200 && pids.size < 2; i++) {
    const rs = await Promise.all(Array.from({ length: 8 }, () => get(port, '/')));
    for (const r of rs) pids.add(/pid (\d+)/.exec(r.body)[1]);
  }
  assert.equal(pids.size, 2, `expected answers from 2 pids, got ${[...pids]}`);
});

test('a worker runs the script as plain node would: argv, cwd, require.main, env', async (t) => {
  const cwd = tempHome();
  const c = startCorral(t, [APP, '-w', '1', '--name', 'web', '--', '--verbose', 'x'], { cwd });
  const port = await c.ready(1);
  const info = JSON.parse((await get(port, '/info')).body);
  assert.deepEqual(info.argv, ['--verbose', 'x']);
  assert.equal(info.argv1, APP);
  assert.equal(info.cwd, cwd);
  assert.equal(info.isMain, true);
  assert.equal(info.workerId, '0');
  assert.equal(info.workers, '1');
  assert.match(c.output, /^\[web 0 \d+\] listening on \d+$/m);
});

test('an ESM app works in cluster mode', async (t) => {
  const dir = tempHome();
  const file = path.join(dir, 'server.mjs');
  writeFileSync(file, `import http from 'node:http';\nconst s = http.createServer((q, r) => r.end('esm ' + import.meta.url.length));\ns.listen(0, '127.0.0.1', () => console.log('listening on ' + s.address().port));\n`);
  const c = startCorral(t, [file, '-w', '2']);
  const port = await c.ready(2);
  assert.match((await get(port, '/')).body, /^esm \d+$/);
});

test('--port sets PORT for every worker', async (t) => {
  const probe = await freePort();
  const c = startCorral(t, [APP, '-w', '2', '--port', String(probe)]);
  const port = await c.ready(2);
  assert.equal(port, probe);
  assert.equal(JSON.parse((await get(port, '/info')).body).port, String(probe));
});

test('kill -9 of a worker: a new pid serves within 2 s and the other worker never fails', async (t) => {
  const c = startCorral(t, [APP, '-w', '2']);
  const port = await c.ready(2);
  const before = (await c.status()).workers.map((w) => w.pid);
  assert.equal(before.length, 2);
  const [victim, survivor] = before;
  const traffic = load(port, { concurrency: 4, keepAlive: false, maxMs: 20000 });
  await sleep(200);
  process.kill(victim, 'SIGKILL');
  const killedAt = Date.now();
  const fresh = await waitFor(async () => {
    const s = await c.status();
    const w = s.workers.find((x) => x.slot === 0 && x.state === 'ready' && x.pid !== victim);
    return w?.pid;
  }, 2000, 'a replacement worker in slot 0');
  assert.ok(Date.now() - killedAt < 2000);
  assert.notEqual(fresh, survivor);
  await waitFor(async () => (await pidsSeen(port, 2)).has(String(fresh)), 5000, 'the new worker to answer');
  const stats = await traffic.stop();
  assert.ok(stats.pids.has(String(survivor)));
  // Connections the dead worker had accepted may fail; those to the survivor must not.
  assert.match(c.output, new RegExp(`worker 0 \\(pid ${victim}\\) was killed by SIGKILL; restarting now`));
});

test('SIGTERM while a 2 s request is in flight: it completes with 200, corral exits 0, nothing remains', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--grace', '8000']);
  const port = await c.ready(2);
  const workers = (await c.status()).workers.map((w) => w.pid);
  const slow = get(port, '/slow?ms=2000');
  await sleep(300);
  const sentAt = Date.now();
  c.signal('SIGTERM');
  const res = await slow;
  assert.equal(res.status, 200);
  assert.match(res.body, /^slow \d+$/);
  const { code } = await c.waitForExit(8000);
  assert.equal(code, 0);
  assert.ok(Date.now() - sentAt < 8000);
  for (const pid of workers) assert.equal(alive(pid), false, `worker ${pid} still alive`);
});

test('a keep-alive response sent while draining carries Connection: close', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--grace', '8000']);
  const port = await c.ready(1);
  const http = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const first = await get(port, '/', { agent });
  assert.equal(first.headers.connection, 'keep-alive');
  const slow = get(port, '/slow?ms=800', { agent });
  await sleep(200);
  c.signal('SIGTERM');
  const res = await slow;
  assert.equal(res.status, 200);
  assert.equal(res.headers.connection, 'close');
  assert.equal((await c.waitForExit(8000)).code, 0);
});

test('a script that throws at boot: non-zero exit within 10 s, its error shown once', async (t) => {
  const c = startCorral(t, [APP, '-w', '4'], { env: { FIXTURE_BOOT: 'throw' } });
  const { code } = await c.waitForExit(10000);
  assert.equal(code, 1);
  assert.match(c.output, /the app cannot start: Error: fixture refused to boot/);
  const traces = c.lines.filter((l) => /\] Error: fixture refused to boot$/.test(l));
  assert.equal(traces.length, 1, `stack trace printed ${traces.length} times`);
  for (const pid of c.workerPids) if (pid !== c.pid) assert.equal(alive(pid), false);
});

test('a syntax error and EADDRINUSE are both named', async (t) => {
  const dir = tempHome();
  const bad = path.join(dir, 'bad.js');
  writeFileSync(bad, 'const x = ;\n');
  const c1 = startCorral(t, [bad, '-w', '2']);
  assert.equal((await c1.waitForExit(10000)).code, 1);
  assert.match(c1.output, /the app cannot start: SyntaxError: Unexpected token/);

  const net = await import('node:net');
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  t.after(() => blocker.close());
  const c2 = startCorral(t, [APP, '-w', '2', '--port', String(blocker.address().port)]);
  assert.equal((await c2.waitForExit(10000)).code, 1);
  assert.match(c2.output, new RegExp(`the app cannot start: port ${blocker.address().port} is already in use \\(by another process\\)`));
});

test('a worker that never becomes ready is killed at --boot-timeout and counts as a failed start', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--boot-timeout', '300'], { env: { FIXTURE_BOOT: 'hang' } });
  assert.equal((await c.waitForExit(10000)).code, 1);
  assert.match(c.output, /did not become ready within 300 ms; killing it/);
  assert.match(c.output, /the app cannot start: did not become ready within 300 ms \(--boot-timeout\): it neither listened nor called worker\.ready\(\)/);
  assert.doesNotMatch(c.output, /killed by SIGKILL/);
});

test('after the cluster has served, crashes back off instead of stopping it', async (t) => {
  const c = startCorral(t, [APP, '-w', '2']);
  const port = await c.ready(2);
  for (let i = 0; i < 3; i++) {
    const pids = (await c.status()).workers.filter((w) => w.slot === 0 && w.state === 'ready').map((w) => w.pid);
    process.kill(pids[0], 'SIGKILL');
    await waitFor(async () => (await c.status()).workers.some((w) => w.slot === 0 && w.state === 'ready' && !pids.includes(w.pid)), 5000, 'respawn');
  }
  assert.match(c.output, /restarting in \d+ ms/);
  assert.equal((await get(port, '/')).status, 200);
  assert.equal(c.proc.exitCode, null);
});

test('if the primary is killed with SIGKILL its workers exit too', async (t) => {
  const c = startCorral(t, [APP, '-w', '2']);
  await c.ready(2);
  const workers = (await c.status()).workers.map((w) => w.pid);
  c.signal('SIGKILL');
  await waitFor(() => workers.every((pid) => !alive(pid)), 5000, 'orphaned workers to exit');
});

test('--log-format json prints one object per line; --no-prefix prints bare lines', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--log-format', 'json', '--name', 'j']);
  await c.waitForLine(/"msg":"listening on \d+"/);
  const objs = c.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const worker = objs.find((o) => o.source === 'worker');
  assert.deepEqual(Object.keys(worker).sort(), ['app', 'level', 'msg', 'pid', 'source', 'time', 'worker']);
  assert.equal(worker.worker, 0);
  assert.ok(objs.some((o) => o.source === 'corral'));

  const c2 = startCorral(t, [APP, '-w', '1', '--no-prefix']);
  await c2.waitForLine(/^listening on \d+$/);
});

test('two workers writing at once never share a line', async (t) => {
  const dir = tempHome();
  const file = path.join(dir, 'chatty.cjs');
  writeFileSync(file, `
const line = 'w' + process.env.CORRAL_WORKER_ID + ':' + 'x'.repeat(5000);
for (let i = 0; i < 200; i++) process.stdout.write(line.slice(0, 2500)), process.stdout.write(line.slice(2500) + '\\n');
require('node:http').createServer().listen(0, '127.0.0.1');
`);
  const c = startCorral(t, [file, '-w', '2', '--name', 'chatty']);
  await waitFor(() => c.lines.filter((l) => /\] w\d:/.test(l)).length >= 400, 10000, '400 lines');
  for (const l of c.lines.filter((x) => /\] w\d:/.test(x))) {
    assert.match(l, /^\[chatty (\d) \d+\] w\1:x{5000}$/);
  }
});

test('bad CLI input exits 2 with a one-line error', async () => {
  const openHome = tempHome();
  chmodSync(openHome, 0o777);
  const cases = [
    [[path.join(FIXTURES, 'app.cjs'), '--home', '/proc/no-such/dir'], /cannot create the control directory \/proc\/no-such\/dir/],
    [[path.join(FIXTURES, 'app.cjs'), '--home', openHome], /is open to other users \(mode 777\); run: chmod 700/],
    [['-w', '0', path.join(FIXTURES, 'app.cjs')], /--workers must be a positive integer or "auto", got "0"/],
    [['-w', 'four', path.join(FIXTURES, 'app.cjs')], /--workers must be a positive integer/],
    [['-w', '-3', path.join(FIXTURES, 'app.cjs')], /--workers|unknown option/],
    [['no-such-file.js'], /script not found: no-such-file\.js/],
    [[FIXTURES], /is a directory/],
    [[path.join(FIXTURES, 'app.cjs'), '--bogus'], /unknown option --bogus/],
    [[path.join(FIXTURES, 'app.cjs'), '--strategy', 'magic'], /--strategy must be one of auto, rr, os, reuseport/],
    [[path.join(FIXTURES, 'app.cjs'), '--max-memory', 'lots'], /--max-memory must be a size/],
    [[], /no script given/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args, { home: tempHome() });
    assert.equal(r.code, 2, `corral ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0], re);
    assert.match(r.stderr.split('\n')[0], /^corral: /);
  }
});

test('--help and --version', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /corral \[start\] <script> \[options\]/);
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^corral \d+\.\d+\.\d+/);
});

test('a second SIGINT stops at once, without waiting for the drain', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--grace', '20000']);
  const port = await c.ready(1);
  const worker = (await c.status()).workers[0].pid;
  const slow = get(port, '/slow?ms=15000').catch((err) => err);
  await sleep(200);
  c.signal('SIGINT');
  await c.waitForLine(/stopping: draining 1 worker/);
  c.signal('SIGINT');
  const started = Date.now();
  const { code } = await c.waitForExit(5000);
  assert.equal(code, 130);
  assert.ok(Date.now() - started < 5000);
  assert.equal(alive(worker), false);
  await slow;
});

test('--strategy reuseport: refused with the Node version needed, or serving from every worker', async (t) => {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 12)) {
    const r = await runCli([APP, '--strategy', 'reuseport'], { home: tempHome() });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--strategy reuseport needs Node >= 22\.12/);
    return;
  }
  const c = startCorral(t, [APP, '-w', '2', '--strategy', 'reuseport', '--port', String(await freePort())]);
  const port = await c.ready(2);
  assert.equal((await pidsSeen(port, 2)).size, 2);
  assert.match(c.output, /starting 2 workers of .* \(strategy reuseport\)/);
});
