// A newcomer's first hour with the CLI: help per command, PM2 habits,
// default names, the line after start, and `status --watch`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, FIXTURES, runCli, sleep, startCorral, tempHome, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

test('corral help <command> and <command> --help print its synopsis, options and an example', async () => {
  for (const args of [['help', 'reload'], ['reload', '--help']]) {
    const r = await runCli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: corral reload \[name\] \[--timeout <ms>\]/);
    assert.match(r.stdout, /Options:\n.*--timeout <ms>/);
    assert.match(r.stdout, /Examples?:\n {2}corral reload/);
  }
  const general = await runCli(['help']);
  assert.match(general.stdout, /corral logs \[name\]/);
  assert.match(general.stdout, /--watch\[=<paths>\]/);
  const bogus = await runCli(['help', 'frobnicate']);
  assert.equal(bogus.code, 2);
  assert.match(bogus.stderr, /^corral: unknown command "frobnicate"/);
});

test("a usage error ends with that command's usage line, not start's", async () => {
  const cases = [
    [['scale'], /^usage: corral scale \[name\] <n\|\+k\|-k>/],
    [['status', 'a', 'b'], /^usage: corral status \[name\]/],
    [['list', 'x'], /^usage: corral list/],
    [['logs', '-n', 'many'], /^usage: corral logs \[name\]/],
    [[APP, '--port', 'x'], /^usage: corral \[start\] <script>/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args, { home: tempHome() });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0], /^corral: /);
    assert.match(lines[1], re);
  }
});

test('an unknown verb is answered as a command, with what to use instead', async () => {
  const r = await runCli(['delete', 'web'], { home: tempHome() });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^corral: unknown command "delete"; use 'corral stop'.*Commands: start, status, reload, restart, scale, stop, list, logs, systemd, ls/);
  assert.doesNotMatch(r.stderr, /script not found/);
  const typo = await runCli(['sever.js'], { home: tempHome() });
  assert.match(typo.stderr, /script not found: sever\.js/, 'a file name is still a missing script');
});

test("PM2 habits: ls lists, restart says it is a rolling reload and does one, restart --hard replaces all at once", async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--name', 'habits', '--reload-verify', '0']);
  await c.ready(2);
  const ls = await runCli(['ls'], { home: c.home });
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^NAME\s+PID\s+STATE[\s\S]*\nhabits\s+\d+\s+running\s+2\/2/);
  const before = (await c.status()).workers.map((w) => w.pid);
  const restart = await runCli(['restart'], { home: c.home, timeout: 30000 });
  assert.equal(restart.code, 0, restart.stderr);
  assert.match(restart.stderr, /restart is a rolling reload \(zero downtime\); 'corral restart --hard' replaces every worker at once/);
  assert.match(restart.stdout, /habits: reloaded, every worker now runs generation 2/);
  const hard = await runCli(['restart', '--hard'], { home: c.home, timeout: 30000 });
  assert.equal(hard.code, 0, hard.stderr);
  assert.match(hard.stdout, /habits: restarted, every worker now runs generation 3/);
  await c.waitForLine(/hard restart to generation 3: draining all 2 workers and starting new ones at once/);
  const s = await c.status();
  assert.equal(s.totals.restarts, 0, 'reloads and restarts are not counted as restarts');
  assert.equal(s.reloads.succeeded, 2);
  assert.ok(s.workers.every((w) => !before.includes(w.pid)));
});

test("the default name is the nearest package.json's; without a name, commands pick the cluster of the current directory", async (t) => {
  const home = tempHome();
  const base = tempHome();
  const dirs = {};
  for (const project of ['shop', 'blog']) {
    const dir = path.join(base, project);
    mkdirSync(path.join(dir, 'src'), { recursive: true });
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `@acme/${project}`, private: true }));
    writeFileSync(path.join(dir, 'server.cjs'), `require(${JSON.stringify(APP)});\n`);
    dirs[project] = dir;
  }
  const shop = startCorral(t, ['server.cjs', '-w', '1'], { home, cwd: dirs.shop });
  const blog = startCorral(t, ['server.cjs', '-w', '1'], { home, cwd: dirs.blog });
  await shop.waitForLine(/\[corral acme-shop\] worker 0 \(pid \d+\) ready/);
  await blog.waitForLine(/\[corral acme-blog\] worker 0 \(pid \d+\) ready/);
  const inShop = await runCli(['status', '--json'], { home, cwd: path.join(dirs.shop, 'src') });
  assert.equal(inShop.code, 0, inShop.stderr);
  assert.equal(JSON.parse(inShop.stdout).name, 'acme-shop');
  const logs = await runCli(['logs', '-n', '50'], { home, cwd: dirs.blog });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /\[corral acme-blog\] starting 1 worker of/);
  const outside = await runCli(['status'], { home, cwd: base });
  assert.equal(outside.code, 2);
  assert.match(outside.stderr, /several clusters are running \(acme-blog, acme-shop\) and none of them runs from this directory/);
});

test('after start, one line says what to do next', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--name', 'next']);
  const line = await c.waitForLine(/running\. In another terminal/);
  assert.match(line, /^\[corral next\] running\. In another terminal: 'corral status next' \(also logs, reload, stop\); Ctrl-C stops gracefully, a second Ctrl-C forces$/);
});

test('status --watch refreshes until Ctrl-C: without a terminal, plain snapshots with no escape codes', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--name', 'top']);
  await c.ready(1);
  const child = spawn(process.execPath, [CLI, 'status', '--watch'], { env: { ...process.env, CORRAL_HOME: c.home }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await waitFor(() => (out.match(/^== /gm) ?? []).length >= 2, 5000, 'two snapshots');
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.kill('SIGINT');
  assert.deepEqual(await exited, { code: 0, signal: null });
  assert.match(out, /^== \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\ntop\s+running/m);
  assert.match(out, /total: 1 worker, [\d.]+ MiB RSS/);
  assert.doesNotMatch(out, /\x1b/, 'no escape codes without a terminal');
});

test('status --watch says when the cluster stops, and exits', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--name', 'gone']);
  await c.ready(1);
  const child = spawn(process.execPath, [CLI, 'status', 'gone', '--watch'], { env: { ...process.env, CORRAL_HOME: c.home }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await waitFor(() => out.includes('== '), 5000, 'a snapshot');
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  c.signal('SIGTERM');
  assert.equal(await Promise.race([exited, sleep(8000).then(() => 'still running')]), 0);
  assert.match(out, /gone: no longer running/);
});
