// Pure pieces of the real-time support: WebSocket frame boundaries and the
// Close frame, the sticky key of a request head, rendezvous hashing and the
// affinity table, the Socket.IO adapter relay. (The supervisor's side,
// lingering drains and the router's view, is in supervisor.test.js.)
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { resolveStartOptions } from '../../dist/config/options.js';
import { parseConfig, validateOptions } from '../../dist/config/schema.js';
import { toStickyKey } from '../../dist/config/sticky.js';
import { AdapterRelay, isAdapterMessage } from '../../dist/primary/adapter-relay.js';
import { clientIp, headEnd, keyFromHead, looksLikeHttp1 } from '../../dist/primary/sticky/key.js';
import { Affinity, hashKey, rendezvous } from '../../dist/primary/sticky/pick.js';
import { isLongPoll } from '../../dist/worker/tracker.js';
import { OutgoingFrames, WebSocketGoodbye, closeFrame } from '../../dist/worker/websocket.js';
import { tick } from './fakes.js';

const HEAD_101 = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';

/** A server frame (unmasked) with `len` payload bytes. */
function frame(opcode, len) {
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const b = Buffer.alloc(2 + ext + len, 0x61);
  b[0] = 0x80 | opcode;
  if (ext === 0) b[1] = len;
  else if (ext === 2) (b[1] = 126), b.writeUInt16BE(len, 2);
  else (b[1] = 127), b.writeBigUInt64BE(BigInt(len), 2);
  return b;
}

test('OutgoingFrames: knows a frame boundary through heads and payloads split at every byte, 7/16/64-bit lengths', () => {
  const stream = Buffer.concat([Buffer.from(HEAD_101), frame(1, 5), frame(2, 300), frame(2, 70_000), frame(9, 0)]);
  for (const step of [1, 3, 7, 1000, stream.length]) {
    const f = new OutgoingFrames();
    const boundaries = [];
    for (let at = 0; at < stream.length; at += step) {
      f.feed(stream.subarray(at, Math.min(at + step, stream.length)));
      if (f.atBoundary) boundaries.push(Math.min(at + step, stream.length));
    }
    assert.ok(f.isWebSocket);
    assert.ok(f.atBoundary, `step ${step}: at the end the stream is between frames`);
    const head = HEAD_101.length;
    const valid = new Set([head, head + 7, head + 7 + 304, head + 7 + 304 + 70_010, stream.length]);
    for (const b of boundaries) assert.ok(valid.has(b), `step ${step}: boundary claimed at ${b}`);
  }
});

