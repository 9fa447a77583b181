// Development mode and the primary's half of the worker API: --watch,
// --env-file, --node-arg, single-app config files, --handlers, and the hint
// for scripts that never listen.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, freePort, get, load, sleep, startCorral, tempHome, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');

function writeVersion(file, version, extra = '') {
  writeFileSync(file, `${extra}\nprocess.env.FIXTURE_VERSION = ${JSON.stringify(version)};\nrequire(${JSON.stringify(APP)});\n`);
}

async function versions(port, n = 6) {
  const seen = new Set();
  for (let i = 0; i < n; i++) seen.add(JSON.parse((await get(port, '/info')).body).version);
  return [...seen];
}

test('--watch under load: a good save reloads, a broken save is refused (old workers serve, error shown once), the next good save reloads; 0 failed requests', async (t) => {
  const dir = tempHome();
  const script = path.join(dir, 'server.cjs');
  writeVersion(script, 'v1');
  const c = startCorral(t, ['server.cjs', '--watch', '-w', '2', '--name', 'dev', '--reload-verify', '300', '--port', String(await freePort())], { cwd: dir });
  const port = await c.ready(2);
  await c.waitForLine(/watching \. for changes/);
  const traffic = load(port, { concurrency: 4, keepAlive: true, maxMs: 60000 });
  try {
    writeVersion(script, 'v2');
    await c.waitForLine(/reload to generation 2 complete/, 20000);
    assert.deepEqual(await versions(port), ['v2']);

    writeVersion(script, 'v3', "throw new Error('broken save');");
    await c.waitForLine(/watch: the new code was refused; the old workers keep serving/, 20000);
    assert.deepEqual(await versions(port), ['v2'], 'the old workers keep serving');
    assert.equal(c.lines.filter((l) => /^\[dev \d \d+\] Error: broken save$/.test(l)).length, 1, c.output);

    writeVersion(script, 'v4');
    await c.waitForLine(/reload to generation 4 complete/, 20000);
    assert.deepEqual(await versions(port), ['v4']);
  } finally {
    const stats = await traffic.stop();
    assert.equal(stats.failed, 0, `failed requests: ${stats.errors.slice(0, 5).join(', ')}`);
    assert.ok(stats.ok > 50, `only ${stats.ok} requests`);
  }
  assert.match(c.output, /watch: server\.cjs changed; reloading/);
  assert.deepEqual(c.lines.filter((l) => /reload to generation \d+ (complete|failed)/.test(l)).map((l) => /generation (\d+) (\w+)/.exec(l).slice(1).join(' ')), ['2 complete', '3 failed', '4 complete'], 'one reload per save');
});

test('--watch ignores node_modules and --watch-ignore patterns', async (t) => {
  const dir = tempHome();
  const script = path.join(dir, 'server.cjs');
  writeVersion(script, 'v1');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(path.join(dir, 'node_modules', 'dep'), { recursive: true });
  const c = startCorral(t, ['server.cjs', '--watch', '--watch-ignore', '*.md', '-w', '1', '--name', 'quietwatch'], { cwd: dir });
  await c.ready(1);
  await c.waitForLine(/watching \. for changes/);
  writeFileSync(path.join(dir, 'node_modules', 'dep', 'index.js'), 'module.exports = 1;\n');
  writeFileSync(path.join(dir, 'NOTES.md'), '# notes\n');
  writeFileSync(path.join(dir, 'debug.log'), 'x\n');
  await sleep(1200);
  assert.doesNotMatch(c.output, /changed; reloading/);
  writeFileSync(path.join(dir, 'lib.js'), 'module.exports = 2;\n');
  await c.waitForLine(/watch: lib\.js changed; reloading/, 5000);
});

test("--env-file (Node's syntax, later files win, the shell's own variables and -e win over files) and --node-arg reach the workers", async (t) => {
  const dir = tempHome();
  writeFileSync(path.join(dir, '.env'), '# settings\nGREETING="hello world"\nSHARED=from-env\nFROM_SHELL=file\nMULTI="a\nb"\n');
  writeFileSync(path.join(dir, '.env.local'), 'SHARED=from-local\n');
  writeFileSync(path.join(dir, 'env.cjs'), `
const http = require('node:http');
const pick = ['GREETING', 'SHARED', 'FROM_SHELL', 'FROM_FLAG', 'MULTI'];
const s = http.createServer((req, res) => res.end(JSON.stringify({ env: Object.fromEntries(pick.map((k) => [k, process.env[k]])), execArgv: process.execArgv })));
s.listen(0, '127.0.0.1', () => console.log('listening on ' + s.address().port));
`);
  const c = startCorral(t, ['env.cjs', '-w', '1', '--env-file', '.env', '--env-file', '.env.local', '-e', 'FROM_FLAG=flag', '--node-arg', '--max-old-space-size=200'], { cwd: dir, env: { FROM_SHELL: 'shell' } });
  const port = await c.ready(1);
  const info = JSON.parse((await get(port, '/')).body);
  assert.deepEqual(info.env, { GREETING: 'hello world', SHARED: 'from-local', FROM_SHELL: 'shell', FROM_FLAG: 'flag', MULTI: 'a\nb' });
  assert.ok(info.execArgv.includes('--max-old-space-size=200'), info.execArgv.join(' '));
});

