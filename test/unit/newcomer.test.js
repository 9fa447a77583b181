// Issue 14's pure parts: one validation for CLI, config and start(); help
// per command; names; status formatting; log merging and the ring; the
// watcher's ignore rules.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseCommand } from '../../dist/cli/args.js';
import { formatBytes, formatStatus, useColor } from '../../dist/cli/format.js';
import { generalHelp, usageLine, verbHelp } from '../../dist/cli/usage.js';
import { VERBS } from '../../dist/cli/verbs.js';
import { defaultName } from '../../dist/config/options.js';
import { OPTIONS, flagLabel, parseConfig, validateOptions } from '../../dist/config/schema.js';
import { pickByDirectory } from '../../dist/control/client.js';
import { LogRing } from '../../dist/logs/ring.js';
import { jsonLine, textLine } from '../../dist/logs/sink.js';
import { explainError } from '../../dist/logs/worker-output.js';
import { displayAddress } from '../../dist/common/address.js';
import { globTest, ignoreRule } from '../../dist/primary/watch.js';

/** The same mistake through the three doors: CLI flag, config key, start() option. */
function threeWays(key, value, cliValue = String(value)) {
  const messages = [];
  for (const attempt of [
    () => parseCommand(['s.js', flagLabel(key), cliValue]),
    () => parseConfig({ script: 's.js', [key]: value }, 'corral.config.json'),
    () => validateOptions({ script: 's.js', [key]: value }, 'api'),
  ]) {
    try {
      attempt();
      messages.push('accepted');
    } catch (err) {
      assert.equal(err.code, 'E_USAGE');
      messages.push(err.message);
    }
  }
  return messages;
}

test('one validation: CLI, config file and start() give the same one-line message for the same mistake', () => {
  assert.deepEqual(threeWays('port', 70000), [
    '--port must be a port number (0-65535), got "70000"',
    'corral.config.json: port must be a port number (0-65535), got 70000',
    'port must be a port number (0-65535), got 70000',
  ]);
  assert.deepEqual(threeWays('workers', 'four'), [
    '--workers must be a positive integer or "auto", got "four"',
    'corral.config.json: workers must be a positive integer or "auto", got "four"',
    'workers must be a positive integer or "auto", got "four"',
  ]);
  assert.deepEqual(threeWays('grace', 'soon').map((m) => m.replace(/^.*?grace/, 'grace')), Array(3).fill('grace must be a duration in ms (or with s/m, e.g. "10s"), got "soon"'));
});

test('one validation: a typo is refused everywhere, with the name it probably meant', () => {
  assert.throws(() => validateOptions({ script: 's.js', wrokers: 2 }, 'api'), { code: 'E_USAGE', message: /^wrokers: unknown option; did you mean workers\?/ });
  assert.throws(() => parseConfig({ script: 's.js', wrokers: 2 }, 'c.json'), { message: /^c\.json: wrokers: unknown key; did you mean workers\?/ });
  assert.throws(() => parseCommand(['s.js', '--wrokers', '2']), { message: /^unknown option --wrokers; did you mean --workers\?/ });
});

test('one validation: text forms are accepted everywhere ("10s", "512M", "8080")', () => {
  const fromCli = parseCommand(['s.js', '--grace', '10s', '--max-memory', '512M', '--port', '8080']).options;
  const fromApi = validateOptions({ script: 's.js', grace: '10s', maxMemory: '512M', port: '8080' }, 'api');
  const fromFile = parseConfig({ script: 's.js', grace: 10000, maxMemory: 536870912, port: 8080 }, 'c.json').apps[0];
  for (const o of [fromCli, fromApi, fromFile]) assert.deepEqual([o.grace, o.maxMemory, o.port], [10000, 536870912, 8080]);
});

