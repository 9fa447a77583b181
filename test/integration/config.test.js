import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, freePort, get, runCli, startCorral, tempHome, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

function configDir(config, name = 'corral.config.json') {
  const dir = tempHome();
  writeFileSync(path.join(dir, name), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

const runIn = (dir, args) => runCli(args, { cwd: dir, home: path.join(dir, 'home') });

test('a config file with a mistake: exit 2 naming the key path, what was expected and what was given', async () => {
  const cases = [
    [{ apps: [{ script: APP, workers: 'four' }] }, 'corral.config.json: apps[0].workers must be a positive integer or "auto", got "four"'],
    [{ apps: [{ script: APP, wrokers: 2 }] }, /apps\[0\]\.wrokers: unknown key; did you mean apps\[0\]\.workers\? \(known: script, .*workers/],
    [{ apps: [{ script: APP }, { script: APP, port: 70000 }] }, 'corral.config.json: apps[1].port must be a port number (0-65535), got 70000'],
    [{ apps: [{ workers: 2 }] }, 'corral.config.json: apps[0].script is required: the server file to run, e.g. "script": "server.js"'],
    [{ apps: [] }, /apps must be an array of at least one app/],
    [{ script: APP, grace: 'soon' }, 'corral.config.json: grace must be a duration in ms (or with s/m, e.g. "10s"), got "soon"'],
    [{ script: 'missing.js' }, /^corral: corral\.config\.json: script not found: missing\.js/],
    [{ apps: [{ script: 'missing.js' }] }, /apps\[0\]: script not found: missing\.js/],
    ['{ "apps": [ ', /not valid JSON/],
  ];
  for (const [config, expected] of cases) {
    const r = await runIn(configDir(config), []);
    assert.equal(r.code, 2, r.stderr);
    const first = r.stderr.split('\n')[0];
    if (typeof expected === 'string') assert.equal(first, `corral: ${expected}`);
    else assert.match(first, expected);
  }
});

test('several apps from one config file run under one primary; status lists them; flags override the file', async (t) => {
  const [portA, portB] = [await freePort(), await freePort()];
  const dir = configDir(
    `export default { apps: [
      { name: 'api', script: ${JSON.stringify(APP)}, workers: 2, port: ${portA}, env: { FIXTURE_VERSION: 'api' } },
      { name: 'admin', script: ${JSON.stringify(APP)}, workers: 2, port: ${portB}, env: { FIXTURE_VERSION: 'admin' }, grace: '2s' },
    ] };\n`,
    'corral.config.mjs',
  );
  const c = startCorral(t, ['start', '-w', '1'], { cwd: dir, home: path.join(dir, 'home') });
  await waitFor(() => c.lines.filter((l) => /ready in/.test(l)).length >= 2, 15000, 'both apps ready');
  assert.equal(JSON.parse((await get(portA, '/info')).body).version, 'api');
  assert.equal(JSON.parse((await get(portB, '/info')).body).version, 'admin');
  const r = await runCli(['status', '--json'], { home: path.join(dir, 'home') });
  assert.equal(r.code, 0, r.stderr);
  const statuses = JSON.parse(r.stdout);
  assert.deepEqual(statuses.map((s) => s.name).sort(), ['admin', 'api']);
  assert.ok(statuses.every((s) => s.pid === c.pid), 'one primary');
  assert.ok(statuses.every((s) => s.desired === 1), '-w 1 overrides the file');
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(10000)).code, 0);
});

test('--config names the file; a script and --config together are refused', async (t) => {
  const dir = configDir({ apps: [{ name: 'cfg', script: APP, workers: 1 }] }, 'my-config.json');
  const c = startCorral(t, ['--config', path.join(dir, 'my-config.json')], { home: path.join(dir, 'home') });
  await c.waitForLine(/\[corral cfg\] worker 0 \(pid \d+\) ready/);
  const r = await runCli([APP, '--config', path.join(dir, 'my-config.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /either a script .* or --config, not both/);
});

test('no script and no config file: exit 2 saying both', async () => {
  const r = await runIn(tempHome(), []);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no script given and no corral\.config\.json/);
});
