// The supervisor under faults that happen in real deployments: a fork that
// cannot happen, a stop while a worker boots, a frozen primary, a signal to
// the whole group, user code that throws in the primary, dead log readers,
// a vanished terminal. Tests that signal more than one pid run only inside
// a fresh PID namespace.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, FIXTURES, ROOT, alive, freePort, get, runCli, sleep, startCorral, tempHome, waitFor, within } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
const NO_UNSHARE = 'needs root and unshare(1) to run inside a fresh PID namespace';

/** Run a fixture as PID 1 of a new PID namespace; resolves with the JSON line it prints. */
function inPidNamespace(t, fixture, env = {}) {
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', process.execPath, path.join(FIXTURES, fixture)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => alive(child.pid) && process.kill(child.pid, 'SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return within(new Promise((resolve) => child.on('exit', () => resolve(out))), 40000, fixture).then((text) => {
    const line = text.split('\n').find((l) => l.startsWith('{'));
    assert.ok(line, `no result from ${fixture}:\n${text}`);
    return JSON.parse(line);
  });
}

test('a fork that fails (release directory deleted) signals nobody: a bystander, the other worker and the primary live on', { skip: !canUnshare && NO_UNSHARE }, async (t) => {
  const r = await inPidNamespace(t, 'ns-failed-fork.mjs');
  assert.equal(r.error, undefined, r.error);
  assert.equal(r.bystanderAlive, true, 'an unrelated process in the namespace was killed');
  assert.equal(r.survivorAlive, true, 'the other worker was killed');
  assert.equal(r.primaryAlive, true, 'the primary was killed');
  assert.match(r.line, /cannot start worker \d: spawn ENOENT \(cwd \S+ no longer exists\)/);
  assert.equal(r.served, r.survivor, 'the other worker kept serving');
  assert.equal(r.status.state, 'running');
  assert.ok(r.status.waiting.length === 1 || r.status.workers.length === 1, 'the slot waits out its back-off');
});

test('stop while a replacement boots: it is ended at once, the stop takes the drain time, exit 0', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--grace', '10000'], { env: { FIXTURE_BOOT: 'slow:1500' } });
  await c.ready(2);
  const [victim] = (await c.status()).workers.map((w) => w.pid);
  process.kill(victim, 'SIGKILL');
  await c.waitForLine(new RegExp(`pid ${victim}\\) was killed by SIGKILL; restarting now`));
  const sentAt = Date.now();
  c.signal('SIGTERM');
  const { code } = await c.waitForExit(8000);
  assert.equal(code, 0, c.output);
  assert.ok(Date.now() - sentAt < 4000, `the stop took ${Date.now() - sentAt} ms`);
  assert.doesNotMatch(c.output, /grace period|sending SIGTERM/);
});

test('a frozen primary (SIGSTOP 4 s, --watchdog 2000) kills no healthy worker when it resumes', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--watchdog', '2000']);
  const port = await c.ready(2);
  const before = (await c.status()).workers.map((w) => w.pid).sort();
  c.signal('SIGSTOP');
  await sleep(4000);
  c.signal('SIGCONT');
  await sleep(2500);
  assert.doesNotMatch(c.output, /unresponsive/);
  assert.deepEqual((await c.status()).workers.map((w) => w.pid).sort(), before);
  assert.equal((await get(port, '/')).status, 200);
});

test('SIGTERM to the primary and every worker at once (systemd control-group): the in-flight request finishes, exit 0', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--grace', '8000']);
  const port = await c.ready(2);
  const workers = (await c.status()).workers.map((w) => w.pid);
  const slow = get(port, '/slow?ms=2000');
  await sleep(300);
  for (const pid of [c.pid, ...workers]) process.kill(pid, 'SIGTERM');
  const res = await slow;
  assert.equal(res.status, 200);
  assert.match(res.body, /^slow \d+$/);
  const { code } = await c.waitForExit(8000);
  assert.equal(code, 0, c.output);
  for (const pid of workers) assert.equal(alive(pid), false);
});

