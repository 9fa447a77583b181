// Deploys that cannot take the service down: a release that crashes after
// it starts, a scale-up into a broken release, symlinked (Capistrano)
// releases, and drains of HTTPS, HTTP/2 and the frameworks users run.
import assert from 'node:assert/strict';
import { renameSync, rmSync, symlinkSync } from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, TLS_CA, get, load, runCli, sleep, startCorral, tempHome, waitFor, writeRelease, QUICK_CANARY } from '../helpers.js';


const versionAt = async (port) => JSON.parse((await get(port, '/info')).body).version;
const readyPids = (s) => s.workers.filter((w) => w.state === 'ready').map((w) => w.pid).sort();

test('a release that crashes 800 ms after it listens: reload exits 1 naming the error, the old release keeps serving', async (t) => {
  const dir = tempHome();
  const script = writeRelease(dir, 'v1');
  const c = startCorral(t, [script, '-w', '2', '--name', 'late']);
  const port = await c.ready(2);
  const before = readyPids(await c.status());
  const traffic = load(port, { concurrency: 8, keepAlive: true, maxMs: 30000, path: '/info' });
  await sleep(300);
  writeRelease(dir, 'v2', "setTimeout(() => { throw new Error('release 2 crashed after it started'); }, 800);");
  const r = await runCli(['reload', 'late'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /release 2 crashed after it started/);
  await sleep(1500);
  const stats = await traffic.stop();
  assert.ok(stats.failed <= 5, `${stats.failed} failed requests: ${stats.errors.slice(0, 5).join(', ')}`);
  for (let i = 0; i < 20; i++) assert.equal(await versionAt(port), 'v1');
  const s = await c.status();
  assert.deepEqual(readyPids(s), before, 'the old workers were never drained');
  assert.equal(s.generation, 1);
  assert.equal(s.reloads.failed, 1);
  assert.equal(s.totals.restarts, 0, 'the refused canary is not a restart of the old worker');
  assert.match(c.output, /is the canary of generation 2/);
});

test('scale-up into a release that cannot start: exit 1 within the boot timeout, the count goes back', async (t) => {
  const dir = tempHome();
  const script = writeRelease(dir, 'v1');
  const c = startCorral(t, [script, '-w', '1', '--name', 'up', '--boot-timeout', '1500']);
  await c.ready(1);
  writeRelease(dir, 'v2', 'setInterval(() => {}, 1000); return;');
  const started = Date.now();
  const r = await runCli(['scale', 'up', '3'], { home: c.home, timeout: 20000 });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /could not start.*the cluster stays at 1 workers/);
  assert.ok(Date.now() - started < 1500 + 3000, `scale took ${Date.now() - started} ms`);
  const s = await c.status();
  assert.equal(s.desired, 1);
  await waitFor(async () => (await c.status()).workers.length === 1, 5000, 'the extra workers to go');
});

test('a reload that takes longer than --timeout: the CLI says what is pending and exits 1', async (t) => {
  const dir = tempHome();
  const script = writeRelease(dir, 'v1');
  const c = startCorral(t, [script, '-w', '1', '--name', 'slowrl', '--boot-timeout', '20000']);
  await c.ready(1);
  writeRelease(dir, 'v2', 'process.env.FIXTURE_BOOT = "slow:5000";');
  const r = await runCli(['reload', 'slowrl', '--timeout', '1000'], { home: c.home, timeout: 10000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the reload has not finished in the time allowed; still pending: worker 0 \(pid \d+\) starting for \d+\.\d s/);
});

test('symlinked releases (current -> releases/v1): a reload after the switch serves v2; with v1 deleted a crash is replaced from v2', async (t) => {
  const root = tempHome();
  writeRelease(path.join(root, 'releases/v1'), 'v1');
  writeRelease(path.join(root, 'releases/v2'), 'v2');
  const current = path.join(root, 'current');
  symlinkSync('releases/v1', current);
  const c = startCorral(t, ['server.cjs', '-w', '2', '--name', 'cap', ...QUICK_CANARY], { cwd: current, env: { PWD: current } });
  const port = await c.ready(2);
  assert.equal(await versionAt(port), 'v1');
  symlinkSync('releases/v2', path.join(root, 'current.new'));
  renameSync(path.join(root, 'current.new'), current); // ln -sfn, atomically
  const r = await runCli(['reload', 'cap'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  for (let i = 0; i < 10; i++) assert.equal(await versionAt(port), 'v2');
  rmSync(path.join(root, 'releases/v1'), { recursive: true, force: true });
  const [victim] = readyPids(await c.status());
  process.kill(victim, 'SIGKILL');
  await waitFor(async () => readyPids(await c.status()).length === 2 && !readyPids(await c.status()).includes(victim), 8000, 'a replacement');
  for (let i = 0; i < 10; i++) assert.equal(await versionAt(port), 'v2');
  assert.doesNotMatch(c.output, /cannot start worker/);
});

test('a failed reload in a symlinked layout: respawns afterwards still run the previous release', async (t) => {
  const root = tempHome();
  writeRelease(path.join(root, 'releases/v1'), 'v1');
  writeRelease(path.join(root, 'releases/v2'), 'v2', "throw new Error('v2 is broken');");
  const current = path.join(root, 'current');
  symlinkSync('releases/v1', current);
  const c = startCorral(t, ['--cwd', current, 'server.cjs', '-w', '2', '--name', 'capfail']);
  const port = await c.ready(2);
  symlinkSync('releases/v2', path.join(root, 'current.new'));
  renameSync(path.join(root, 'current.new'), current);
  const r = await runCli(['reload', 'capfail'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /v2 is broken/);
  const [victim] = readyPids(await c.status());
  process.kill(victim, 'SIGKILL');
  await waitFor(async () => readyPids(await c.status()).length === 2 && !readyPids(await c.status()).includes(victim), 8000, 'a replacement');
  for (let i = 0; i < 10; i++) assert.equal(await versionAt(port), 'v1', 'a respawn ran the refused release');
});

test('HTTPS with a new TLS connection per request: 3 reloads, zero failed requests', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'https-app.cjs'), '-w', '2', '--name', 'tls', ...QUICK_CANARY]);
  const port = await c.ready(2);
  const traffic = load(port, { concurrency: 8, keepAlive: false, tls: true, maxMs: 60000 });
  await sleep(300);
  for (let i = 0; i < 3; i++) {
    const r = await runCli(['reload', 'tls'], { home: c.home, timeout: 30000 });
    assert.equal(r.code, 0, r.stderr);
  }
  await sleep(300);
  const stats = await traffic.stop();
  assert.equal(stats.failed, 0, `failed: ${stats.errors.slice(0, 5).join(', ')}`);
  assert.ok(stats.ok > 100, `only ${stats.ok} requests`);
});