test('OutgoingFrames: a refused upgrade is not a WebSocket; a Close frame the app writes is seen', () => {
  const refused = new OutgoingFrames();
  refused.feed(Buffer.from('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  assert.equal(refused.isWebSocket, false);
  const f = new OutgoingFrames();
  f.feed(Buffer.from(HEAD_101));
  assert.equal(f.closeSent, false);
  f.feed(closeFrame(1000, 'bye'));
  assert.equal(f.closeSent, true);
});

test('closeFrame: 1001 with its reason, unmasked, reason cut to fit a control frame', () => {
  const f = closeFrame(1001, 'going away');
  assert.deepEqual([...f.subarray(0, 4)], [0x88, 12, 0x03, 0xe9]);
  assert.equal(f.subarray(4).toString(), 'going away');
  assert.equal(closeFrame(1001, 'x'.repeat(500)).length, 2 + 125);
});

/** The socket side of WebSocketGoodbye: records what reaches the wire. */
class FakeSocket extends EventEmitter {
  wire = [];
  destroyed = false;
  ended = false;
  write(chunk, encoding, cb) {
    this.wire.push(Buffer.from(chunk));
    const done = typeof encoding === 'function' ? encoding : cb;
    if (done) process.nextTick(done);
    return true;
  }
  end(cb) {
    this.ended = true;
    if (typeof cb === 'function') process.nextTick(cb);
    return this;
  }
  destroy() {
    this.destroyed = true;
  }
}

test('WebSocketGoodbye: the Close frame waits for the end of a frame the app is writing in pieces; what follows it is dropped, callbacks still run', async () => {
  const socket = new FakeSocket();
  const ws = new WebSocketGoodbye(socket);
  socket.write(HEAD_101);
  const big = frame(2, 1000);
  socket.write(big.subarray(0, 500));
  assert.equal(ws.close(1001, 'going away'), true);
  assert.equal(socket.wire.length, 2, 'nothing inside the frame');
  socket.write(big.subarray(500));
  assert.deepEqual(socket.wire[3], closeFrame(1001, 'going away'));
  let called = false;
  socket.write(frame(1, 3), () => (called = true));
  socket.end(frame(1, 3));
  await tick();
  assert.equal(socket.wire.length, 4, 'no data after the Close frame');
  assert.equal(called, true);
  assert.equal(socket.ended, true);
  assert.equal(ws.close(1001, 'again'), false, 'one Close frame only');
});

test('WebSocketGoodbye: end(chunk, cb) before any close writes the chunk through the frame watcher and calls cb once', async () => {
  const socket = new FakeSocket();
  const ws = new WebSocketGoodbye(socket);
  socket.write(HEAD_101);
  let calls = 0;
  socket.end(closeFrame(1000, 'done'), () => (calls += 1));
  await tick();
  assert.equal(calls, 1);
  assert.equal(ws.frames.closeSent, true, 'the app\'s own Close frame was seen');
  assert.equal(ws.close(1001, 'late'), false);
});

test('WebSocketGoodbye.goAway: the Close frame goes right after the app answered the client\'s next message', async () => {
  const socket = new FakeSocket();
  const ws = new WebSocketGoodbye(socket);
  socket.write(HEAD_101);
  ws.goAway('bye');
  assert.equal(socket.wire.length, 1, 'not before the client has spoken (or 500 ms)');
  socket.emit('data', Buffer.from('client message'));
  socket.write(frame(1, 4)); // the app's answer
  await tick();
  assert.equal(socket.wire.length, 3);
  assert.equal(socket.wire[2][0], 0x88);
});

test('isLongPoll: Engine.IO polling GETs with a session, on any path', () => {
  const req = (method, url) => ({ method, url });
  assert.equal(isLongPoll(req('GET', '/socket.io/?EIO=4&transport=polling&t=x&sid=abc')), true);
  assert.equal(isLongPoll(req('GET', '/rt/?sid=abc&EIO=3&transport=polling')), true);
  assert.equal(isLongPoll(req('POST', '/socket.io/?EIO=4&transport=polling&sid=abc')), false, 'a POST carries data: it finishes');
  assert.equal(isLongPoll(req('GET', '/socket.io/?EIO=4&transport=polling&t=x')), false, 'the handshake is answered at once');
  assert.equal(isLongPoll(req('GET', '/search?transport=polling&sid=1')), false);
});

test('keyFromHead: headers case-insensitive and joined, cookies by name, absent is undefined', () => {
  const head = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-Client:  abc \r\nCookie: theme=dark; sid=s1\r\nx-client: def\r\n\r\n');
  assert.equal(keyFromHead(head, { by: 'header', name: 'x-client' }), 'abc, def');
  assert.equal(keyFromHead(head, { by: 'cookie', name: 'sid' }), 's1');
  assert.equal(keyFromHead(head, { by: 'cookie', name: 'sid2' }), undefined);
  assert.equal(keyFromHead(head, { by: 'header', name: 'x-forwarded-for' }), undefined);
  assert.equal(keyFromHead(Buffer.from('GET / HTTP/1.1\r\nX-Client: partial'), { by: 'header', name: 'x-client' }), undefined, 'a line not complete yet');
  assert.equal(headEnd(head), head.length);
  assert.equal(headEnd(head.subarray(0, head.length - 1)), -1);
});

test('looksLikeHttp1: a TLS ClientHello or the HTTP/2 preface is not a request to read a key from', () => {
  assert.equal(looksLikeHttp1(Buffer.from('GET / HTTP/1.1\r\n')), true);
  assert.equal(looksLikeHttp1(Buffer.from([0x16, 0x03, 0x01])), false);
  assert.equal(looksLikeHttp1(Buffer.from('PRI * HTTP/2.0\r\n')), false);
  assert.equal(clientIp('::ffff:10.0.0.7'), '10.0.0.7');
});

test('--sticky: ip, header:NAME (matched case-insensitively), cookie:NAME; anything else names the forms', () => {
  assert.deepEqual(toStickyKey('ip'), { by: 'ip' });
  assert.deepEqual(toStickyKey('header:X-Client-Id'), { by: 'header', name: 'x-client-id' });
  assert.deepEqual(toStickyKey('cookie:SID'), { by: 'cookie', name: 'SID' });
  for (const bad of ['session', 'header:', 'header:a b', 'cookie:x;y']) {
    assert.throws(() => validateOptions({ script: 'a.js', sticky: bad }, 'cli', (k) => `--${k}`), /--sticky must be ip, header:NAME or cookie:NAME/, bad);
  }
});

test('config file and library: sticky and adapterRelay are options like the others', () => {
  const { apps: [app] } = parseConfig({ apps: [{ script: 'a.js', sticky: 'cookie:sid', adapterRelay: false }] }, 'c.json');
  assert.deepEqual([app.sticky, app.adapterRelay], ['cookie:sid', false]);
  assert.throws(() => parseConfig({ apps: [{ script: 'a.js', sticky: 'session' }] }, 'c.json'), /apps\[0\]\.sticky must be ip, header:NAME or cookie:NAME/);
  assert.throws(() => parseConfig({ apps: [{ script: 'a.js', adapterRelay: 'no' }] }, 'c.json'), /apps\[0\]\.adapterRelay must be/);
  const script = new URL(import.meta.url).pathname;
  const resolved = resolveStartOptions({ script, sticky: 'header:X-Client' });
  assert.deepEqual([resolved.sticky, resolved.adapterRelay], [{ by: 'header', name: 'x-client' }, true]);
  assert.throws(() => resolveStartOptions({ script, sticky: 'ip', strategy: 'reuseport' }), /sticky routes every TCP connection through the primary by its key, in place of strategy reuseport; drop strategy/);
});

test('rendezvous: a slot that goes away moves only its own keys; the keys spread evenly', () => {
  const all = [0, 1, 2, 3].map((slot) => ({ slot }));
  const keys = Array.from({ length: 4000 }, (_, i) => `k${i}`);
  const before = new Map(keys.map((k) => [k, rendezvous(all, hashKey(k)).slot]));
  const counts = [0, 0, 0, 0];
  for (const s of before.values()) counts[s] += 1;
  for (const n of counts) assert.ok(n > 800 && n < 1200, `uneven: ${counts}`);
  const without2 = all.filter((w) => w.slot !== 2);
  for (const k of keys) {
    const now = rendezvous(without2, hashKey(k)).slot;
    if (before.get(k) !== 2) assert.equal(now, before.get(k), `${k} moved although its slot stayed`);
  }
  assert.equal(rendezvous([], 1), undefined);
});

test('Affinity: least recently used out at capacity; a gone worker\'s keys are forgotten', () => {
  const a = new Affinity(2);
  a.set('x', 1);
  a.set('y', 2);
  a.get('x');
  a.set('z', 3);
  assert.equal(a.get('y'), undefined, 'y was the least recently used');
  assert.equal(a.get('x'), 1);
  a.forgetWorker(1);
  assert.equal(a.get('x'), undefined);
  assert.equal(a.size, 1);
});

test('Affinity: keys a client chose (16 KiB header values) do not pile up in the primary\'s memory', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const a = new Affinity(100_000);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 2000; i++) a.set(`:::8080\0header:${String(i).padStart(16 * 1024, 'x')}`, i % 4);
  gc();
  const perKey = (process.memoryUsage().heapUsed - before) / 2000;
  assert.equal(a.size, 2000);
  assert.ok(perKey < 512, `${Math.round(perKey)} bytes kept per key`);
  assert.equal(a.get(`:::8080\0header:${String(7).padStart(16 * 1024, 'x')}`), 3);
});

test('AdapterRelay: a message goes to every other worker; a response only to the worker whose adapter asked', () => {
  const relay = new AdapterRelay();
  const peers = [0, 1, 2].map(() => ({ got: [], send(m) { this.got.push(m); } }));
  for (const p of peers) relay.add(p);
  relay.forward(peers[0], { source: '_sio_adapter', uid: 'a0', type: 3 });
  assert.deepEqual(peers.map((p) => p.got.length), [0, 1, 1]);
  relay.forward(peers[1], { source: '_sio_adapter', uid: 'a1', type: 8, requesterUid: 'a0' });
  assert.deepEqual(peers.map((p) => p.got.length), [1, 1, 1]);
  relay.remove(peers[2]);
  relay.forward(peers[0], { source: '_sio_adapter', uid: 'a0', type: 3 });
  assert.deepEqual(peers.map((p) => p.got.length), [1, 2, 1]);
  assert.equal(isAdapterMessage({ source: '_sio_adapter' }), true);
  assert.equal(isAdapterMessage({ corral: 1, type: 'heartbeat' }), false);
});
