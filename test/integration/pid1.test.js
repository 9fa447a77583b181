// corral as PID 1 of a PID namespace, as in a container started without an
// init: SIGTERM/SIGINT drain and exit 0 as anywhere else, the zombie caveat
// is said once, and a stop signal that comes before corral's handlers exist
// still ends it (the kernel drops unhandled signals to init).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, FIXTURES, freePort, get, tempHome } from '../helpers.js';
import { namespaceUnavailable, startNamespace } from '../namespace.js';

const APP = path.join(FIXTURES, 'app.cjs');
const why = namespaceUnavailable();
if (why) console.log(`# skipping the PID 1 tests: ${why}`);

async function drainAsPid1(t, signal) {
  const port = await freePort();
  const ns = startNamespace(t, [process.execPath, CLI, APP, '-w', '2', '--port', String(port), '--grace', '10s'], { env: { CORRAL_HOME: tempHome() } });
  await ns.waitForLine(/worker 1 \(pid \d+\) ready/);
  const slow = get(port, '/slow?ms=1500');
  await new Promise((r) => setTimeout(r, 300));
  await ns.signal(signal);
  const res = await slow;
  assert.equal(res.status, 200);
  assert.match(res.body, /^slow \d+$/);
  const { code } = await ns.waitForExit();
  assert.equal(code, 0, ns.output);
  assert.match(ns.output, /stopped \(exit code 0\)/);
  const warnings = ns.lines.filter((l) => l.includes('corral is PID 1'));
  assert.equal(warnings.length, 1, 'the zombie caveat is said once');
  assert.match(warnings[0], /docker run --init.*tini/);
}

test('PID 1: SIGTERM drains (a slow request in flight gets its 200) and exits 0', { skip: why ?? false }, (t) => drainAsPid1(t, 'SIGTERM'));

test('PID 1: SIGINT does the same', { skip: why ?? false }, (t) => drainAsPid1(t, 'SIGINT'));

test('PID 1: SIGTERM while the config file still loads ends corral instead of being dropped', { skip: why ?? false }, async (t) => {
  const dir = tempHome();
  const config = path.join(dir, 'corral.config.mjs');
  writeFileSync(config, `console.error('config: loading');\nawait new Promise((r) => setTimeout(r, 8000));\nexport default { apps: [{ script: ${JSON.stringify(APP)} }] };\n`);
  const ns = startNamespace(t, [process.execPath, CLI, '--config', config], { env: { CORRAL_HOME: tempHome() } });
  await ns.waitForLine(/config: loading/);
  const sentAt = Date.now();
  await ns.signal('SIGTERM');
  const { code } = await ns.waitForExit(5000);
  assert.equal(code, 143, ns.output);
  assert.ok(Date.now() - sentAt < 4000, 'it did not wait for the config to finish loading');
  assert.doesNotMatch(ns.output, /starting \d+ worker/);
});
