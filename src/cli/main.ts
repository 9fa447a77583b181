#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { CorralError, UsageError } from '../common/errors.js';
import { processExists } from '../common/signal.js';
import { corralVersion } from '../common/version.js';
import path from 'node:path';
import { CONFIG_NAMES, findConfig, loadConfig } from '../config/file.js';
import { defaultHome, logicalCwd, resolveOptions, type ResolvedOptions, type StartOptions } from '../config/options.js';
import { flagLabel, type ValidOptions } from '../config/schema.js';
import { chooseStrategy } from '../primary/balancing.js';
import type { ClusterHandle } from '../primary/run.js';
import { RemoteError, resolveCluster, resolveGroup, sendCommand } from '../control/client.js';
import { announce, runCluster } from '../primary/run.js';
import { exitOnUnhandledStopSignals } from '../primary/pid1.js';
import { ServiceNotifier, describeClusters } from '../systemd/notify.js';
import type { ClusterStatus } from '../primary/status.js';
import type { ControlCommand } from '../control/protocol.js';
import { parseCommand, type Command, type SystemdCommand } from './args.js';
import { systemdUnit, thisHost } from './systemd.js';
import { list, logs, status, watchStatus } from './observe.js';
import { generalHelp, usageLine, verbHelp } from './usage.js';
import type { VerbName } from './verbs.js';

