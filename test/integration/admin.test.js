import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { adminUrl, parseMetrics, request, sample } from '../admin-helpers.js';
import { FIXTURES, alive, freePort, freeze, get, runCli, sleep, startCorral, tempHome, waitFor } from '../helpers.js';

const APP = path.join(FIXTURES, 'app.cjs');
const METRICS_APP = path.join(FIXTURES, 'metrics.cjs');
const GATE_APP = path.join(FIXTURES, 'boot-gate.cjs');
const TOKEN = 'test-token-0123456789abcdef';

async function scrape(url, headers) {
  const r = await request(new URL('/metrics', url), { headers });
  assert.equal(r.status, 200, r.body);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  return parseMetrics(r.body);
}

test('/metrics: a prom-client counter incremented by 2 workers reads 100 after 100 requests, beside the cluster metrics', async (t) => {
  // rr hands connections out in turn, so both workers surely count some of the 100.
  const c = startCorral(t, [METRICS_APP, '-w', '2', '--strategy', 'rr', '--admin', '0']);
  const url = await adminUrl(c);
  const port = await c.ready(2);
  const pids = new Set();
  for (let i = 0; i < 100; i++) pids.add((await get(port, '/')).body);
  assert.equal(pids.size, 2, 'both workers served');
  const m = await scrape(url);
  assert.equal(sample(m, 'app_requests_total', { route: '/' }), 100);
  assert.equal(m.get('app_requests_total').type, 'COUNTER');
  assert.equal(Number(m.get('app_request_seconds').metrics[0].count), 100, 'histogram counts summed too');
  assert.equal(sample(m, 'app_worker_pid'), Math.min(...[...pids].map(Number)), "a gauge follows its own aggregator ('min')");
  assert.equal(sample(m, 'corral_workers', { state: 'ready' }), 2);
  assert.equal(sample(m, 'corral_app_metrics_workers', { result: 'answered' }), 2);
  assert.equal(sample(m, 'corral_ready'), 1);
  for (const name of ['corral_worker_rss_bytes', 'corral_worker_elu', 'corral_worker_event_loop_delay_seconds', 'corral_requests_total', 'corral_worker_restarts_total', 'corral_reloads_total']) {
    assert.ok(m.has(name), `${name} missing`);
  }
  await waitFor(async () => {
    const again = await scrape(url);
    return sample(again, 'corral_requests_total', { slot: 0 }) + sample(again, 'corral_requests_total', { slot: 1 }) === 100;
  }, 5000, 'corral_requests_total to reach 100 with the next heartbeats');
});

test('/metrics of an app without prom-client: cluster metrics at once, no timeout waited out', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--admin', '0']);
  const url = await adminUrl(c);
  await c.ready(2);
  const m = await scrape(url);
  assert.equal(sample(m, 'corral_app_metrics_workers', { result: 'absent' }), 2);
  assert.equal(sample(m, 'corral_app_metrics_workers', { result: 'timeout' }), 0);
  assert.ok(sample(m, 'corral_app_metrics_collect_seconds') < 0.5, 'the workers answered rather than timing out (limit 1 s)');
  assert.ok(![...m.keys()].some((n) => !n.startsWith('corral_')), 'nothing but corral metrics');
});

test('/metrics with a frozen worker (SIGSTOP): answers after the short timeout, says so, and its counts do not vanish', async (t) => {
  const c = startCorral(t, [METRICS_APP, '-w', '2', '--strategy', 'rr', '--admin', '0']);
  const url = await adminUrl(c);
  const port = await c.ready(2);
  for (let i = 0; i < 10; i++) await get(port, '/');
  assert.equal(sample(await scrape(url), 'app_requests_total', { route: '/' }), 10);
  const frozen = (await c.status()).workers[0].pid;
  freeze(t, frozen);
  const started = Date.now();
  const m = await scrape(url);
  const took = Date.now() - started;
  assert.ok(took >= 900 && took < 5000, `the scrape took ${took} ms: bounded by the 1 s worker timeout`);
  assert.equal(sample(m, 'corral_app_metrics_workers', { result: 'timeout' }), 1);
  assert.equal(sample(m, 'corral_app_metrics_workers', { result: 'answered' }), 1);
  assert.equal(sample(m, 'app_requests_total', { route: '/' }), 10, "the frozen worker's last answer still counts");
  process.kill(frozen, 'SIGCONT');
  await get(port, '/');
  await waitFor(async () => sample(await scrape(url), 'app_requests_total', { route: '/' }) === 11, 5000, 'fresh answers from both once it runs again');
});

