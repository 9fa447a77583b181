// examples/docker: the Dockerfile says what the README promises, and its
// ENTRYPOINT + CMD, run the way a container runtime runs them (PID 1 of a
// fresh PID namespace, the image's WORKDIR layout, its ENV), drain on
// `docker stop`'s SIGTERM and exit 0. No Docker engine is needed for that.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseCommand } from '../../dist/cli/args.js';
import { KILL_TIMEOUT_MS } from '../../dist/primary/run.js';
import { freePort, get, tempHome } from '../helpers.js';
import { namespaceUnavailable, startNamespace } from '../namespace.js';
import { EXAMPLE, dockerfile, execForm, finalStage, findTini, imageEnv, imageLayout, last } from '../image.js';

/** `docker stop` waits this long before SIGKILL unless told otherwise (-t). */
const DOCKER_STOP_TIMEOUT_MS = 10_000;

test('Dockerfile: multi-stage, npm ci --omit=dev, a non-root user, tini as the entrypoint, corral\'s bin as CMD in exec form', () => {
  assert.ok(finalStage >= 1, 'more than one stage');
  assert.ok(dockerfile.some((i) => i.op === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args)), 'npm ci --omit=dev');
  const user = last('USER');
  assert.ok(user && !/^(root|0)(:|$)/.test(user.args), `the final stage runs as a non-root user (USER ${user?.args})`);
  const entrypoint = execForm(last('ENTRYPOINT').args);
  assert.ok(entrypoint, 'ENTRYPOINT in exec form');
  assert.match(entrypoint[0], /\/tini$/);
  assert.equal(entrypoint.at(-1), '--');
  assert.ok(dockerfile.some((i) => i.op === 'RUN' && i.stage === finalStage && /apt-get install .*\btini\b/.test(i.args)), 'tini is installed in the final image');
  const cmd = execForm(last('CMD').args);
  assert.ok(cmd, 'CMD in exec form: no shell in between');
  assert.equal(cmd[0], 'node_modules/.bin/corral', 'the bin directly, not npm start');
  assert.notEqual(last('STOPSIGNAL')?.args ?? 'SIGTERM', 'SIGKILL');
});

test('Dockerfile: the CMD is valid corral usage and its stop deadline fits in docker stop\'s default 10 s', () => {
  const cmd = execForm(last('CMD').args);
  const parsed = parseCommand(cmd.slice(1));
  assert.equal(parsed.kind, 'start');
  const grace = parsed.options.grace ?? 10_000;
  assert.ok(grace + KILL_TIMEOUT_MS < DOCKER_STOP_TIMEOUT_MS, `--grace ${grace} ms + ${KILL_TIMEOUT_MS} ms must end before docker's SIGKILL`);
});

test('.dockerignore keeps node_modules, .git and env files out of the build context', () => {
  const ignored = readFileSync(path.join(EXAMPLE, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const entry of ['node_modules', '.git', '.env']) assert.ok(ignored.includes(entry), entry);
});

const tini = findTini();
const why = namespaceUnavailable() ?? (tini ? null : 'tini is not installed (apt-get install tini; .ci/run does)');
if (why) console.log(`# skipping the container run of examples/docker: ${why}`);

test('docker stop, as the runtime does it: SIGTERM to tini (PID 1) reaches corral, the in-flight request gets its 200, exit 0', { skip: why ?? false }, async (t) => {
  const app = imageLayout();
  const port = await freePort();
  const entrypoint = execForm(last('ENTRYPOINT').args).map((w, i) => (i === 0 ? tini : w));
  const cmd = execForm(last('CMD').args);
  const env = { ...imageEnv(), PORT: String(port), CORRAL_HOME: tempHome(), PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` };
  assert.equal(env.NODE_ENV, 'production');
  const ns = startNamespace(t, [...entrypoint, ...cmd], { cwd: app, env });
  await ns.waitForLine(/worker \d+ \(pid \d+\) ready/);
  await ns.waitForLine(/listening on \d+/);
  const slow = get(port, '/slow');
  await new Promise((r) => setTimeout(r, 300));
  const stoppedAt = Date.now();
  await ns.signal('SIGTERM');
  const res = await slow;
  assert.equal(res.status, 200);
  assert.match(res.body, /^hello from pid \d+/);
  const { code } = await ns.waitForExit(DOCKER_STOP_TIMEOUT_MS);
  assert.equal(code, 0, ns.output);
  assert.ok(Date.now() - stoppedAt < DOCKER_STOP_TIMEOUT_MS, 'done before docker would SIGKILL');
  assert.doesNotMatch(ns.output, /corral is PID 1/, 'under tini corral is not PID 1 and does not warn');
});
