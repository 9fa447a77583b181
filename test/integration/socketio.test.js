// Socket.IO apps as their docs write them for node:cluster, with no primary
// file: @socket.io/cluster-adapter in the workers, corral relaying its
// messages; long-polling needs --sticky; reloads and stops finish well
// within the grace with the clients reconnecting.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, ROOT, runCli, startCorral, waitFor, QUICK_CANARY } from '../helpers.js';
import { sioClients } from '../realtime-helpers.js';

const APP = path.join(FIXTURES, 'socketio-app.cjs');
const readyPids = async (c) => (await c.status()).workers.filter((w) => w.state === 'ready').map((w) => w.pid);

/** Handshake, 12 acked round trips each, one broadcast: what the issue asks of 8 clients on 2 workers. */
async function exercise(t, port, transports) {
  const fleet = await sioClients(port, 8, { transports, upgrade: transports.includes('websocket') });
  t.after(() => fleet.close());
  await waitFor(() => fleet.clients.every((s) => s.pids.length === 1), 10000, `every client's handshake (${fleet.errors.join('; ')})`);
  await Promise.all(fleet.clients.map(async (s) => {
    for (let n = 0; n < 12; n++) {
      const r = await s.timeout(5000).emitWithAck('echo', n);
      assert.deepEqual(r, { pid: s.pids[0], n }, 'the answer came from the worker that holds the session');
    }
  }));
  await fleet.clients[3].timeout(5000).emitWithAck('shout', 'to everyone');
  await waitFor(() => fleet.clients.every((s) => s.news.length === 1), 5000, 'the broadcast to reach all 8 clients');
  assert.deepEqual(fleet.errors, []);
  assert.deepEqual(fleet.clients.flatMap((s) => s.disconnects), []);
  return fleet;
}

test('Socket.IO, 2 workers, --sticky header:x-client: 8 long-polling-only clients handshake, 12 acked round trips each, a broadcast reaches all 8', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'siopoll']);
  const port = await c.ready(2);
  const fleet = await exercise(t, port, ['polling']);
  assert.ok(fleet.clients.every((s) => s.io.engine.transport.name === 'polling'));
  assert.equal(new Set(fleet.clients.map((s) => s.pids[0])).size, 2, 'the clients landed on both workers');
  assert.equal(await fleet.clients[0].timeout(5000).emitWithAck('servers'), 2, 'the adapter sees both workers');
});

test('Socket.IO, 2 workers, --sticky header:x-client, default transports (polling, then the upgrade): the same', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'siodefault']);
  const port = await c.ready(2);
  const fleet = await exercise(t, port, ['polling', 'websocket']);
  await waitFor(() => fleet.clients.every((s) => s.io.engine.transport.name === 'websocket'), 5000, 'every client to upgrade');
  assert.equal(new Set(fleet.clients.map((s) => s.pids[0])).size, 2, 'the clients landed on both workers');
});

test('Socket.IO, WebSocket-only clients without --sticky: a broadcast reaches all 10, serverCount() is 2 (corral relays the adapter)', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--name', 'siows']);
  const port = await c.ready(2);
  const fleet = await sioClients(port, 10, { transports: ['websocket'] });
  t.after(() => fleet.close());
  await waitFor(() => fleet.clients.every((s) => s.pids.length === 1), 10000, 'every client connected');
  assert.equal(await fleet.clients[0].timeout(5000).emitWithAck('servers'), 2);
  await fleet.clients[0].timeout(5000).emitWithAck('shout', 'hi');
  await waitFor(() => fleet.clients.every((s) => s.news.length === 1), 5000, 'the broadcast to reach all 10 clients');
});

test('long-polling clients without --sticky: their session is lost across workers, and corral says once to use --sticky', async (t) => {
  // rr: the primary hands connections over by turn, so a client's requests do reach both workers.
  const c = startCorral(t, [APP, '-w', '2', '--strategy', 'rr', '--name', 'sionosticky']);
  const port = await c.ready(2);
  const fleet = await sioClients(port, 6, { transports: ['polling'], upgrade: false, reconnection: true });
  t.after(() => fleet.close());
  const line = await c.waitForLine(/Socket\.IO long-poll '400 Session ID unknown'/, 10000);
  assert.match(line, /start with --sticky ip/);
});