test('/metrics: a worker killed with -9 does not take its counts out of the sum (no false counter reset)', async (t) => {
  const c = startCorral(t, [METRICS_APP, '-w', '2', '--strategy', 'rr', '--admin', '0']);
  const url = await adminUrl(c);
  const port = await c.ready(2);
  for (let i = 0; i < 20; i++) await get(port, '/');
  assert.equal(sample(await scrape(url), 'app_requests_total', { route: '/' }), 20);
  const victim = (await c.status()).workers[0];
  process.kill(victim.pid, 'SIGKILL');
  await waitFor(async () => (await c.status()).workers.some((w) => w.slot === victim.slot && w.pid !== victim.pid && w.state === 'ready'), 5000, 'replacement');
  const m = await scrape(url);
  assert.equal(sample(m, 'app_requests_total', { route: '/' }), 20);
  assert.equal(Number(m.get('app_request_seconds').metrics[0].count), 20, 'histograms too');
  for (let i = 0; i < 4; i++) await get(port, '/');
  assert.equal(sample(await scrape(url), 'app_requests_total', { route: '/' }), 24);
});

test('an ESM app with a prom-client Registry of its own, given to worker.exposeMetrics(), is merged too', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'own-registry.mjs'), '-w', '2', '--strategy', 'rr', '--admin', '0']);
  const url = await adminUrl(c);
  const port = await c.ready(2);
  for (let i = 0; i < 10; i++) await get(port, '/');
  const m = await scrape(url);
  assert.equal(sample(m, 'own_hits_total'), 10);
  assert.equal(sample(m, 'corral_app_metrics_workers', { result: 'answered' }), 2);
});

test('several apps in one primary: each admin server counts only its own workers; one admin port for two apps is refused', async (t) => {
  const dir = tempHome();
  const [port, portTwo] = [await freePort(), await freePort()];
  const apps = (a, b) => JSON.stringify({
    apps: [
      { name: 'one', script: METRICS_APP, workers: 2, port, admin: a },
      { name: 'two', script: METRICS_APP, workers: 1, port: portTwo, admin: b },
    ],
  });
  writeFileSync(path.join(dir, 'corral.config.json'), apps(0, 0));
  const c = startCorral(t, [], { cwd: dir, home: path.join(dir, 'home') });
  const [one, two] = [await adminUrl(c, 'one'), await adminUrl(c, 'two')];
  await waitFor(() => c.lines.filter((l) => /ready in/.test(l)).length >= 3, 15000, 'three workers ready');
  for (let i = 0; i < 10; i++) await get(port, '/');
  const [m1, m2] = [await scrape(one), await scrape(two)];
  assert.equal(sample(m1, 'corral_app_metrics_workers', { result: 'answered' }), 2);
  assert.equal(sample(m2, 'corral_app_metrics_workers', { result: 'answered' }), 1);
  assert.equal(sample(m1, 'app_requests_total', { route: '/' }), 10);
  assert.equal(sample(m2, 'app_requests_total', { route: '/' }), undefined, "app two served nothing and sees none of app one's counts");

  writeFileSync(path.join(dir, 'corral.config.json'), apps(9911, 9911));
  const r = await runCli([], { cwd: dir, home: path.join(dir, 'home2') });
  assert.equal(r.code, 2);
  assert.equal(r.stderr.split('\n')[0], 'corral: corral.config.json: apps "one" and "two" both have admin port 9911; give each app its own admin port');
});

test('/readyz: 503 while every worker is down (restarts fail at boot), 200 again once they come back; /healthz stays 200', async (t) => {
  const dir = tempHome();
  const gate = path.join(dir, 'fail');
  const c = startCorral(t, [GATE_APP, '-w', '2', '--admin', '0'], { env: { FIXTURE_FAIL_FILE: gate } });
  const url = await adminUrl(c);
  await c.ready(2);
  assert.equal((await request(new URL('/readyz', url))).status, 200);
  writeFileSync(gate, '');
  for (const w of (await c.status()).workers) process.kill(w.pid, 'SIGKILL');
  await waitFor(async () => (await request(new URL('/readyz', url))).status === 503, 5000, '/readyz 503');
  assert.match((await request(new URL('/readyz', url))).body, /not ready: 0 of 2 workers ready \(min 1\)/);
  assert.equal((await request(new URL('/healthz', url))).status, 200);
  await c.waitForLine(/failed to start/);
  rmSync(gate);
  await waitFor(async () => (await request(new URL('/readyz', url))).status === 200, 20000, '/readyz 200 after the back-off');
});