test('every start option with a flag is in the help, and a config file with one app may drop the apps wrapper', () => {
  const help = generalHelp();
  for (const def of Object.values(OPTIONS)) if (def.flag && def.help) assert.ok(help.includes(`--${def.flag.long}`), def.flag.long);
  const single = parseConfig({ script: 'api.js', envFile: '.env', nodeArgs: ['--max-old-space-size=4096'] }, 'c.json');
  assert.equal(single.wrapped, false);
  assert.deepEqual(single.apps[0].nodeArgs, ['--max-old-space-size=4096']);
  assert.deepEqual(single.apps[0].envFile, ['.env']);
});

test('argument parsing works from tokens: values starting with a dash, optional values, switches', () => {
  assert.deepEqual(parseCommand(['s.js', '--node-arg', '--inspect=0', '--node-arg=--trace-warnings']).options.nodeArgs, ['--inspect=0', '--trace-warnings']);
  assert.equal(parseCommand(['s.js', '--watch']).options.watch, true);
  assert.deepEqual(parseCommand(['--watch=src,lib', 's.js']).options.watch, ['src', 'lib']);
  assert.equal(parseCommand(['--watch', 's.js']).options.script, 's.js', '--watch never swallows the script');
  assert.throws(() => parseCommand(['s.js', '--port', '--watch']), { message: '--port needs a value (<n>), got the option --watch' });
  assert.throws(() => parseCommand(['s.js', '--port']), { message: '--port needs a value (<n>)' });
  assert.throws(() => parseCommand(['s.js', '--force=yes']), { message: '--force takes no value, got "yes"' });
  assert.throws(() => parseCommand(['status', '--follow']), { verb: 'status', message: /unknown option --follow; see 'corral help status'/ });
});

test('verbs: ls, restart, logs; help per command; unknown verbs answered as such', () => {
  assert.deepEqual(parseCommand(['ls']), { kind: 'list', json: false, home: undefined });
  assert.deepEqual(parseCommand(['restart', 'web', '--hard']), { kind: 'reload', name: 'web', home: undefined, timeout: undefined, hard: true, verb: 'restart' });
  assert.deepEqual(parseCommand(['logs', 'web', '-n', '50', '-f']), { kind: 'logs', name: 'web', home: undefined, lines: 50, follow: true, json: false, time: false });
  assert.deepEqual(parseCommand(['help', 'reload']), { kind: 'help', topic: 'reload' });
  assert.deepEqual(parseCommand(['reload', '--help']), { kind: 'help', topic: 'reload' });
  assert.deepEqual(parseCommand(['help', 'ls']), { kind: 'help', topic: 'list' });
  assert.throws(() => parseCommand(['delete', 'web'], () => false), { code: 'E_USAGE', message: /^unknown command "delete"; use 'corral stop'.*Commands: start, status, reload, restart, scale, stop, list, logs, systemd, ls/ });
  assert.throws(() => parseCommand(['relaod'], () => false), { message: /^unknown command "relaod"; did you mean 'reload'\?/ });
  assert.equal(parseCommand(['server'], () => true).options.script, 'server', 'an existing file named like a word is a script');
  assert.throws(() => parseCommand(['scale']), { verb: 'scale' });
  for (const [verb, v] of Object.entries(VERBS)) {
    const text = verbHelp(verb);
    assert.ok(text.includes(v.synopsis), verb);
    if (verb !== 'start') assert.match(text, /Options:\n[\s\S]*Examples?:\n {2}corral /, verb);
    assert.match(usageLine(verb), new RegExp(`^usage: corral .*\\(corral help ${verb}\\)$`));
  }
});

test("default name: the nearest package.json's name, else the directory's", () => {
  const pkgs = { '/srv/shop/package.json': { name: '@acme/shop' }, '/srv/other/package.json': { version: '1.0.0' } };
  const read = (f) => pkgs[f];
  assert.equal(defaultName('/srv/shop/dist/server.js', read), 'acme-shop');
  assert.equal(defaultName('/srv/other/server.js', read), 'other', 'a package.json without a name is passed over');
  assert.equal(defaultName('/tmp/my app/server.js', () => undefined), 'my-app');
});

