// --sticky: the primary owns the port and hands each connection to the
// worker its key belongs to. Tested with a plain HTTP app that reports its
// pid and a hash of every request body it received.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, TLS_CA, freePort, freeze, load, runCli, sleep, startCorral, waitFor, within } from '../helpers.js';

const APP = path.join(FIXTURES, 'sticky-app.cjs');
const readyPids = async (c) => (await c.status()).workers.filter((w) => w.state === 'ready').map((w) => w.pid);

/** One request on a new connection; resolves with the app's JSON answer. */
function ask(port, { headers = {}, body, tls = false } = {}) {
  return new Promise((resolve, reject) => {
    const mod = tls ? https : http;
    const req = mod.request({ host: '127.0.0.1', port, method: body ? 'POST' : 'GET', path: '/', headers, agent: false, ...(tls ? { ca: TLS_CA(), servername: 'localhost' } : {}) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(tls ? { pid: Number(text.trim()) } : JSON.parse(text)) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.setTimeout(10000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Which pid serves each of `keys`, asked `times` times each. */
async function pidsByKey(port, keys, header = 'x-client', times = 3) {
  const out = new Map();
  for (const key of keys) {
    const seen = new Set();
    for (let i = 0; i < times; i++) seen.add((await ask(port, { headers: { [header]: key } })).pid);
    out.set(key, seen);
  }
  return out;
}

const keys = (n, prefix = 'client') => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

test('header:x-client: every client\'s connections reach one worker; 40 clients land on both workers', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'sthdr']);
  const port = await c.ready(2);
  const byKey = await pidsByKey(port, keys(40));
  for (const [key, pids] of byKey) assert.equal(pids.size, 1, `${key} reached ${[...pids]}`);
  const used = new Set([...byKey.values()].map((s) => [...s][0]));
  assert.deepEqual([...used].sort(), (await readyPids(c)).sort());
  assert.match(c.output, /sticky: the primary listens on 127\.0\.0\.1:\d+ and routes each connection by header:x-client/);
});

test('the bytes the primary read are replayed exactly: pipelined requests, bodies up to 1 MB, split at odd places', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'streplay']);
  const port = await c.ready(2);
  const sizes = [0, 1, 1000, 16 * 1024 - 100, 70_000, 1024 * 1024];
  await Promise.all(sizes.map((size, i) => new Promise((resolve, reject) => {
    const first = crypto.randomBytes(size);
    const second = crypto.randomBytes(size % 7919);
    const wire = Buffer.concat([
      Buffer.from(`POST /a HTTP/1.1\r\nHost: x\r\nX-Client: replay-${i}\r\nContent-Length: ${first.length}\r\n\r\n`),
      first,
      Buffer.from(`POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: ${second.length}\r\nConnection: close\r\n\r\n`),
      second,
    ]);
    const sock = net.connect(port, '127.0.0.1');
    // Part of the head, then the rest of it with the start of the body, then everything else in pieces.
    const cuts = [...new Set([17, 60 + (i * 37) % 200, 4096 + i, Math.floor(wire.length / 2)])].filter((n) => n < wire.length).sort((a, b) => a - b);
    let at = 0;
    const next = () => {
      const end = cuts.shift() ?? wire.length;
      sock.write(wire.subarray(at, end));
      at = end;
      if (at < wire.length) setTimeout(next, 5);
    };
    next();
    let answer = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => (answer += d));
    sock.on('error', reject);
    sock.on('close', () => {
      const bodies = [...answer.matchAll(/\{"pid".*?\}/g)].map((m) => JSON.parse(m[0]));
      try {
        assert.equal(bodies.length, 2, answer);
        assert.deepEqual(bodies.map((b) => [b.url, b.length, b.sha256]), [
          ['/a', first.length, crypto.createHash('sha256').update(first).digest('hex')],
          ['/b', second.length, crypto.createHash('sha256').update(second).digest('hex')],
        ]);
        resolve();
      } catch (err) {
        reject(err);
      }
    });
  })));
});