test('/readyz: --min-ready 2 with one of two workers ready is 503', async (t) => {
  const dir = tempHome();
  const gate = path.join(dir, 'fail');
  const c = startCorral(t, [GATE_APP, '-w', '2', '--admin', '0', '--min-ready', '2'], { env: { FIXTURE_FAIL_FILE: gate } });
  const url = await adminUrl(c);
  await c.ready(2);
  assert.equal((await request(new URL('/readyz', url))).status, 200);
  writeFileSync(gate, '');
  process.kill((await c.status()).workers[0].pid, 'SIGKILL');
  await waitFor(async () => (await request(new URL('/readyz', url))).status === 503, 5000, '/readyz 503');
  assert.match((await request(new URL('/readyz', url))).body, /1 of 2 workers ready \(min 2\)/);
});

test('/readyz is 503 from the moment a stop begins, while workers still drain', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--admin', '0', '--grace', '5s']);
  const url = await adminUrl(c);
  const port = await c.ready(1);
  const slow = get(port, '/slow?ms=2000');
  await sleep(200);
  c.signal('SIGTERM');
  await c.waitForLine(/stopping: draining/);
  const r = await request(new URL('/readyz', url));
  assert.equal(r.status, 503);
  assert.match(r.body, /not ready: stopping/);
  assert.ok(alive(c.pid));
  assert.equal((await slow).status, 200, 'the in-flight request still finished');
  assert.equal((await c.waitForExit(10000)).code, 0);
});

test('/status is the JSON of corral status --json', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--admin', '0', '--name', 'st']);
  const url = await adminUrl(c);
  await c.ready(2);
  const viaHttp = JSON.parse((await request(new URL('/status', url))).body);
  const viaCli = await c.status();
  assert.deepEqual(Object.keys(viaHttp), Object.keys(viaCli));
  assert.equal(viaHttp.name, 'st');
  assert.deepEqual(viaHttp.workers.map((w) => w.pid), viaCli.workers.map((w) => w.pid));
});

