// The package as a user gets it: `npm pack`, installed into an empty
// project, `npx corral --version`, and the README's examples run from it
// (the worker API example under plain node and under corral, the config
// file with a non-listening app and a handlers module).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Corral, ROOT, freePort, get, runProcess, tempHome, waitFor, within } from '../helpers.js';

const run = (cmd, args, opts) => runProcess(cmd, args, { timeout: 120_000, ...opts });

/** The README's code blocks that begin with `// <file name>`, by file name. */
function readmeFiles() {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const files = {};
  for (const m of text.matchAll(/```js\n\/\/ ([\w.-]+\.m?js)\b[^\n]*\n([\s\S]*?)```/g)) files[m[1]] = `// ${m[1]}\n${m[2]}`;
  return files;
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

test('npm pack holds only what a user needs; the tarball installs into an empty project and runs the README examples', async (t) => {
  const work = tempHome();
  // `npm test` has just built dist/; --ignore-scripts keeps pack from building again.
  const pack = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  assert.equal(pack.code, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout);
  const files = info.files.map((f) => f.path);
  const extra = files.filter((f) => !/^dist\/.+\.(js|d\.ts)$/.test(f) && !['package.json', 'README.md', 'LICENSE', 'assets/dashboard.html'].includes(f));
  assert.deepEqual(extra, [], 'nothing but dist/*.js, *.d.ts, the dashboard, README, LICENSE and package.json');
  assert.ok(files.includes('dist/cli/main.js') && files.includes('dist/worker/api.d.ts'));

  const app = path.join(work, 'my-app');
  await import('node:fs').then((fs) => fs.mkdirSync(app));
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'my-app', private: true, type: 'module' }));
  // Dependencies come from npm's cache (filled by `npm ci`), the registry only for what is missing.
  const install = await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', path.join(work, info.filename)], { cwd: app });
  assert.equal(install.code, 0, install.stderr);

  const version = await run(npx, ['--no-install', 'corral', '--version'], { cwd: app, timeout: 30_000 });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), `corral ${JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}`);

  const examples = readmeFiles();
  for (const name of ['server.mjs', 'handlers.mjs', 'consumer.mjs', 'corral.config.mjs']) {
    assert.ok(examples[name], `README has a ${name} example`);
    writeFileSync(path.join(app, name), examples[name]);
  }
  writeFileSync(path.join(app, '.env'), 'NODE_ENV=production\n');

  // The worker API example under plain node: no primary, its defaults.
  const plainPort = await freePort();
  const plain = spawn(process.execPath, ['server.mjs'], { cwd: app, env: { ...process.env, PORT: String(plainPort) }, stdio: 'ignore' });
  t.after(() => plain.kill('SIGKILL'));
  const plainAnswer = await waitFor(() => get(plainPort, '/').then((r) => r.body), 10_000, 'plain node to answer');
  assert.equal(plainAnswer, 'hello from worker 0 of 1\n');
  plain.kill('SIGKILL');

  // One worker from the installed package's own command (what npx runs).
  const bin = path.join(app, 'node_modules', '.bin', 'corral');
  const port = await freePort();
  const c = new Corral(['server.mjs', '-w', '1', '--handlers', 'handlers.mjs', '--port', String(port)], { cwd: app, cli: bin });
  t.after(() => c.cleanup());
  await c.waitForLine(/\[corral my-app\] running\. In another terminal/, 15_000);
  assert.equal((await get(port, '/')).body, 'hello eu from worker 0 of 1\n');
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(10_000)).code, 0);

  // The README's config file: an app with handlers and an env file, and a queue consumer that never listens.
  const cfgPort = await freePort();
  const cfg = new Corral(['-w', '1', '--port', String(cfgPort)], { cwd: app, cli: bin });
  t.after(() => cfg.cleanup());
  await waitFor(() => cfg.lines.filter((l) => /ready in \d+ ms/.test(l)).length >= 2, 15_000, 'both apps ready');
  assert.equal((await get(cfgPort, '/')).body, 'hello eu from worker 0 of 1\n');
  assert.doesNotMatch(cfg.output, /still not listening/, 'the consumer calls worker.ready()');
  const status = await within(run(process.execPath, [bin, 'status', '--json'], { cwd: app, env: { CORRAL_HOME: cfg.home } }), 15_000, 'status');
  assert.deepEqual(JSON.parse(status.stdout).map((s) => [s.name, s.totals.ready]).sort(), [['api', 1], ['jobs', 1]]);
  const logs = await within(run(process.execPath, [bin, 'logs', '-n', '100'], { cwd: app, env: { CORRAL_HOME: cfg.home } }), 15_000, 'logs');
  assert.match(logs.stdout, /\[corral api\] starting 1 worker of/, 'the apps of one config file are shown together');
  assert.match(logs.stdout, /\[corral jobs\] starting 1 worker of/);
  cfg.signal('SIGTERM');
  assert.equal((await cfg.waitForExit(10_000)).code, 0);
});
