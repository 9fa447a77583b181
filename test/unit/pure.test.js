import assert from 'node:assert/strict';
import { test } from 'node:test';
import { restartDelay, failuresAfterExit, isCrashLoop } from '../../dist/primary/backoff.js';
import { cgroupCpuQuota, parseCpuMax, usableCpus } from '../../dist/primary/cpus.js';
import { parseCommand } from '../../dist/cli/args.js';
import { parseRequest } from '../../dist/control/protocol.js';
import { LineSplitter } from '../../dist/logs/lines.js';
import { summarizeError } from '../../dist/logs/worker-output.js';
import { withReusePort } from '../../dist/worker/listen-args.js';
import { parseSize, parseDuration } from '../../dist/config/units.js';
import { chooseStrategy } from '../../dist/primary/balancing.js';

test('restart back-off: at once, then 100 ms doubling to a 15 s cap', () => {
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => restartDelay(n)), [0, 100, 200, 400, 800]);
  assert.equal(restartDelay(40), 15000);
  assert.equal(failuresAfterExit(5, 29_999), 6);
  assert.equal(failuresAfterExit(5, 30_000), 1);
  assert.equal(isCrashLoop(false, 3), true);
  assert.equal(isCrashLoop(true, 30), false);
});

function fakeFs(files) {
  return (f) => files[f];
}

test('cgroup v2 cpu.max caps the worker count, fractions round up, the tightest ancestor wins', () => {
  assert.equal(parseCpuMax('max 100000'), null);
  assert.equal(parseCpuMax('150000 100000'), 1.5);
  const fs = fakeFs({
    '/proc/self/cgroup': '0::/kubepods/pod1\n',
    '/sys/fs/cgroup/kubepods/pod1/cpu.max': 'max 100000',
    '/sys/fs/cgroup/kubepods/cpu.max': '250000 100000',
    '/sys/fs/cgroup/cpu.max': 'max 100000',
  });
  assert.equal(cgroupCpuQuota(fs), 2.5);
  assert.equal(usableCpus(fs, undefined, 8), 3);
  assert.equal(usableCpus(fs, undefined, 2), 2, 'never more than the affinity count');
  const tiny = fakeFs({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '50000 100000' });
  assert.equal(usableCpus(tiny, undefined, 8), 1, 'a quota below one CPU still gets one worker');
});

test('cgroup v1 cfs quota is read too; -1 means none', () => {
  const fs = fakeFs({
    '/proc/self/cgroup': '4:memory:/x\n1:cpu,cpuacct:/docker/abc\n',
    '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '200000',
    '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000',
  });
  assert.equal(usableCpus(fs, undefined, 16), 2);
  const none = fakeFs({
    '/proc/self/cgroup': '1:cpu:/\n',
    '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1',
    '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
  });
  assert.equal(usableCpus(none, undefined, 4), 4);
});

test('CLI: options before or after the script, script args after --', () => {
  const a = parseCommand(['server.js', '-w', '4', '--port', '8080', '--name', 'web', '--', '--verbose', '-w', '9']);
  assert.deepEqual(a, { kind: 'start', configPath: undefined, options: { script: 'server.js', args: ['--verbose', '-w', '9'], workers: 4, port: 8080, name: 'web' } });
  const b = parseCommand(['start', '--workers', 'auto', 'server.js', '--max-memory', '512M', '--grace', '5s']);
  assert.equal(b.options.workers, 'auto');
  assert.equal(b.options.maxMemory, 512 * 1024 * 1024);
  assert.equal(b.options.grace, 5000);
});

test('CLI: scale takes n, +k and -k (a negative count is a value, not an option)', () => {
  assert.deepEqual(parseCommand(['scale', '-1']), { kind: 'scale', name: undefined, target: { delta: -1 }, force: false, home: undefined, timeout: undefined });
  assert.deepEqual(parseCommand(['scale', 'web', '+2']), { kind: 'scale', name: 'web', target: { delta: 2 }, force: false, home: undefined, timeout: undefined });
  assert.deepEqual(parseCommand(['scale', 'web', '4', '--force']), { kind: 'scale', name: 'web', target: { workers: 4 }, force: true, home: undefined, timeout: undefined });
  assert.throws(() => parseCommand(['scale', '0']), { code: 'E_USAGE', message: /at least 1/ });
  assert.throws(() => parseCommand(['scale']), { code: 'E_USAGE' });
});

test('CLI: bad values name the option and what it expects', () => {
  assert.throws(() => parseCommand(['s.js', '-w', '-3']), { message: '--workers must be a positive integer or "auto", got "-3"' });
  assert.throws(() => parseCommand(['s.js', '--port', '70000']), { message: /--port must be a port number/ });
  assert.throws(() => parseCommand(['s.js', '--grace', 'soon']), { message: /--grace must be a duration/ });
  assert.throws(() => parseCommand(['s.js', '--env', 'NOEQUALS']), { message: '--env must be KEY=VALUE, got "NOEQUALS"' });
  assert.equal(parseSize('x', '2G'), 2 * 1024 ** 3);
  assert.equal(parseDuration('x', '250ms'), 250);
});

test('control protocol: typed requests, clear errors for garbage', () => {
  assert.deepEqual(parseRequest('{"v":1,"id":7,"cmd":"scale","delta":-1}'), { v: 1, id: 7, cmd: 'scale', delta: -1, force: false });
  assert.throws(() => parseRequest('garbage'), { code: 'E_PROTOCOL', message: /not valid JSON/ });
  assert.throws(() => parseRequest('[1]'), { message: /JSON object/ });
  assert.throws(() => parseRequest('{"v":1,"cmd":"status"}'), { message: /needs an "id"/ });
  assert.throws(() => parseRequest('{"v":2,"id":1,"cmd":"status"}'), { message: /unsupported protocol version/ });
  assert.throws(() => parseRequest('{"v":1,"id":1,"cmd":"rm -rf"}'), { message: /unknown command/ });
  assert.throws(() => parseRequest('{"v":1,"id":1,"cmd":"scale","workers":"9"}'), { message: /integer/ });
});