test('without a name, commands pick the cluster of the current directory', () => {
  const clusters = [
    { name: 'api', cwd: '/srv/api' },
    { name: 'web', cwd: '/srv/web' },
    { name: 'old', cwd: null },
  ];
  assert.deepEqual(pickByDirectory(clusters, '/srv/api').map((c) => c.name), ['api']);
  assert.deepEqual(pickByDirectory(clusters, '/srv/api/src/routes').map((c) => c.name), ['api'], 'standing inside the app');
  assert.deepEqual(pickByDirectory(clusters, '/srv').map((c) => c.name), ['api', 'web'], 'both live under /srv: still ambiguous');
  assert.deepEqual(pickByDirectory(clusters, '/home').map((c) => c.name), []);
  assert.deepEqual(pickByDirectory([...clusters, { name: 'nested', cwd: '/srv/api/admin' }], '/srv/api/admin/x').map((c) => c.name), ['nested'], 'the deepest wins');
});

function statusOf(over = {}) {
  const worker = (slot, o = {}) => ({ slot, pid: 100 + slot, state: 'ready', generation: 1, uptimeMs: 5000, restarts: 0, restartReasons: {}, rss: 50 * 1024 * 1024, cpuPercent: 1, requests: 1, address: ':::4210', ...o });
  return {
    name: 'web', pid: 1, state: 'running', uptimeMs: 5000, strategy: 'os', desired: 1, generation: 1,
    workers: [worker(0)], waiting: [], totals: { workers: 1, ready: 1, rss: 50 * 1024 * 1024, requests: 1, restarts: 0 },
    reloads: { succeeded: 0, failed: 0, lastError: null },
    ...over,
  };
}

test('status text: MiB, plurals, generations during a reload, a slot restarts counted on one row', () => {
  assert.equal(formatBytes(50 * 1024 * 1024), '50.0 MiB');
  assert.equal(formatBytes(2048), '2 KiB');
  const one = formatStatus(statusOf());
  assert.match(one, /total: 1 worker, 50\.0 MiB RSS, 1 request, 0 restarts$/);
  assert.doesNotMatch(one, /\bGEN\b/);
  const reloading = formatStatus(statusOf({
    state: 'reloading', generation: 2, desired: 1,
    workers: [
      { ...statusOf().workers[0], restarts: 2, generation: 1, state: 'draining' },
      { ...statusOf().workers[0], pid: 200, restarts: 2, generation: 2 },
    ],
    totals: { workers: 2, ready: 1, rss: 100, requests: 2, restarts: 2 },
  }));
  const [header, ...rows] = reloading.split('\n').slice(1, 4);
  assert.match(header, /SLOT\s+PID\s+STATE\s+GEN\s+UPTIME\s+RESTARTS/);
  assert.match(rows[0], /^\s+0\s+100\s+draining\s+1\s+5s\s+2\s/);
  assert.match(rows[1], /^\s+0\s+200\s+ready\s+2\s+5s\s+\s{8}/, 'the second row of a slot leaves RESTARTS empty');
  assert.equal(displayAddress(':::4210'), '*:4210');
  assert.equal(displayAddress('0.0.0.0:80'), '*:80');
  assert.equal(displayAddress('::1:4210'), '[::1]:4210');
  assert.equal(displayAddress('127.0.0.1:4210'), '127.0.0.1:4210');
});

