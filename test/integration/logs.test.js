// Logs as a newcomer meets them: `corral logs` from another terminal, JSON
// lines merged with the app's own (pino), timestamps, and a crash loop's
// trace shown once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, FIXTURES, get, runCli, startCorral, tempHome, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

test('corral logs --follow shows the recent lines, then a line a worker prints after it started', async (t) => {
  const dir = tempHome();
  const script = path.join(dir, 'echo.cjs');
  writeFileSync(script, `
const http = require('node:http');
const s = http.createServer((req, res) => { console.log('served ' + req.url); res.end('ok'); });
s.listen(0, '127.0.0.1', () => console.log('listening on ' + s.address().port));
`);
  const c = startCorral(t, [script, '-w', '1', '--name', 'tail']);
  const port = await c.ready(1);
  const follower = spawn(process.execPath, [CLI, 'logs', 'tail', '--follow', '-n', '20'], { env: { ...process.env, CORRAL_HOME: c.home }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => follower.kill('SIGKILL'));
  let out = '';
  follower.stdout.on('data', (d) => (out += d));
  await waitFor(() => /\[corral tail\] starting 1 worker of/.test(out) && /\[tail 0 \d+\] listening on \d+/.test(out), 5000, 'the recent lines');
  assert.doesNotMatch(out, /served \/after-follow/);
  await get(port, '/after-follow');
  await waitFor(() => /\[tail 0 \d+\] served \/after-follow\n/.test(out), 5000, `the new line; got:\n${out}`);
  const exited = new Promise((resolve) => follower.on('exit', (code) => resolve(code)));
  c.signal('SIGTERM');
  assert.equal(await exited, 0, 'the follower ends when the cluster stops');
  assert.match(out, /\[corral tail\] stopped \(exit code 0\)/);
});

test('corral logs -n keeps working when nobody reads the primary\'s stdout; --time adds timestamps', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--name', 'quiet', '--log-buffer', '50']);
  await c.ready(1);
  c.proc.stdout.destroy();
  const r = await runCli(['logs', '-n', '3', '--time'], { home: c.home });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3, r.stdout);
  for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(corral )?quiet/);
  const json = await runCli(['logs', '-n', '1', '--json'], { home: c.home });
  assert.deepEqual(Object.keys(JSON.parse(json.stdout)).sort(), ['app', 'level', 'msg', 'pid', 'source', 'time', 'worker']);
});

test('--log-time puts an ISO timestamp before every text line', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--name', 'stamp', '--log-time']);
  await c.waitForLine(/\[stamp 0 \d+\] listening on \d+$/);
  for (const l of c.lines.filter((x) => x !== '')) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[/, l);
});

test('--log-format json merges a pino line with corral\'s fields instead of wrapping it as a string', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'pino-app.cjs'), '-w', '1', '--name', 'pjson', '--log-format', 'json']);
  await c.waitForLine(/"msg":"listening on \d+"/);
  const port = Number(/listening on (\d+)/.exec(c.lines.find((l) => /"msg":"listening on \d+"/.test(l)))[1]);
  await new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, path: '/orders', headers: { 'x-req-id': '42' } }, (res) => res.resume().on('end', resolve)).on('error', reject));
  const line = await c.waitForLine(/"msg":"request served"/);
  const o = JSON.parse(line);
  assert.equal(o.level, 30, "pino's own level is kept");
  assert.equal(typeof o.time, 'number', "pino's own time is kept");
  assert.equal(o.url, '/orders');
  assert.equal(o.reqId, 42);
  assert.equal(o.app, 'pjson');
  assert.equal(o.worker, 0);
  assert.equal(o.source, 'worker');
  assert.equal(typeof o.pid, 'number');
  assert.equal(typeof o.hostname, 'string');
  const plain = JSON.parse(c.lines.find((l) => /"msg":"listening on \d+"/.test(l)));
  assert.equal(plain.level, 'info', 'a line that is not JSON stays msg');
});

test('a crash-looping worker: its trace is printed once, then "same error as the previous N crashes of slot 0"', async (t) => {
  const dir = tempHome();
  const script = path.join(dir, 'warmup.cjs');
  writeFileSync(script, `
const http = require('node:http');
const s = http.createServer((req, res) => res.end('ok'));
s.listen(0, '127.0.0.1', () => console.log('listening on ' + s.address().port));
setTimeout(() => { throw new Error('cache warm-up failed'); }, 200);
`);
  const c = startCorral(t, [script, '-w', '1', '--name', 'loop']);
  await c.waitForLine(/same error as the previous 3 crashes of slot 0; output not shown again/, 15000);
  const traces = c.lines.filter((l) => /^\[loop 0 \d+\] Error: cache warm-up failed$/.test(l));
  assert.equal(traces.length, 1, c.output);
  assert.match(c.output, /worker 0 \(pid \d+\) exited with code 1: Error: cache warm-up failed \(same error as the previous crash of slot 0; output not shown again\); restarting in \d+ ms/);
  const s = await runCli(['status', '--json'], { home: c.home });
  const status = JSON.parse(s.stdout);
  // Between two crashes the slot may be waiting out its back-off.
  assert.ok([...status.workers, ...status.waiting].every((w) => w.slot === 0 && w.restarts >= 4), s.stdout);
});
