// The admin server's and metrics' pure parts: address parsing, the request
// guards, option resolution, the metrics poll with a fake clock, and
// aggregation of workers' prom-client JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { isLoopback, parseAdminAddress } from '../../dist/admin/address.js';
import { csrfProblem, hasToken, hostIsLoopback } from '../../dist/admin/guard.js';
import { parseCommand } from '../../dist/cli/args.js';
import { resolveOptions } from '../../dist/config/options.js';
import { parseConfig, validateOptions } from '../../dist/config/schema.js';
import { aggregateAppMetrics } from '../../dist/metrics/app-metrics.js';
import { ClusterMetrics, servingPerSlot } from '../../dist/metrics/cluster-metrics.js';
import { CounterLedger } from '../../dist/metrics/ledger.js';
import { MetricsPoll } from '../../dist/metrics/poll.js';
import { FakeClock } from './fakes.js';

const SCRIPT = new URL('../fixtures/app.cjs', import.meta.url).pathname;
const TOKEN = 'a-token-of-24-characters';
const req = (headers) => ({ headers });

test('--admin: a port binds 127.0.0.1; host:port and [v6]:port; bad values name the fix', () => {
  assert.deepEqual(parseAdminAddress('--admin', '9100'), { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(parseAdminAddress('--admin', 9100), { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(parseAdminAddress('--admin', '0.0.0.0:9100'), { host: '0.0.0.0', port: 9100 });
  assert.deepEqual(parseAdminAddress('--admin', '[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseAdminAddress('--admin', 'localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['', 'abc', '99999', ':9100', '1.2.3.4:', '[zz]:1', '::1:9100']) {
    assert.throws(() => parseAdminAddress('--admin', bad), { code: 'E_USAGE', message: /--admin must be a port or host:port/ }, bad);
  }
});

test('loopback: 127/8, ::1, v4-mapped 127, localhost; everything else is not', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', 'localhost']) assert.equal(isLoopback(h), true, h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', 'localhost.example.com', '128.0.0.1']) assert.equal(isLoopback(h), false, h);
});

test('options: a non-loopback admin needs a token (flag or env) of 16+ printable characters; admin flags need --admin', () => {
  const label = (k) => ({ admin: '--admin', adminToken: '--admin-token', minReady: '--min-ready', adminActions: '--admin-actions' })[k] ?? k;
  const resolve = (o) => resolveOptions(validateOptions({ script: SCRIPT, ...o }, 'api', label), label);
  const saved = process.env.CORRAL_ADMIN_TOKEN;
  delete process.env.CORRAL_ADMIN_TOKEN;
  try {
    assert.deepEqual(resolve({ admin: 9100 }).admin, { host: '127.0.0.1', port: 9100, token: undefined, minReady: 1, actions: false });
    assert.throws(() => resolve({ admin: '0.0.0.0:9100' }), /--admin 0\.0\.0\.0:9100 is not a loopback address: give a token with --admin-token or CORRAL_ADMIN_TOKEN/);
    assert.throws(() => resolve({ admin: '0.0.0.0:9100', adminToken: 'short' }), /--admin-token is 5 characters; use at least 16/);
    assert.throws(() => resolve({ admin: '0.0.0.0:9100', adminToken: 'with space in the token' }), /printable ASCII without spaces/);
    assert.equal(resolve({ admin: '0.0.0.0:9100', adminToken: TOKEN }).admin.token, TOKEN);
    assert.throws(() => resolve({ minReady: 2 }), /--min-ready needs --admin <port\|host:port>/);
    assert.throws(() => resolve({ admin: 9100, minReady: -1 }), /--min-ready must be an integer \(0 or more\)/);
    process.env.CORRAL_ADMIN_TOKEN = TOKEN;
    assert.equal(resolve({ admin: '0.0.0.0:9100' }).admin.token, TOKEN, 'the token may come from the environment');
    assert.equal(resolve({}).admin, undefined, 'the env token alone does not turn the server on');
  } finally {
    if (saved === undefined) delete process.env.CORRAL_ADMIN_TOKEN;
    else process.env.CORRAL_ADMIN_TOKEN = saved;
  }
});

test('CLI flags and config keys for the admin server', () => {
  const cmd = parseCommand(['app.js', '--admin', '0.0.0.0:9100', '--admin-token', TOKEN, '--min-ready', '2', '--admin-actions']);
  assert.deepEqual({ ...cmd.options, args: undefined, script: undefined }, { admin: '0.0.0.0:9100', adminToken: TOKEN, minReady: 2, adminActions: true, args: undefined, script: undefined });
  assert.throws(() => parseCommand(['app.js', '--min-ready', 'x']), /--min-ready must be an integer \(0 or more\), got "x"/);
  const [app] = parseConfig({ apps: [{ script: 'a.js', admin: 9100, minReady: 0, adminActions: true }] }, 'c.json').apps;
  assert.deepEqual([app.admin, app.minReady, app.adminActions], [9100, 0, true]);
  assert.throws(() => parseConfig({ apps: [{ script: 'a.js', admin: true }] }, 'c.json'), /apps\[0\]\.admin must be a port or "host:port", got true/);
  assert.throws(() => parseConfig({ apps: [{ script: 'a.js', adminActions: 'yes' }] }, 'c.json'), /apps\[0\]\.adminActions must be true or false/);
});

test('Bearer token: exact match only', () => {
  assert.equal(hasToken(req({ authorization: `Bearer ${TOKEN}` }), TOKEN), true);
  assert.equal(hasToken(req({ authorization: `bearer ${TOKEN}` }), TOKEN), true);
  for (const a of [undefined, '', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, TOKEN, `Bearer ${TOKEN} extra`]) {
    assert.equal(hasToken(req({ authorization: a }), TOKEN), false, String(a));
  }
});

test('Host must be a loopback name when no token guards the server', () => {
  for (const host of ['127.0.0.1:9100', 'localhost:9100', '[::1]:9100', 'LOCALHOST']) assert.equal(hostIsLoopback(req({ host })), true, host);
  for (const host of [undefined, 'evil.example:9100', '10.0.0.1:9100', 'localhost.evil.example', '[::]:1']) assert.equal(hostIsLoopback(req({ host })), false, host);
});

test('actions: JSON content type, the custom header, and a same-origin Origin/Sec-Fetch-Site', () => {
  const ok = { host: '127.0.0.1:9100', 'content-type': 'application/json; charset=utf-8', 'x-corral-action': '1' };
  assert.equal(csrfProblem(req(ok)), null);
  assert.equal(csrfProblem(req({ ...ok, origin: 'http://127.0.0.1:9100', 'sec-fetch-site': 'same-origin' })), null);
  assert.match(csrfProblem(req({ ...ok, 'content-type': 'text/plain' })), /Content-Type: application\/json/);
  assert.match(csrfProblem(req({ ...ok, 'x-corral-action': undefined })), /x-corral-action: 1/);
  assert.match(csrfProblem(req({ ...ok, origin: 'http://127.0.0.1:9101' })), /cross-origin/);
  assert.match(csrfProblem(req({ ...ok, origin: 'null' })), /Origin: null/);
  assert.match(csrfProblem(req({ ...ok, 'sec-fetch-site': 'same-site' })), /cross-site/);
});

function pollTarget(slot, pid) {
  const t = { slot, pid, sent: [], proc: { send: (m) => t.sent.push(m) } };
  return t;
}

test('MetricsPoll: resolves when every worker answered; a silent one is a timeout, an exited one says so', async () => {
  const clock = new FakeClock();
  const poll = new MetricsPoll(clock);
  const [a, b, c] = [pollTarget(0, 10), pollTarget(1, 11), pollTarget(2, 12)];
  const round = poll.collect([a, b, c], 1000);
  const id = a.sent[0].id;
  assert.deepEqual(a.sent[0], { corral: 1, type: 'collect-metrics', id });
  poll.receive(a, { corral: 1, type: 'metrics', id, found: true, registries: [[{ name: 'x' }]] });
  poll.receive(b, { corral: 1, type: 'metrics', id, found: false, registries: [] });
  poll.forget(c);
  const answers = await round;
  assert.deepEqual(answers.map((x) => x.result), ['answered', 'absent', 'exited']);

  const second = poll.collect([a, b], 1000);
  const id2 = a.sent[1].id;
  poll.receive(b, { corral: 1, type: 'metrics', id: id2, error: 'boom' });
  poll.receive(c, { corral: 1, type: 'metrics', id: id2, found: true, registries: [] }); // not asked: ignored
  clock.advance(1000);
  const late = await second;
  assert.deepEqual(late.map((x) => [x.pid, x.result]), [[10, 'timeout'], [11, 'error']]);
  poll.receive(a, { corral: 1, type: 'metrics', id: id2, found: true, registries: [] }); // after the end: ignored
  assert.deepEqual(await poll.collect([], 1000), []);
});

async function workerJson(build) {
  const registry = new Registry();
  build(registry);
  return registry.getMetricsAsJSON();
}

test('aggregation: counters and histograms sum, gauges follow their aggregator, NaN survives JSON, corral names stay corral\'s', async () => {
  const worker = (n) =>
    workerJson((r) => {
      new Counter({ name: 'hits_total', help: 'h', labelNames: ['route'], registers: [r] }).inc({ route: '/' }, n);
      new Gauge({ name: 'queue', help: 'q', aggregator: 'max', registers: [r] }).set(n);
      new Gauge({ name: 'broken', help: 'b', registers: [r] }).set(Number.NaN);
      new Gauge({ name: 'corral_workers', help: 'shadow', registers: [r] }).set(99);
    });
  const answers = [
    { slot: 0, pid: 1, result: 'answered', registries: [JSON.parse(JSON.stringify(await worker(3)))] },
    { slot: 1, pid: 2, result: 'answered', registries: [JSON.parse(JSON.stringify(await worker(4)))] },
    { slot: 2, pid: 3, result: 'absent', registries: [] },
  ];
  answers[1].registries[0].find((m) => m.name === 'queue').aggregator = 'median-of-nothing';
  const text = await aggregateAppMetrics(answers.flatMap((a) => a.registries), (name) => name.startsWith('corral_')).metrics();
  assert.match(text, /^hits_total\{route="\/"\} 7$/m);
  assert.match(text, /^queue 4$/m, 'the first worker names max; an unknown aggregator elsewhere does not fail the scrape');
  assert.match(text, /^broken Nan$/m);
  assert.doesNotMatch(text, /corral_workers/);
});

const workerStatus = (over) => ({ slot: 0, pid: 1, state: 'ready', generation: 1, uptimeMs: 5000, restarts: 0, restartReasons: {}, rss: 100, heapUsed: 50, cpuPercent: 1, requests: 7, connections: 2, loopDelayMs: 12, loopDelayP50Ms: 10, loopDelayP99Ms: 11, elu: 0.25, cpuSeconds: 1.5, lastHeartbeatMsAgo: 300, address: null, ...over });

test('cluster metrics from a status snapshot; one series per slot, the newest ready worker serving it', async () => {
  const status = {
    name: 'web', pid: 1, script: 's', strategy: 'os', state: 'reloading', startedAt: '', uptimeMs: 10_000, desired: 2, generation: 2,
    workers: [
      workerStatus({ pid: 10, restarts: 1, restartReasons: { crash: 1 } }),
      workerStatus({ pid: 11, state: 'starting', generation: 2, rss: null, lastHeartbeatMsAgo: null, requests: null, restarts: 1, restartReasons: { crash: 1 } }),
      workerStatus({ slot: 1, pid: 12, state: 'draining', rss: 300 }),
      workerStatus({ slot: 1, pid: 13, generation: 2, rss: 200, requests: 3 }),
    ],
    waiting: [],
    totals: { workers: 4, ready: 2, rss: 600, requests: 10, restarts: 1 },
  };
  assert.deepEqual(servingPerSlot(status.workers).map((w) => w.pid), [10, 13]);
  const listeners = {};
  const metrics = new ClusterMetrics({ status: () => status, on: (e, l) => (listeners[e] = l) }, 1, '9.9.9');
  listeners['reload:done']();
  metrics.update(status);
  const text = await metrics.registry.metrics();
  for (const line of [
    'corral_workers{state="starting"} 1', 'corral_workers{state="ready"} 2', 'corral_workers{state="draining"} 1',
    'corral_worker_rss_bytes{slot="0"} 100', 'corral_worker_rss_bytes{slot="1"} 200', 'corral_requests_total{slot="1"} 3',
    'corral_worker_restarts_total{slot="0",reason="crash"} 1', 'corral_reloads_total{result="done"} 1', 'corral_reloads_total{result="failed"} 0',
    'corral_worker_event_loop_delay_seconds{slot="0",quantile="0.99"} 0.011', 'corral_ready 1', 'corral_info{name="web",strategy="os",version="9.9.9"} 1',
  ]) assert.ok(text.split('\n').includes(line), `missing: ${line}`);
  assert.equal(ClusterMetrics.isReady({ ...status, state: 'stopping' }, 1), false);
  assert.equal(ClusterMetrics.isReady(status, 3), false);
});

test('counter ledger: sums never go backwards when a worker misses a scrape or is replaced; gauges are not kept', async () => {
  const json = (n) =>
    workerJson((r) => {
      new Counter({ name: 'hits_total', help: 'h', registers: [r] }).inc(n);
      new Gauge({ name: 'inflight', help: 'g', registers: [r] }).set(n);
    }).then((j) => JSON.parse(JSON.stringify(j)));
  const ledger = new CounterLedger();
  const total = async (answers) => {
    const text = await aggregateAppMetrics(ledger.account(answers), () => false).metrics();
    return [Number(/^hits_total (\S+)$/m.exec(text)?.[1]), Number(/^inflight (\S+)$/m.exec(text)?.[1])];
  };
  const answered = async (slot, pid, n) => ({ slot, pid, result: 'answered', registries: [await json(n)] });
  assert.deepEqual(await total([await answered(0, 1, 5), await answered(1, 2, 7)]), [12, 12]);
  assert.deepEqual(await total([await answered(0, 1, 6), { slot: 1, pid: 2, result: 'timeout', registries: [] }]), [13, 13], 'a silent worker counts with its last answer');
  assert.deepEqual(await total([await answered(0, 1, 6), { slot: 1, pid: 2, result: 'exited', registries: [] }]), [13, 6], 'an exited worker: its counts stay, its gauge goes');
  assert.deepEqual(await total([await answered(0, 1, 6), await answered(1, 3, 1)]), [14, 7], 'its replacement adds to them');
  assert.deepEqual(await total([await answered(1, 3, 2)]), [15, 2], 'a worker gone between scrapes is retired too');
});