test('an app with its own SIGTERM handler keeps it; the request in flight still finishes', async (t) => {
  const home = tempHome();
  const log = path.join(home, 'signals.log');
  writeFileSync(log, '');
  const c = startCorral(t, [path.join(FIXTURES, 'own-signals.cjs'), '-w', '1', '--grace', '8000'], { env: { SIGNAL_LOG: log } });
  const port = await c.ready(1);
  const [worker] = (await c.status()).workers.map((w) => w.pid);
  const slow = get(port, '/?ms=1500');
  await sleep(300);
  for (const pid of [c.pid, worker]) process.kill(pid, 'SIGTERM');
  assert.equal((await slow).status, 200);
  assert.equal((await c.waitForExit(8000)).code, 0, c.output);
  assert.equal(readFileSync(log, 'utf8').trim(), `${worker} SIGTERM`);
});

test('kill -TERM of one worker: it drains and is replaced, the others untouched', async (t) => {
  const c = startCorral(t, [APP, '-w', '2']);
  const port = await c.ready(2);
  const [victim, other] = (await c.status()).workers.map((w) => w.pid);
  const slow = get(port, '/slow?ms=1000');
  await sleep(100);
  process.kill(victim, 'SIGTERM');
  await c.waitForLine(new RegExp(`pid ${victim}\\) received SIGTERM and is draining; replacing it`));
  assert.equal((await slow).status, 200);
  await waitFor(async () => {
    const s = await c.status();
    return s.workers.filter((w) => w.state === 'ready').length === 2 && !s.workers.some((w) => w.pid === victim);
  }, 8000, 'a replacement for the signalled worker');
  const s = await c.status();
  assert.ok(s.workers.some((w) => w.pid === other));
  assert.equal(s.workers.reduce((n, w) => n + (w.restartReasons.signal ?? 0), 0), 1);
});

test('the escalation after --grace still ends a worker that will not finish: SIGTERM then exit 1', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--grace', '1500']);
  const port = await c.ready(1);
  const [worker] = (await c.status()).workers.map((w) => w.pid);
  const stuck = get(port, '/slow?ms=30000').catch((err) => err);
  await sleep(200);
  const sentAt = Date.now();
  c.signal('SIGTERM');
  const { code } = await c.waitForExit(8000);
  assert.equal(code, 1);
  assert.ok(Date.now() - sentAt < 1500 + 2500, 'ended by the SIGTERM, not by the SIGKILL 3 s later');
  assert.match(c.output, new RegExp(`pid ${worker}\\) stopped \\(killed, was killed by SIGTERM\\)`));
  await stuck;
});

test('workers run in their own session and process group; Ctrl-C reaches only the primary', { skip: !canUnshare && NO_UNSHARE }, async (t) => {
  const r = await inPidNamespace(t, 'ns-terminal-signal.mjs');
  assert.equal(r.error, undefined, r.error);
  const [primaryGroup, ...workerGroups] = r.groups;
  for (const g of workerGroups) assert.notEqual(g, primaryGroup, 'a worker shares the terminal\'s process group');
  assert.equal(r.status, 200, 'the request in flight finished');
  assert.deepEqual(r.exit, { code: 0, signal: null }, r.output);
  assert.equal(r.appHandlers, '', 'the app\'s own SIGINT handler ran in a worker');
});