/**
 * Long-lived HTTP/2 sessions issuing requests in a loop; a session told to go
 * away is replaced by a new one. A stream refused with REFUSED_STREAM was not
 * processed (RFC 9113 §8.7) and is retried, as browsers and undici do: it can
 * happen to a request sent at the very moment the GOAWAY arrives. Any other
 * stream error is a lost stream.
 */
function h2Load(port, sessions, maxMs) {
  const stats = { ok: 0, lost: 0, refused: 0, errors: [], goaways: 0 };
  let running = true;
  const deadline = Date.now() + maxMs;
  const open = () => {
    const s = http2.connect(`https://localhost:${port}`, { ca: TLS_CA() });
    s.on('goaway', () => (stats.goaways += 1));
    s.on('error', () => {});
    return s;
  };
  const once = (session) =>
    new Promise((resolve) => {
      const stream = session.request({ ':path': '/slow?ms=40' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => (body += d));
      stream.on('end', () => resolve(/^\d+$/.test(body) ? 'ok' : `body ${body}`));
      stream.on('error', (err) => resolve(stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? 'refused' : `${err.code}: ${err.message}`));
    });
  const loop = async () => {
    let session = open();
    while (running && Date.now() < deadline) {
      if (session.closed || session.destroyed) session = open();
      let result;
      try {
        result = await once(session);
      } catch {
        session = open(); // closing already: nothing was sent
        continue;
      }
      if (result === 'ok') stats.ok += 1;
      else if (result === 'refused') stats.refused += 1;
      else (stats.lost += 1), stats.errors.push(result);
    }
    session.close();
  };
  const loops = Array.from({ length: sessions }, loop);
  return { stats, stop: async () => ((running = false), await Promise.all(loops), stats) };
}

test('HTTP/2 with long-lived sessions: a reload sends GOAWAY, loses no stream and never waits out the grace', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'http2-app.cjs'), '-w', '2', '--name', 'h2', '--grace', '10000', ...QUICK_CANARY]);
  const port = await c.ready(2);
  const before = readyPids(await c.status());
  const traffic = h2Load(port, 8, 60000);
  await sleep(500);
  const started = Date.now();
  const r = await runCli(['reload', 'h2'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  await waitFor(async () => (await c.status()).workers.every((w) => w.state === 'ready'), 10000, 'old workers to finish draining');
  const took = Date.now() - started;
  await sleep(300);
  const stats = await traffic.stop();
  assert.equal(stats.lost, 0, `lost streams: ${stats.errors.slice(0, 5).join(', ')}`);
  assert.ok(stats.refused <= 8, `${stats.refused} streams refused (at most one per session racing its GOAWAY)`);
  assert.ok(stats.goaways > 0, 'the clients were told to go away');
  assert.ok(took < 10000, `reload and drain took ${took} ms`);
  assert.doesNotMatch(c.output, /grace period/);
  for (const pid of readyPids(await c.status())) assert.ok(!before.includes(pid));
});

test('HTTP/2: stop with an idle session open exits 0 well within the grace', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'http2-app.cjs'), '-w', '1', '--grace', '10000']);
  const port = await c.ready(1);
  const session = http2.connect(`https://localhost:${port}`, { ca: TLS_CA() });
  session.on('error', () => {});
  t.after(() => session.destroy());
  await new Promise((resolve, reject) => {
    const s = session.request({ ':path': '/' });
    s.on('data', () => {});
    s.on('end', resolve);
    s.on('error', reject);
  });
  const sentAt = Date.now();
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(8000)).code, 0, c.output);
  assert.ok(Date.now() - sentAt < 3000, `stop took ${Date.now() - sentAt} ms`);
});

for (const fw of ['express', 'fastify', 'koa']) {
  for (const strategy of ['os', 'rr']) {
    test(`${fw} (${strategy}): reload and scale under keep-alive load, zero failed requests`, async (t) => {
      const c = startCorral(t, [path.join(FIXTURES, `${fw}-app.cjs`), '-w', '2', '--strategy', strategy, '--name', fw, ...QUICK_CANARY]);
      const port = await c.ready(2);
      const traffic = load(port, { concurrency: 8, keepAlive: true, maxMs: 30000 });
      await sleep(200);
      for (const args of [['reload', fw], ['scale', fw, '3'], ['scale', fw, '2']]) {
        const r = await runCli(args, { home: c.home, timeout: 30000 });
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      await sleep(300);
      const stats = await traffic.stop();
      assert.equal(stats.failed, 0, `failed: ${stats.errors.slice(0, 5).join(', ')}`);
      assert.ok(stats.ok > 50);
    });
  }
}