/** Exit codes: 0 done, 1 the operation failed, 2 bad usage or no such cluster. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const USAGE_CODES = new Set(['E_USAGE', 'E_CONFIG', 'E_NAME_TAKEN', 'E_NO_CLUSTER']);

async function run(command: Command): Promise<number> {
  switch (command.kind) {
    case 'help':
      process.stdout.write(command.topic ? verbHelp(command.topic) : generalHelp());
      return 0;
    case 'version':
      process.stdout.write(`corral ${corralVersion()}\n`);
      return 0;
    case 'start':
      return startApps(command.options, command.configPath);
    case 'list':
      return list(command.home ?? defaultHome(), command.json);
    case 'systemd':
      return printUnit(command);
    case 'logs':
      return logs(command);
    case 'status':
      return command.watch ? watchStatus(command) : status(command);
    default:
      return control(command);
  }
}

/** The apps to run: the script from the command line, or every app of a config file with the flags on top. */
async function appsToStart(options: StartOptions, configPath: string | undefined): Promise<ResolvedOptions[]> {
  if (options.script !== '') return [resolveOptions(options as ValidOptions, flagLabel)];
  const here = logicalCwd();
  const file = configPath === undefined ? findConfig(here) : path.resolve(here, configPath);
  if (!file) throw new UsageError(`no script given and no ${CONFIG_NAMES.join(' / ')} in ${here}; usage: corral <script> [options]`);
  const { script: _none, ...overrides } = options;
  const { apps, wrapped } = await loadConfig(file);
  const fromCli = new Set(Object.keys(overrides));
  const resolved = apps.map((app, i) => {
    const at = wrapped ? `apps[${i}]: ` : '';
    try {
      // Flags override the file's values; -e adds to the app's env rather than replacing it.
      const env = app.env || overrides.env ? { ...app.env, ...overrides.env } : undefined;
      return resolveOptions({ ...app, ...overrides, ...(env ? { env } : {}) } as ValidOptions, (key) => (fromCli.has(key) ? flagLabel(key) : key));
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${path.basename(file)}: ${at}${err.message}`);
      throw err;
    }
  });
  const names = resolved.map((r) => r.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new UsageError(`${path.basename(file)}: two apps are named "${dup}"; give each app its own name`);
  const clash = adminClash(resolved);
  if (clash) throw new UsageError(`${path.basename(file)}: apps "${clash[0]}" and "${clash[1]}" both have admin port ${clash[2]}; give each app its own admin port`);
  const policies = new Set(resolved.map((r) => chooseStrategy(r.strategy).balancer.schedulingPolicy));
  if (policies.size > 1) throw new UsageError(`${path.basename(file)}: strategy rr cannot be mixed with os/reuseport in one corral process (node:cluster has one policy per process)`);
  return resolved;
}

/** Two apps whose admin servers would want one port (port 0 picks a free one each, so it never clashes). */
function adminClash(apps: ResolvedOptions[]): [string, string, number] | null {
  const seen = new Map<number, string>();
  for (const app of apps) {
    const port = app.admin?.port;
    if (!port) continue;
    const other = seen.get(port);
    if (other !== undefined) return [other, app.name, port];
    seen.set(port, app.name);
  }
  return null;
}

async function startApps(options: StartOptions, configPath: string | undefined): Promise<number> {
  const apps = await appsToStart(options, configPath);
  const running: ClusterHandle[] = [];
  const notifier = ServiceNotifier.fromEnv(process.env, () => describeClusters(running), (msg) => process.stderr.write(`corral: ${msg}\n`));
  try {
    for (const app of apps) running.push(await runCluster(app, { handleSignals: true }));
  } catch (err) {
    // One app could not start: do not leave the others running alone.
    await Promise.all(running.map((c) => c.stop()));
    throw err;
  }
  notifier?.watch(running);
  announceNextSteps(running);
  const codes = await Promise.all(running.map((c) => c.done));
  await notifier?.idle(2000);
  return Math.max(0, ...codes);
}

/** One line after start: where to look and how to stop. */
function announceNextSteps(running: ClusterHandle[]): void {
  const first = running[0];
  if (!first) return;
  const name = running.length === 1 ? ` ${first.name}` : '';
  announce(first, `running. In another terminal: 'corral status${name}' (also logs, reload, stop); Ctrl-C stops gracefully, a second Ctrl-C forces`);
}

/** `corral systemd`: the unit on stdout, anything the user should fix on stderr. */
async function printUnit(command: SystemdCommand): Promise<number> {
  const { options, configPath } = command.start;
  if (options.script === '' && configPath === undefined && !findConfig(logicalCwd())) {
    const hint = command.name !== undefined && existsSync(command.name) ? ` (${command.name} is a file: corral systemd -- ${command.name})` : '';
    throw new UsageError(`corral systemd: no app after -- and no ${CONFIG_NAMES.join(' / ')} in ${logicalCwd()}${hint}; e.g. corral systemd web -- server.js --port 8080`);
  }
  const apps = await appsToStart(options, configPath);
  const generatedBy = ['corral systemd', ...process.argv.slice(3)].join(' ') + ` (corral ${corralVersion()})`;
  const unit = systemdUnit(command, apps, thisHost(logicalCwd()), generatedBy);
  for (const w of unit.warnings) process.stderr.write(`corral: ${w}\n`);
  process.stdout.write(unit.text);
  return 0;
}

async function control(command: Extract<Command, { kind: 'reload' | 'scale' | 'stop' }>): Promise<number> {
  const home = command.home ?? defaultHome();
  if (command.kind === 'scale') {
    const { name, file } = await resolveCluster(home, command.name, 'scale');
    const result = (await bounded(name, file, 'scale', { cmd: 'scale', ...command.target, force: command.force }, command.timeout)) as { workers: number };
    process.stdout.write(`${name}: ${result.workers} workers ready\n`);
    return 0;
  }
  const targets = await resolveGroup(home, command.name, command.kind === 'reload' ? command.verb : command.kind);
  switch (command.kind) {
    case 'reload':
      if (command.verb === 'restart') {
        process.stderr.write(command.hard
          ? 'corral: restart --hard: every worker is drained and replaced at once (requests may wait or fail meanwhile)\n'
          : "corral: restart is a rolling reload (zero downtime); 'corral restart --hard' replaces every worker at once\n");
      }
      // One app after the other: never more than --reload-parallel extra workers in the whole tree.
      for (const t of targets) {
        const result = (await bounded(t.name, t.file, command.verb, { cmd: 'reload', hard: command.hard }, command.timeout)) as { generation: number };
        process.stdout.write(`${t.name}: ${command.hard ? 'restarted' : 'reloaded'}, every worker now runs generation ${result.generation}\n`);
      }
      return 0;
    case 'stop': {
      const codes = await Promise.all(targets.map((t) => stopOne(t.name, t.file)));
      return Math.max(0, ...codes);
    }
  }
}

/**
 * A reload or scale, waited for no longer than the deadline the primary
 * announces (or --timeout); past it, say what is still pending. The primary
 * goes on with the work either way.
 */
async function bounded(name: string, file: string, what: string, command: ControlCommand, timeoutMs: number | undefined): Promise<unknown> {
  try {
    return await sendCommand(file, command, {
      timeoutMs: timeoutMs ?? 0,
      onProgress: (p) => (timeoutMs === undefined && typeof p.deadlineMs === 'number' ? p.deadlineMs : undefined),
    });
  } catch (err) {
    if ((err as CorralError).code !== 'E_TIMEOUT') throw err;
    const status = (await sendCommand(file, { cmd: 'status' }, 5000).catch(() => null)) as ClusterStatus | null;
    throw new CorralError('E_TIMEOUT', `${name}: the ${what} has not finished in the time allowed; still pending: ${status ? pending(status) : 'unknown (no status answer)'}. The primary goes on with it; see 'corral status ${name}'`);
  }
}

/** "worker 1 (pid 4711) starting for 31.0 s, slot 2 waiting 4.2 s to restart" */
function pending(s: ClusterStatus): string {
  const items = [
    ...s.workers.filter((w) => w.state === 'starting').map((w) => `worker ${w.slot} (pid ${w.pid ?? 'none'}) starting for ${(w.uptimeMs / 1000).toFixed(1)} s`),
    ...s.waiting.map((w) => `slot ${w.slot} waiting ${(w.restartInMs / 1000).toFixed(1)} s to restart`),
    ...s.workers.filter((w) => w.state === 'ready' && w.generation !== s.generation).map((w) => `worker ${w.slot} (pid ${w.pid}) still on generation ${w.generation}`),
  ];
  return items.length > 0 ? items.join(', ') : `nothing visible (state ${s.state})`;
}

/**
 * Ask one cluster to stop and return its own verdict (1 when a worker had to
 * be killed), waiting no longer than the deadline the primary announces.
 */
async function stopOne(name: string, file: string): Promise<number> {
  let pid: number | undefined;
  try {
    const result = (await sendCommand(file, { cmd: 'stop' }, {
      timeoutMs: 10_000,
      onProgress: (p) => {
        if (typeof p.pid === 'number') pid = p.pid;
        return typeof p.deadlineMs === 'number' ? p.deadlineMs : undefined;
      },
    })) as { exitCode: number };
    process.stdout.write(`${name}: stopped${result.exitCode === 0 ? '' : ` (exit code ${result.exitCode}: see its log)`}\n`);
    return result.exitCode === 0 ? 0 : EXIT_FAILED;
  } catch (err) {
    // The connection closed without a verdict: the primary died (kill -9) or is very old.
    if (pid !== undefined && (err as CorralError).code === 'E_PROTOCOL' && (await gone(pid))) {
      process.stderr.write(`corral: ${name}: the primary (pid ${pid}) exited without reporting how the stop went\n`);
      return EXIT_FAILED;
    }
    throw err;
  }
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (!processExists(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function main(argv: string[]): Promise<number> {
  exitOnUnhandledStopSignals();
  let verb: VerbName | undefined;
  try {
    const command = parseCommand(argv);
    verb = verbOf(command);
    return await run(command);
  } catch (err) {
    if (err instanceof CorralError) {
      // A local app that could not start: its supervisor already logged why.
      if (err.code !== 'E_BOOT' || err instanceof RemoteError) process.stderr.write(`corral: ${err.message}\n`);
      if (err.code === 'E_USAGE') process.stderr.write(`${usageLine((err as { verb?: VerbName }).verb ?? verb)}\n`);
      return USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILED;
    }
    throw err;
  }
}

function verbOf(command: Command): VerbName | undefined {
  switch (command.kind) {
    case 'help':
    case 'version':
      return undefined;
    case 'reload':
      return command.verb;
    default:
      return command.kind;
  }
}

process.exitCode = await main(process.argv.slice(2));
// Workers, sockets and timers are all closed by now; exit even if a user
// library left a handle open in this process.
process.exit();
