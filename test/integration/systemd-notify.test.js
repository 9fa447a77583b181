// Type=notify readiness, decided from a fake NOTIFY_SOCKET: a datagram
// receiver that records each message with its sender, as systemd sees it.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, ROOT, get, startCorral, tempHome, within } from '../helpers.js';
import { fakeManager, monotonicUsec, notifyToolsMissing } from '../fake-notify.js';

const APP = path.join(FIXTURES, 'app.cjs');
const why = notifyToolsMissing();
if (why) console.log(`# skipping the NOTIFY_SOCKET tests: ${why}`);

/** The worker reports whether it inherited NOTIFY_SOCKET (it must not). */
function appReportingNotifySocket(dir, app = APP) {
  const file = path.join(dir, 'server.cjs');
  writeFileSync(file, `process.env.FIXTURE_VERSION = process.env.NOTIFY_SOCKET ?? 'none';\nrequire(${JSON.stringify(app)});\n`);
  return file;
}

/**
 * corral and the app as another user can read them. The checkout may sit in
 * a directory only its owner can enter (`mktemp -d` makes those), so the
 * built package (dist, package.json and the one runtime dependency a plain
 * start loads) and the fixture app are copied to a world-readable directory;
 * so is node itself (CI's Node 22 and 24 are installed under `mktemp -d`).
 */
function installReadableCopy(dir) {
  const root = path.join(dir, 'corral');
  const node = path.join(dir, 'bin/node');
  cpSync(process.execPath, node);
  cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
  cpSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
  cpSync(path.join(ROOT, 'node_modules/valibot'), path.join(root, 'node_modules/valibot'), { recursive: true });
  cpSync(APP, path.join(dir, 'app.cjs'));
  execFileSync('chmod', ['-R', 'a+rX', root, path.join(dir, 'app.cjs'), path.dirname(node)]);
  return { node, cli: path.join(root, 'dist/cli/main.js'), app: path.join(dir, 'app.cjs') };
}

test('NOTIFY_SOCKET: READY=1 once all workers serve, RELOADING=1/READY=1 around a reload, STOPPING=1, from a sender systemd can attribute', { skip: why ?? false }, async (t) => {
  const dir = tempHome();
  const mgr = await fakeManager(t, dir);
  const c = startCorral(t, [appReportingNotifySocket(dir), '-w', '2', '--port', '0', '--name', 'svc'], { env: { NOTIFY_SOCKET: mgr.socket } });

  const ready = await mgr.next('READY');
  assert.equal((await c.status()).totals.ready, 2, 'READY=1 only once every worker is ready');
  assert.equal(mgr.field(ready, 'MAINPID'), String(c.pid));
  assert.ok(ready.pid === c.pid || ready.ppid === c.pid, `sender ${ready.pid} (parent ${ready.ppid}) is corral or its live child`);
  assert.match(mgr.field(ready, 'STATUS'), /^svc: 2\/2 workers ready, generation 1$/);
  const port = await c.ready(2);
  assert.equal(JSON.parse((await get(port, '/info')).body).version, 'none', 'workers do not inherit NOTIFY_SOCKET');

  const before = monotonicUsec();
  c.signal('SIGHUP');
  const reloading = await mgr.next('RELOADING');
  const usec = Number(mgr.field(reloading, 'MONOTONIC_USEC'));
  assert.ok(usec >= before && usec <= reloading.at, 'MONOTONIC_USEC is CLOCK_MONOTONIC at the reload');
  const reloaded = await mgr.next('READY', mgr.messages().indexOf(reloading));
  const s = await c.status();
  assert.equal(s.generation, 2);
  assert.ok(s.workers.every((w) => w.generation === 2 && w.state === 'ready'), 'READY=1 after the last old worker was replaced');
  assert.match(mgr.field(reloaded, 'STATUS'), /generation 2/);

  c.signal('SIGTERM');
  assert.equal((await c.waitForExit()).code, 0);
  await mgr.next('STOPPING');
  const kinds = mgr.messages().map((m) => ['READY', 'RELOADING', 'STOPPING'].find((k) => mgr.field(m, k) === '1'));
  assert.deepEqual(kinds, ['READY', 'RELOADING', 'READY', 'STOPPING']);
});

const NOBODY = 65534;
const whyNotAsNobody = why ?? (process.getuid?.() !== 0 ? 'running as another user needs root' : spawnSync('setpriv', ['--version']).error ? 'setpriv is not installed' : null);

test('NOTIFY_SOCKET as an unprivileged user: systemd-notify sends with its own pid, alive until the manager read it (so NotifyAccess=all works)', { skip: whyNotAsNobody ?? false }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corral-nobody-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const home = path.join(dir, 'home');
  mkdirSync(home, { mode: 0o700 });
  chownSync(home, NOBODY, NOBODY);
  const mgr = await fakeManager(t, dir);
  const copy = installReadableCopy(dir);
  const script = appReportingNotifySocket(dir, copy.app);
  const argv = ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', copy.node, copy.cli, script, '-w', '1', '--port', '0', '--name', 'nb'];
  const proc = spawn('setpriv', argv, { cwd: dir, env: { ...process.env, PWD: dir, CORRAL_HOME: home, HOME: dir, NOTIFY_SOCKET: mgr.socket }, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  t.after(() => proc.kill('SIGKILL'));

  const ready = await mgr.next('READY');
  assert.equal(ready.uid, NOBODY);
  assert.notEqual(ready.pid, proc.pid, 'an unprivileged systemd-notify cannot send as the primary');
  assert.equal(ready.ppid, proc.pid, 'the sender is the primary\'s child, still alive when the message is read');
  assert.equal(mgr.field(ready, 'MAINPID'), String(proc.pid));
  proc.kill('SIGTERM');
  assert.equal(await within(exited, 20000, 'corral to stop'), 0);
  await mgr.next('STOPPING');
});
