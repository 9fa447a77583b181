// The log sink when its reader goes away: a closed pipe, a stalled reader,
// and many pauses must never stop the primary, lose its own notes, or pile
// up listeners.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { TextSink, STALL_MS } from '../../dist/logs/sink.js';

/** A writable that accepts `room` writes, then reports back-pressure until drain(). */
class FakeOut extends EventEmitter {
  lines = [];
  room = Infinity;
  write(text) {
    this.lines.push(text);
    this.room -= 1;
    return this.room > 0;
  }
  drain() {
    this.room = Infinity;
    this.emit('drain');
  }
}

const line = (msg) => ({ time: new Date(), level: 'info', source: 'worker', worker: 0, pid: 1, msg });

/** A sink whose stdout is full after one line, and a producer waiting for it to drain. */
function blockedSink() {
  const out = new FakeOut();
  const err = new FakeOut();
  const sink = new TextSink('app', true, out, err);
  out.room = 1;
  assert.equal(sink.write(line('a')), false);
  const producer = { resumed: 0 };
  sink.onDrain(() => (producer.resumed += 1));
  return { out, err, sink, producer };
}

test('a closed stdout (EPIPE): lines are dropped and counted, paused producers resume, stderr says why once', async () => {
  const { out, err, sink, producer } = blockedSink();
  out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  assert.equal(producer.resumed, 1, 'a producer paused on the dead stream resumes');
  for (let i = 0; i < 5; i++) assert.equal(sink.write(line(`b${i}`)), true);
  assert.equal(sink.dropped, 5);
  assert.equal(out.lines.length, 1, 'nothing more is written to the dead stream');
  assert.equal(err.lines.filter((l) => /stdout is closed \(EPIPE\)/.test(l)).length, 1);
  out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  assert.equal(err.lines.filter((l) => /stdout is closed/.test(l)).length, 1, 'said once');
});

test('a stalled reader: back-pressure first, drops after STALL_MS, the gap reported when it reads again', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const { out, err, sink, producer } = blockedSink();
  sink.write(line('still buffered'));
  assert.equal(sink.dropped, 0, 'a short stall loses nothing');
  t.mock.timers.tick(STALL_MS);
  assert.equal(producer.resumed, 1, 'past the stall the producers resume');
  sink.write(line('dropped'));
  assert.equal(sink.dropped, 1);
  t.mock.timers.tick(1500);
  out.drain();
  assert.match(err.lines.at(-1), /1 log line dropped while stdout was blocked for 3\.5 s/);
  sink.write(line('flows again'));
  assert.equal(out.lines.at(-1), '[app 0 1] flows again\n');
});

test('many pauses add no listeners: one drain and one error listener per stream', () => {
  const out = new FakeOut();
  const err = new FakeOut();
  const sink = new TextSink('app', true, out, err);
  for (let i = 0; i < 50; i++) {
    out.room = 1;
    sink.write(line(`x${i}`));
    sink.onDrain(() => {});
    out.drain();
  }
  assert.equal(out.listenerCount('drain'), 1);
  assert.equal(err.listenerCount('drain'), 1);
  assert.equal(out.listenerCount('error'), 1);
});