test('a non-loopback --admin without a token is refused at start; with one, requests without it get 401 except /healthz and /readyz', async (t) => {
  const refused = await runCli([APP, '--admin', '0.0.0.0:0']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr.split('\n')[0], /^corral: --admin 0\.0\.0\.0:0 is not a loopback address: give a token with --admin-token or CORRAL_ADMIN_TOKEN/);
  const short = await runCli([APP, '--admin', '0.0.0.0:0', '--admin-token', 'short']);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /--admin-token is 5 characters; use at least 16/);

  const c = startCorral(t, [APP, '-w', '1', '--admin', '0.0.0.0:0'], { env: { CORRAL_ADMIN_TOKEN: TOKEN } });
  const bound = await adminUrl(c);
  await c.ready(1);
  const url = new URL(`http://127.0.0.1:${bound.port}/`);
  for (const route of ['/status', '/metrics']) {
    const none = await request(new URL(route, url));
    assert.equal(none.status, 401, route);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="corral"');
    assert.equal((await request(new URL(route, url), { headers: { authorization: `Bearer ${TOKEN}x` } })).status, 401);
    assert.equal((await request(new URL(route, url), { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  }
  assert.equal((await request(new URL('/healthz', url))).status, 200);
  assert.equal((await request(new URL('/readyz', url))).status, 200);
  const page = await request(new URL('/', url));
  assert.equal(page.status, 200, 'the page shell carries no data');
  assert.match(page.body, /data-token="true"/);
  assert.doesNotMatch(page.body, new RegExp(String(c.pid)));
});

test('on loopback without a token, a request naming another host is refused (DNS rebinding)', async (t) => {
  const c = startCorral(t, [APP, '-w', '1', '--admin', '0']);
  const url = await adminUrl(c);
  await c.ready(1);
  assert.equal((await request(new URL('/status', url), { headers: { host: `evil.example:${url.port}` } })).status, 403);
  assert.equal((await request(new URL('/status', url), { headers: { host: `localhost:${url.port}` } })).status, 200);
});

test('POST actions: off without --admin-actions; with it, only same-origin JSON with the custom header reloads and scales', async (t) => {
  const off = startCorral(t, [APP, '-w', '1', '--admin', '0', '--name', 'off']);
  const offUrl = await adminUrl(off);
  await off.ready(1);
  const good = { 'content-type': 'application/json', 'x-corral-action': '1' };
  assert.equal((await request(new URL('/actions/reload', offUrl), { method: 'POST', headers: good, body: '{}' })).status, 403);

  const c = startCorral(t, [APP, '-w', '1', '--admin', '0', '--admin-actions', '--name', 'on']);
  const url = await adminUrl(c);
  await c.ready(1);
  const post = (p, headers, body = '{}') => request(new URL(p, url), { method: 'POST', headers, body });
  const refusals = [
    [{ 'content-type': 'text/plain', 'x-corral-action': '1' }, /Content-Type: application\/json/],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, /Content-Type: application\/json/],
    [{ 'content-type': 'application/json' }, /x-corral-action: 1/],
    [{ ...good, origin: 'http://evil.example' }, /cross-origin request refused/],
    [{ ...good, 'sec-fetch-site': 'cross-site' }, /cross-site request refused/],
  ];
  for (const [headers, why] of refusals) {
    const r = await post('/actions/reload', headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.match(JSON.parse(r.body).error.message, why);
  }
  assert.equal((await request(new URL('/actions/reload', url))).status, 405);
  assert.equal((await post('/actions/scale', good, '{"workers": 0}')).status, 400);
  assert.equal((await post('/actions/scale', good, 'not json')).status, 400);
  assert.equal((await post('/actions/scale', good, JSON.stringify({ pad: 'x'.repeat(20000) }))).status, 413);
  const reload = await post('/actions/reload', { ...good, origin: url.origin });
  assert.equal(reload.status, 200, reload.body);
  assert.deepEqual(JSON.parse(reload.body), { generation: 2 });
  const scale = await post('/actions/scale', good, '{"workers": 2}');
  assert.equal(scale.status, 200, scale.body);
  assert.deepEqual(JSON.parse(scale.body), { workers: 2 });
  assert.equal((await c.status()).totals.ready, 2);
  assert.equal((await post('/actions/scale', good, '{"delta": -1}')).status, 200);
  assert.equal((await c.status()).desired, 1);
});

/** Open a connection that sends a request's headers one byte at a time, forever (until closed). */
function slowloris(port) {
  const s = net.connect(port, '127.0.0.1');
  const text = 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ';
  let i = 0;
  const timer = setInterval(() => s.write(text[i++ % text.length]), 500);
  s.on('error', () => {});
  s.on('close', () => clearInterval(timer));
  return s;
}

test('slowloris clients and a 10 MB request neither delay heartbeats nor a reload, and are cut off', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--admin', '0', '--admin-actions', '--name', 'hard']);
  const url = await adminUrl(c);
  await c.ready(2);
  const port = Number(url.port);
  const slow = Array.from({ length: 80 }, () => slowloris(port));
  t.after(() => slow.forEach((s) => s.destroy()));
  const closed = Promise.all(slow.map((s) => new Promise((r) => s.once('close', r))));
  const big = request(new URL('/actions/reload', url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-corral-action': '1' },
    body: Buffer.alloc(10 * 1024 * 1024, 0x20),
  }).catch((err) => ({ status: err.code ?? err.message }));
  const bigGet = request(new URL('/healthz', url), { method: 'GET', body: Buffer.alloc(10 * 1024 * 1024, 0x20) }).catch((err) => ({ status: err.code ?? err.message }));
  const started = Date.now();
  const r = await runCli(['reload', 'hard'], { home: c.home, timeout: 20000 });
  assert.equal(r.code, 0, r.stderr);
  const reloadMs = Date.now() - started;
  assert.ok(reloadMs < 8000, `the reload took ${reloadMs} ms`);
  for (let i = 0; i < 6; i++) {
    const s = await c.status();
    for (const w of s.workers.filter((x) => x.lastHeartbeatMsAgo !== null)) assert.ok(w.lastHeartbeatMsAgo < 2500, `worker ${w.pid}: no heartbeat for ${w.lastHeartbeatMsAgo} ms`);
    await sleep(500);
  }
  assert.ok([413, 'ECONNRESET', 'EPIPE'].includes((await big).status), `10 MB POST: ${(await big).status}`);
  assert.ok([413, 'ECONNRESET', 'EPIPE'].includes((await bigGet).status), `10 MB GET: ${(await bigGet).status}`);
  await Promise.race([closed, sleep(10000).then(() => assert.fail('slowloris connections still open after 10 s'))]);
  assert.equal((await request(new URL('/healthz', url))).status, 200, 'the admin server serves again');
});