test('status colours only on a terminal and never with NO_COLOR', () => {
  assert.equal(useColor({ isTTY: true }, {}), true);
  assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
  assert.equal(useColor({ isTTY: false }, {}), false);
  assert.match(formatStatus(statusOf(), true), /\x1b\[32m/);
  assert.doesNotMatch(formatStatus(statusOf(), false), /\x1b\[/);
});

test('JSON logs: a worker line that is a JSON object keeps its fields and gains app, worker, pid', () => {
  const time = new Date('2026-01-01T00:00:00.000Z');
  const pino = '{"level":30,"time":1767225600000,"pid":42,"hostname":"h","msg":"hi","reqId":7}';
  assert.deepEqual(JSON.parse(jsonLine({ time, level: 'info', source: 'worker', worker: 1, pid: 42, msg: pino }, 'web')), {
    level: 30, time: 1767225600000, pid: 42, hostname: 'h', msg: 'hi', reqId: 7, source: 'worker', app: 'web', worker: 1,
  });
  assert.deepEqual(JSON.parse(jsonLine({ time, level: 'info', source: 'worker', worker: 1, pid: 42, msg: 'plain {"x":1}' }, 'web')), {
    time: '2026-01-01T00:00:00.000Z', level: 'info', source: 'worker', app: 'web', worker: 1, pid: 42, msg: 'plain {"x":1}',
  });
  assert.equal(JSON.parse(jsonLine({ time, level: 'info', source: 'worker', worker: 0, pid: 1, msg: '[1,2]' }, 'web')).msg, '[1,2]');
  assert.equal(textLine({ time, level: 'info', source: 'worker', worker: 0, pid: 9, msg: 'x' }, 'web', { prefix: true, time: true, color: false }), '2026-01-01T00:00:00.000Z [web 0 9] x\n');
});

test('log ring: bounded per source, a loud slot cannot push out the others, recent lines in order', () => {
  const ring = new LogRing(3);
  const rec = (worker, msg) => ({ time: new Date(), level: 'info', source: worker === null ? 'corral' : 'worker', worker: worker ?? undefined, msg });
  ring.add(rec(null, 'corral says hi'));
  ring.add(rec(1, 'quiet'));
  for (let i = 0; i < 10; i++) ring.add(rec(0, `loud ${i}`));
  assert.deepEqual(ring.recent(100).map((r) => r.msg), ['corral says hi', 'quiet', 'loud 7', 'loud 8', 'loud 9']);
  assert.deepEqual(ring.recent(2).map((r) => r.msg), ['loud 8', 'loud 9']);
  const seen = [];
  const stop = ring.follow((r) => seen.push(r.msg));
  ring.add(rec(1, 'later'));
  stop();
  ring.add(rec(1, 'unseen'));
  assert.deepEqual(seen, ['later']);
  assert.deepEqual(new LogRing(0).recent(5), []);
});

test('a taken port reads as one', () => {
  assert.match(explainError('Error: bind EADDRINUSE null:4251'), /^port 4251 is already in use \(by another process\)/);
  assert.match(explainError('Error: listen EADDRINUSE: address already in use :::4251'), /^port 4251 is already in use/);
  assert.equal(explainError('Error: boom'), 'Error: boom');
});

test('watch: node_modules, .git, build output, swap files and user globs are ignored; the script\'s own build dir is not', () => {
  const root = path.join('/srv', 'app');
  const ignored = ignoreRule([root], path.join(root, 'server.js'), ['*.md', 'fixtures']);
  const at = (p) => ignored(path.join(root, p));
  assert.equal(at('src/app.js'), false);
  assert.equal(at('node_modules/x/index.js'), true);
  assert.equal(at('.git/HEAD'), true);
  assert.equal(at('dist/server.js'), true);
  assert.equal(at('server.js.swp'), true);
  assert.equal(at('logs/app.log'), true);
  assert.equal(at('README.md'), true);
  assert.equal(at('test/fixtures/a.json'), true);
  const built = ignoreRule([root], path.join(root, 'dist', 'server.js'), []);
  assert.equal(built(path.join(root, 'dist', 'server.js')), false, 'tsc --watch rebuilding dist/ must reload');
  assert.equal(globTest('src/**/*.test.js')('src/a/b.test.js'), true);
  assert.equal(globTest('src/**/*.test.js')('lib/b.test.js'), false);
});