test('line splitter: whole lines, CRLF, bounded partial lines, overflow refusal', () => {
  const out = [];
  const s = new LineSplitter((l) => out.push(l), 10);
  s.push('ab');
  s.push('c\r\nde\nf');
  s.push('0123456789012');
  s.flush();
  assert.deepEqual(out, ['abc', 'de', 'f012345678', '9012']);
  let overflowed = 0;
  const refused = [];
  const r = new LineSplitter((l) => refused.push(l), 4, () => overflowed++);
  r.push('ok\n123456');
  r.push('\nmore\n');
  assert.deepEqual(refused, ['ok']);
  assert.equal(overflowed, 1);
});

test('the error line is picked out of a crash trace', () => {
  const trace = ['/app/server.js:3', '  foo(', '     ^', '', 'SyntaxError: Unexpected token', '    at wrapSafe (node:internal)', '', 'Node.js v20.0.0'];
  assert.equal(summarizeError(trace), 'SyntaxError: Unexpected token');
  assert.equal(summarizeError(["Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x'"]), "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x'");
  assert.equal(summarizeError(['something odd happened', '    at x']), 'something odd happened');
});

test('listen() arguments gain reusePort in every shape that takes a port', () => {
  const cb = () => {};
  assert.deepEqual(withReusePort([3000, '127.0.0.1', cb]), [{ port: 3000, host: '127.0.0.1', reusePort: true }, cb]);
  assert.deepEqual(withReusePort([{ port: 0 }]), [{ port: 0, reusePort: true }]);
  assert.deepEqual(withReusePort(['8080', 511]), [{ port: 8080, backlog: 511, reusePort: true }]);
  assert.deepEqual(withReusePort([cb]), [{ port: 0, reusePort: true }, cb]);
  assert.deepEqual(withReusePort(['/tmp/sock']), ['/tmp/sock']);
  assert.deepEqual(withReusePort([{ path: '/tmp/s' }]), [{ path: '/tmp/s' }]);
});

test('strategy: reuseport needs Node >= 22.12 on Linux; auto picks os', () => {
  assert.throws(() => chooseStrategy('reuseport', '20.20.0', 'linux'), { code: 'E_USAGE', message: /Node >= 22\.12/ });
  assert.equal(chooseStrategy('reuseport', '22.12.0', 'linux').balancer.name, 'reuseport');
  assert.equal(chooseStrategy('auto', '24.0.0', 'linux').balancer.name, 'os');
  assert.equal(chooseStrategy('rr').balancer.name, 'rr');
});

test('reuseport warns unless tcp_migrate_req moves queued connections on reload', async () => {
  const { reusePortCaveat } = await import('../../dist/primary/balancing.js');
  assert.match(reusePortCaveat(() => '0\n'), /tcp_migrate_req=1/);
  assert.match(reusePortCaveat(() => undefined), /tcp_migrate_req=1/);
  assert.equal(reusePortCaveat(() => '1\n'), null);
});

test('TypeScript scripts: native stripping, the flag, tsx, or a clear error', async () => {
  const { typeScriptExecArgv } = await import('../../dist/primary/typescript.js');
  assert.deepEqual(typeScriptExecArgv('/a/server.js', '/a', '20.0.0', false), []);
  assert.deepEqual(typeScriptExecArgv('/a/server.ts', '/a', '24.1.0', false), []);
  assert.deepEqual(typeScriptExecArgv('/a/server.mts', '/a', '22.6.0', false), ['--experimental-strip-types']);
  assert.deepEqual(typeScriptExecArgv('/a/server.ts', '/a', '20.20.2', true), ['--import', 'tsx']);
  assert.throws(() => typeScriptExecArgv('/a/server.ts', '/a', '20.20.2', false), { code: 'E_USAGE', message: /npm i -D tsx/ });
});

test('signalProcess refuses every pid that is not one process: 0, -1, negative, undefined, NaN, fractions', async () => {
  const { signalProcess, processExists } = await import('../../dist/common/signal.js');
  for (const pid of [0, -1, -4711, undefined, Number.NaN, 1.5, Infinity]) {
    assert.throws(() => signalProcess(pid, 'SIGKILL'), { code: 'E_UNSAFE_SIGNAL' }, `pid ${pid}`);
  }
  assert.equal(signalProcess(process.pid, 0), true);
  assert.equal(processExists(process.pid), true);
  assert.equal(processExists(2 ** 22 + 12345), false, 'a pid beyond pid_max does not exist');
});

test('spawn errors name the missing working directory instead of blaming node', async () => {
  const { explainSpawnError } = await import('../../dist/primary/spawn.js');
  const enoent = Object.assign(new Error('spawn /usr/bin/node ENOENT'), { code: 'ENOENT' });
  assert.equal(explainSpawnError(enoent, '/srv/app/releases/v1', () => false).message, 'spawn ENOENT (cwd /srv/app/releases/v1 no longer exists)');
  const eagain = Object.assign(new Error('spawn EAGAIN'), { code: 'EAGAIN' });
  assert.match(explainSpawnError(eagain, '/srv', () => true).message, /^spawn EAGAIN \(too many processes/);
});