for (const mode of ['option', 'late']) {
  test(`user code in the primary: a throwing listener is logged once; requests at boot wait for a handler (${mode})`, async (t) => {
    const child = spawn(process.execPath, [path.join(FIXTURES, 'user-code-driver.mjs')], {
      cwd: ROOT,
      env: { ...process.env, CORRAL_HOME: tempHome(), SCRIPT: path.join(FIXTURES, 'request-at-boot.mjs'), PORT: String(await freePort()), MODE: mode, WAIT_FOR_CONFIG: mode === 'option' ? '1' : '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pids = new Set();
    t.after(() => {
      for (const pid of [child.pid, ...pids]) try { process.kill(pid, 'SIGKILL'); } catch {}
    });
    const steps = {};
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      for (const line of String(d).split('\n')) {
        for (const m of line.matchAll(/"pid":(\d+)/g)) pids.add(Number(m[1]));
        if (line.startsWith('{"step"')) steps[JSON.parse(line).step] = JSON.parse(line);
      }
    });
    child.stderr.on('data', (d) => (out += d));
    await waitFor(() => steps.stopped, 30000, `the driver to finish; output:\n${out}`);
    assert.deepEqual(steps.answered.body.config.from, mode);
    assert.equal(steps['after-kill'].ready, 2);
    assert.equal(steps['after-kill'].userErrors, 1);
    assert.equal(steps.stopped.code, 0);
    assert.equal((out.match(/'worker:exit' listener threw/g) ?? []).length, 1, out);
    assert.doesNotMatch(out, /E_NO_HANDLER|failed to start/);
  });
}

test('worker counts beyond 4 per usable CPU are refused without --force', async (t) => {
  const r = await runCli([APP, '-w', '100000'], { home: tempHome() });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^corral: --workers 100000 is more than \d+ \(4 per usable CPU, \d+ usable\); use --force/);
  const c = startCorral(t, [APP, '-w', '1', '--name', 'cap']);
  await c.ready(1);
  const s = await runCli(['scale', 'cap', '100000'], { home: c.home });
  assert.equal(s.code, 2);
  assert.match(s.stderr, /cannot scale to 100000 workers: more than \d+.*--force/);
  assert.equal((await c.status()).desired, 1);
});

test('a closed stdout (corral app | head -2) does not stop the service; dropped lines are counted', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'chatty.cjs'), '-w', '2', '--port', String(await freePort())]);
  await c.ready(2);
  c.proc.stdout.destroy(); // the reader is gone, as when head exits
  await sleep(1000);
  const port = c.port;
  assert.equal((await get(port, '/')).status, 200);
  const s = await c.status();
  assert.equal(s.totals.ready, 2);
  assert.ok(s.logLinesDropped > 0);
  await c.waitForLine(/stdout is closed \(EPIPE\); its lines are dropped from now on/);
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(8000)).code, 0);
});

test('a stalled log reader: lines are dropped after 2 s, the cluster stays responsive, the gap is reported', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'chatty.cjs'), '-w', '1']);
  const port = await c.ready(1);
  c.proc.stdout.pause();
  await sleep(4000);
  const started = Date.now();
  assert.equal((await get(port, '/')).status, 200);
  assert.ok((await c.status()).logLinesDropped > 0);
  assert.ok(Date.now() - started < 2000);
  c.proc.stdout.resume();
  await c.waitForLine(/\d+ log lines dropped while stdout was blocked for \d+\.\d s/, 10000);
});

test('closing the terminal (SIGHUP from a vanished tty) stops cleanly: exit 0, socket removed, workers gone', { skip: !existsSync('/usr/bin/script') && 'needs script(1) for a pseudo-terminal' }, async (t) => {
  const home = tempHome();
  const cmd = [process.execPath, CLI, APP, '-w', '2', '--name', 'tty'].map((a) => `'${a}'`).join(' ');
  const term = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, CORRAL_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => alive(term.pid) && process.kill(term.pid, 'SIGKILL'));
  let out = '';
  term.stdout.on('data', (d) => (out += d));
  await waitFor(() => (out.match(/ready in \d+ ms/g) ?? []).length >= 2, 10000, 'two workers in the terminal');
  const status = JSON.parse((await runCli(['status', 'tty', '--json'], { home })).stdout);
  const pids = [status.pid, ...status.workers.map((w) => w.pid)];
  t.after(() => pids.forEach((p) => alive(p) && process.kill(p, 'SIGKILL')));
  process.kill(term.pid, 'SIGKILL'); // the terminal window closes
  await waitFor(() => pids.every((p) => !alive(p)), 10000, 'the primary and its workers to exit');
  assert.equal(existsSync(path.join(home, 'tty.sock')), false, 'stale control socket left behind');
});

test('corral stop returns the primary\'s verdict: 1 when a worker had to be killed', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--grace', '500', '--name', 'verdict']);
  const port = await c.ready(1);
  const stuck = get(port, '/slow?ms=30000').catch((err) => err);
  await sleep(200);
  const r = await runCli(['stop', 'verdict'], { home: c.home });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /verdict: stopped \(exit code 1/);
  assert.equal((await c.waitForExit(5000)).code, 1);
  await stuck;
});
