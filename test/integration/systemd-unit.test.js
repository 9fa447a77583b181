// `corral systemd` end to end, short of systemd itself: generate the unit in
// a symlinked release directory, then do what systemd would do with it: run
// ExecStart in WorkingDirectory with its Environment= (and a NOTIFY_SOCKET
// for Type=notify), ExecReload after the link moved, and SIGTERM to the main
// process only (KillMode=mixed), within TimeoutStopSec.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, get, runCli, startCorral, tempHome } from '../helpers.js';
import { execWords, parseUnit } from '../systemd-parse.js';
import { activate, release } from '../releases.js';
import { fakeManager, notifyToolsMissing } from '../fake-notify.js';

test('the generated unit runs the app, reloads into the release the link points to, and drains on SIGTERM to its main pid', async (t) => {
  const root = realpathSync(tempHome());
  release(root, 'v1');
  release(root, 'v2');
  activate(root, 'v1');
  const current = path.join(root, 'current');
  const gen = await runCli(['systemd', 'web', '--', 'server.cjs', '-w', '2', '--port', '0', '--grace', '5s'], { cwd: current, env: { PWD: current } });
  assert.equal(gen.code, 0, gen.stderr);
  const unit = parseUnit(gen.stdout).Service;
  assert.deepEqual(unit.WorkingDirectory, [current], 'the symlinked path, not the release it points to');
  const argv = execWords(unit.ExecStart[0]);
  assert.deepEqual(argv.slice(0, 4), [process.execPath, CLI, 'start', path.join(current, 'server.cjs')]);

  const env = Object.fromEntries(unit.Environment.flatMap(execWords).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const notify = unit.Type[0] === 'notify' && !notifyToolsMissing();
  const mgr = notify ? await fakeManager(t, tempHome()) : null;
  if (mgr) env.NOTIFY_SOCKET = mgr.socket;
  const c = startCorral(t, argv.slice(2), { cwd: unit.WorkingDirectory[0], env });
  if (mgr) await mgr.next('READY');
  const port = await c.ready(2);
  assert.equal(JSON.parse((await get(port, '/info')).body).version, 'v1');

  activate(root, 'v2');
  const reload = execWords(unit.ExecReload[0].replace('$MAINPID', String(c.pid)));
  assert.equal(spawnSync(reload[0], reload.slice(1)).status, 0);
  if (mgr) await mgr.next('READY', mgr.messages().indexOf(await mgr.next('RELOADING')));
  else await c.waitForLine(/reload to generation 2 complete/, 20000);
  for (let i = 0; i < 4; i++) assert.equal(JSON.parse((await get(port, '/info')).body).version, 'v2');

  const slow = get(port, '/slow?ms=1000');
  await new Promise((r) => setTimeout(r, 200));
  const stopAt = Date.now();
  c.signal('SIGTERM');
  assert.equal((await slow).status, 200);
  assert.equal((await c.waitForExit(Number(unit.TimeoutStopSec[0]) * 1000)).code, 0);
  assert.ok(Date.now() - stopAt < Number(unit.TimeoutStopSec[0]) * 1000);
});