test('cookie:sid: one cookie, one worker; requests without the cookie go by client IP', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'cookie:sid', '--name', 'stcookie']);
  const port = await c.ready(2);
  const byCookie = new Map();
  for (const k of keys(30, 'session')) {
    const seen = new Set();
    for (let i = 0; i < 3; i++) seen.add((await ask(port, { headers: { cookie: `theme=dark; sid=${k}; lang=en` } })).pid);
    assert.equal(seen.size, 1);
    byCookie.set(k, [...seen][0]);
  }
  assert.equal(new Set(byCookie.values()).size, 2, 'the cookies spread over both workers');
  const anonymous = new Set();
  for (let i = 0; i < 10; i++) anonymous.add((await ask(port, { headers: { cookie: 'theme=dark' } })).pid);
  assert.equal(anonymous.size, 1, 'every request from 127.0.0.1 without the cookie reached one worker');
});

test('a worker killed: its clients move to the other worker, the other\'s stay; an open connection to it ends with it', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'stkill']);
  const port = await c.ready(2);
  const before = await pidsByKey(port, keys(20), 'x-client', 1);
  const [victim, survivor] = await readyPids(c);
  // A keep-alive connection that the victim holds.
  const victimKey = [...before].find(([, s]) => s.has(victim))[0];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const held = await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, headers: { 'x-client': victimKey } }, (res) => {
      res.resume();
      res.on('end', () => resolve(req.socket));
    });
    req.on('error', reject);
  });
  const closed = new Promise((resolve) => held.once('close', resolve));
  process.kill(victim, 'SIGKILL');
  await within(closed, 3000, 'the victim\'s connection to close');
  await waitFor(async () => (await readyPids(c)).length === 2 && !(await readyPids(c)).includes(victim), 10000, 'a replacement');
  const after = await pidsByKey(port, keys(20), 'x-client', 1);
  for (const [key, pids] of before) {
    const was = [...pids][0];
    if (was === survivor) assert.deepEqual([...after.get(key)], [survivor], `${key} moved although its worker lives`);
  }
});

test('a frozen worker (SIGSTOP): connections queued for it go to the other worker once the watchdog has killed it', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'stfrozen', '--watchdog', '1500']);
  const port = await c.ready(2);
  const byKey = await pidsByKey(port, keys(20), 'x-client', 1);
  const [frozen, other] = await readyPids(c);
  const frozenKeys = [...byKey].filter(([, s]) => s.has(frozen)).map(([k]) => k).slice(0, 5);
  assert.ok(frozenKeys.length >= 2, 'some keys on each worker');
  freeze(t, frozen);
  const started = Date.now();
  const results = await Promise.allSettled(frozenKeys.map((key) => ask(port, { headers: { 'x-client': key } })));
  const served = results.filter((r) => r.status === 'fulfilled').map((r) => r.value.pid);
  // The first one may already sit in the frozen worker's socket and die with it; the queued ones are routed again.
  assert.ok(served.length >= frozenKeys.length - 1, `${served.length} of ${frozenKeys.length} answered: ${results.map((r) => r.reason?.message).join(', ')}`);
  for (const pid of served) assert.equal(pid, other);
  assert.ok(Date.now() - started < 9000, `took ${Date.now() - started} ms`);
  assert.match(c.output, /unresponsive for \d+ ms/);
});

test('a reload under load: zero failed requests; a client stays on its worker until that one drains, then goes to the new generation', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'streload', '--reload-verify', '1500']);
  const port = await c.ready(2);
  const before = await readyPids(c);
  const traffic = load(port, { concurrency: 8, keepAlive: false, maxMs: 30000 });
  t.after(() => traffic.stop());
  const firstPid = new Map();
  for (const [key, pids] of await pidsByKey(port, keys(16), 'x-client', 1)) firstPid.set(key, [...pids][0]);
  const reload = runCli(['reload', 'streload'], { home: c.home, timeout: 30000 });
  // While the canary serves beside the old workers, the clients keep their workers.
  await c.waitForLine(/is the canary of generation 2/, 10000);
  for (const [key, pids] of await pidsByKey(port, keys(16), 'x-client', 1)) assert.deepEqual([...pids], [firstPid.get(key)], `${key} moved during the canary window`);
  const r = await reload;
  assert.equal(r.code, 0, r.stderr);
  const after = await readyPids(c);
  for (const [key, pids] of await pidsByKey(port, keys(16), 'x-client', 1)) assert.ok(after.includes([...pids][0]) && !before.includes([...pids][0]), `${key} is on an old worker`);
  await sleep(300);
  const stats = await traffic.stop();
  assert.equal(stats.failed, 0, `failed: ${stats.errors.slice(0, 5).join(', ')}`);
  assert.ok(stats.ok > 50);
});