test('--no-adapter-relay: the adapter runs single-node again (serverCount() 1), as it did before corral relayed it', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--name', 'sionorelay', '--no-adapter-relay']);
  const port = await c.ready(2);
  const fleet = await sioClients(port, 1, { transports: ['websocket'] });
  t.after(() => fleet.close());
  await waitFor(() => fleet.clients[0].pids.length === 1, 10000, 'the client connected');
  assert.equal(await fleet.clients[0].timeout(5000).emitWithAck('servers'), 1);
});

test('Socket.IO with 8 long-polling clients: stop finishes well within the grace, exit 0', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'siostop', '--grace', '10000']);
  const port = await c.ready(2);
  const fleet = await sioClients(port, 8, { transports: ['polling'], upgrade: false });
  t.after(() => fleet.close());
  await waitFor(() => fleet.clients.every((s) => s.pids.length === 1), 10000, 'every client connected');
  const sentAt = Date.now();
  c.signal('SIGTERM');
  assert.equal((await c.waitForExit(10000)).code, 0, c.output);
  const took = Date.now() - sentAt;
  assert.ok(took < 3000, `stop took ${took} ms`);
  assert.doesNotMatch(c.output, /grace period/);
  await waitFor(() => fleet.clients.every((s) => s.disconnects.length === 1), 5000, 'every client to see the disconnect');
});

test('Socket.IO with 8 long-polling clients: a reload finishes well within the grace; the clients reconnect to the new workers', async (t) => {
  const c = startCorral(t, [APP, '-w', '2', '--sticky', 'header:x-client', '--name', 'sioreload', '--grace', '10000', ...QUICK_CANARY]);
  const port = await c.ready(2);
  const fleet = await sioClients(port, 8, { transports: ['polling'], upgrade: false, reconnection: true });
  t.after(() => fleet.close());
  const before = await readyPids(c);
  await waitFor(() => fleet.clients.every((s) => s.pids.length === 1), 10000, 'every client connected');
  const started = Date.now();
  const r = await runCli(['reload', 'sioreload'], { home: c.home, timeout: 30000 });
  assert.equal(r.code, 0, r.stderr);
  await waitFor(async () => (await c.status()).workers.length === 2, 10000, 'the old workers to exit');
  const took = Date.now() - started;
  assert.ok(took < 8000, `reload and drain took ${took} ms`);
  assert.doesNotMatch(c.output, /grace period/);
  const after = await readyPids(c);
  await waitFor(() => fleet.clients.every((s) => after.includes(s.pids[s.pids.length - 1]) && s.connected), 10000, 'every client back, on a new worker').catch((e) => { throw new Error(e.message + JSON.stringify({ after, before, c: fleet.clients.map((s) => [s.pids, s.connected, s.disconnects]), errors: fleet.errors }) + c.output); });
  for (const s of fleet.clients) assert.ok(!before.includes(s.pids[s.pids.length - 1]));
  // Round trips work again on the new workers.
  await Promise.all(fleet.clients.map(async (s) => assert.equal((await s.timeout(5000).emitWithAck('echo', 1)).n, 1)));
});

test('examples/socket.io: a chat message from a client of one worker reaches the clients of both', async (t) => {
  const c = startCorral(t, [path.join(ROOT, 'examples/socket.io/server.js'), '-w', '2', '--sticky', 'header:x-client', '--name', 'siochat']);
  const port = await c.ready(2);
  const { io } = await import('socket.io-client');
  const clients = Array.from({ length: 8 }, (_, i) => `client-${i}`).map((key) => {
    const s = io(`http://127.0.0.1:${port}`, { extraHeaders: { 'x-client': key }, forceNew: true, reconnection: false });
    s.chat = [];
    s.on('chat', (m) => s.chat.push(m));
    s.welcome = new Promise((r) => s.once('welcome', r));
    return s;
  });
  t.after(() => clients.forEach((s) => s.close()));
  const workers = new Set((await Promise.all(clients.map((s) => s.welcome))).map((w) => w.worker));
  assert.equal(workers.size, 2, 'the clients are on both workers');
  await clients[0].timeout(5000).emitWithAck('chat', 'hello all');
  await waitFor(() => clients.every((s) => s.chat.length === 1 && s.chat[0].text === 'hello all'), 5000, 'the message on every client');
  const page = await new Promise((resolve, reject) => {
    import('node:http').then(({ default: http }) => http.get({ host: '127.0.0.1', port, path: '/', headers: { 'x-client': 'browser' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject));
  });
  assert.match(page, /socket\.io\/socket\.io\.js/);
});