test('a config file with a single app needs no apps wrapper; envFile and nodeArgs work there too; a missing env file is named', async (t) => {
  const dir = tempHome();
  writeFileSync(path.join(dir, '.env'), 'GREETING=from-config\n');
  writeFileSync(path.join(dir, 'env.cjs'), `
const http = require('node:http');
const s = http.createServer((req, res) => res.end(JSON.stringify({ greeting: process.env.GREETING, execArgv: process.execArgv })));
s.listen(0, '127.0.0.1', () => console.log('listening on ' + s.address().port));
`);
  writeFileSync(path.join(dir, 'corral.config.json'), JSON.stringify({ name: 'single', script: 'env.cjs', workers: 1, envFile: '.env', nodeArgs: ['--max-old-space-size=300'] }));
  const c = startCorral(t, [], { cwd: dir });
  const port = await c.ready(1);
  const info = JSON.parse((await get(port, '/')).body);
  assert.equal(info.greeting, 'from-config');
  assert.ok(info.execArgv.includes('--max-old-space-size=300'));
  const { runCli } = await import('../helpers.js');
  writeFileSync(path.join(dir, 'corral.config.json'), JSON.stringify({ script: 'env.cjs', envFile: 'nope.env' }));
  const r = await runCli([], { cwd: dir, home: tempHome() });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^corral: corral\.config\.json: envFile nope\.env: not found \(looked at .*nope\.env\); check the path/);
});

test('--handlers: a module in the primary answers worker.request(); its errors are logged and the primary keeps running', async (t) => {
  const dir = tempHome();
  writeFileSync(path.join(dir, 'handlers.mjs'), `
export default (cluster) => {
  cluster.onRequest('config', (payload, from) => ({ greeting: 'hello ' + payload.region, slot: from.slot }));
  throw new Error('a bug after registering');
};
`);
  writeFileSync(path.join(dir, 'asker.mjs'), `
import http from 'node:http';
import { worker } from ${JSON.stringify(path.join(process.cwd(), 'dist/worker/api.js'))};
const config = await worker.request('config', { region: 'eu' });
const s = http.createServer((req, res) => res.end(JSON.stringify(config)));
s.listen(0, '127.0.0.1', () => console.log('listening on ' + s.address().port));
`);
  const c = startCorral(t, ['asker.mjs', '-w', '2', '--handlers', 'handlers.mjs', '--name', 'asks'], { cwd: dir });
  const port = await c.ready(2);
  assert.deepEqual(Object.keys(JSON.parse((await get(port, '/')).body)).sort(), ['greeting', 'slot']);
  assert.equal(JSON.parse((await get(port, '/')).body).greeting, 'hello eu');
  assert.match(c.output, /the handlers module .*handlers\.mjs threw while registering its handlers \(the primary keeps running; .*\): Error: a bug after registering/);
});

test('a script that neither listens nor calls worker.ready() gets one hint after 5 s', async (t) => {
  const dir = tempHome();
  writeFileSync(path.join(dir, 'slowpoke.mjs'), `
import { worker } from ${JSON.stringify(path.join(process.cwd(), 'dist/worker/api.js'))};
setTimeout(() => worker.ready(), 5600);
setInterval(() => {}, 1000);
`);
  const c = startCorral(t, ['slowpoke.mjs', '-w', '2', '--name', 'slow', '--boot-timeout', '20s'], { cwd: dir });
  const hint = await c.waitForLine(/still not listening/, 8000);
  assert.match(hint, /^\[corral slow\] worker \d \(pid \d+\) still not listening after 5 s; scripts that never listen call worker\.ready\(\) from 'corral\/worker'; waiting up to 20 s$/);
  await waitFor(() => c.lines.filter((l) => /ready in \d+ ms/.test(l)).length === 2, 5000, 'both workers ready');
  assert.equal(c.lines.filter((l) => /still not listening/.test(l)).length, 1, 'one line, not one per worker');
});