test('a warm spare gets no connection until it is promoted', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--spares', '1', '--sticky', 'header:x-client', '--name', 'stspare']);
  const port = await c.ready(2);
  const spare = await waitFor(async () => (await c.status()).workers.find((w) => w.state === 'spare'), 10000, 'a booted spare');
  const serving = await readyPids(c);
  for (const [key, pids] of await pidsByKey(port, keys(30), 'x-client', 1)) assert.ok(serving.includes([...pids][0]), `${key} reached the spare`);
  process.kill(serving[0], 'SIGKILL');
  await waitFor(async () => (await readyPids(c)).includes(spare.pid), 10000, 'the spare promoted');
  const used = new Set();
  for (const [, pids] of await pidsByKey(port, keys(30), 'x-client', 1)) used.add([...pids][0]);
  assert.ok(used.has(spare.pid), 'the promoted spare takes its share');
});

test('https under --sticky header:x-client: served, routed by client IP (the primary cannot read TLS), and the log says so', async (t) => {
  const c = startCorral(t, [path.join(FIXTURES, 'https-app.cjs'), '-w', '2', '--sticky', 'header:x-client', '--name', 'sttls']);
  const port = await c.ready(2);
  const pids = new Set();
  for (let i = 0; i < 10; i++) pids.add((await ask(port, { tls: true, headers: { 'x-client': `k${i}` } })).pid);
  assert.equal(pids.size, 1, 'all from 127.0.0.1: one worker');
  assert.match(c.output, /routes each connection by ip \(header:x-client needs a plain HTTP server; this one is not\)/);
});

test('the port is taken: the app fails to start with EADDRINUSE, as without --sticky', async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  t.after(() => blocker.close());
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'ip', '--port', String(blocker.address().port)]);
  const { code } = await c.waitForExit(15000);
  assert.equal(code, 1);
  assert.match(c.output, /EADDRINUSE/);
});

for (const [args, message] of [
  [['--sticky', 'session'], /--sticky must be ip, header:NAME or cookie:NAME \(e\.g\. header:x-client-id, cookie:sid\), got "session"/],
  [['--sticky', 'header:'], /--sticky must be ip, header:NAME or cookie:NAME .*, got "header:"/],
  [['--sticky', 'ip', '--strategy', 'os'], /--sticky routes every TCP connection through the primary by its key, in place of --strategy os; drop --strategy/],
]) {
  test(`usage: ${args.join(' ')} is refused in one line, exit 2`, async () => {
    const r = await runCli([APP, ...args, '--port', String(await freePort())]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 2, r.stderr);
  });
}

test('an app that closes its server and listens again on the same port keeps serving from every worker', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'strelisten', '--port', String(await freePort())], { env: { RELISTEN_AFTER_MS: '300' } });
  const port = await c.ready(2);
  await waitFor(() => (c.output.match(/listening again on \d+|relisten failed/g) ?? []).length >= 2, 10000, 'both workers to listen again');
  assert.doesNotMatch(c.output, /relisten failed|EADDRINUSE/);
  const used = new Set([...(await pidsByKey(port, keys(20), 'x-client', 1)).values()].map((s) => [...s][0]));
  assert.deepEqual([...used].sort(), (await readyPids(c)).sort(), 'both workers serve after listening again');
  // Counted once each: listening again must not add corral's request listener a second time.
  const counted = await waitFor(async () => {
    const n = (await c.status()).totals.requests;
    return n >= 20 && n;
  }, 5000, 'the heartbeats to count the requests');
  assert.equal(counted, 20);
});
