#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { CorralError } from '../common/errors.js';
import { defaultHome, resolveOptions } from '../config/options.js';
import { liveClusters, resolveCluster, sendCommand } from '../control/client.js';
import { socketPath } from '../control/paths.js';
import { runCluster } from '../primary/cluster.js';
import type { ClusterStatus } from '../primary/status.js';
import { parseCommand, type Command } from './args.js';
import { formatStatus, table } from './format.js';
import { USAGE } from './usage.js';

/** Exit codes: 0 done, 1 the operation failed, 2 bad usage or no such cluster. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

const USAGE_CODES = new Set(['E_USAGE', 'E_CONFIG', 'E_NAME_TAKEN', 'E_NO_CLUSTER']);

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function run(command: Command): Promise<number> {
  switch (command.kind) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`corral ${version()}\n`);
      return 0;
    case 'start': {
      const cluster = await runCluster(resolveOptions(command.options, cliLabel), { handleSignals: true });
      return cluster.done;
    }
    case 'list':
      return list(command.home ?? defaultHome(), command.json);
    default:
      return control(command);
  }
}

async function list(home: string, json: boolean): Promise<number> {
  const names = await liveClusters(home);
  const statuses = await Promise.all(names.map((n) => sendCommand(socketPath(home, n), { cmd: 'status' }, 5000) as Promise<ClusterStatus>));
  if (json) {
    process.stdout.write(`${JSON.stringify(statuses, null, 2)}\n`);
    return 0;
  }
  if (statuses.length === 0) {
    process.stdout.write(`no running clusters in ${home}\n`);
    return 0;
  }
  const rows = statuses.map((s) => [s.name, String(s.pid), s.state, `${s.totals.ready}/${s.desired}`, s.strategy, s.script]);
  process.stdout.write(`${table(['NAME', 'PID', 'STATE', 'READY', 'STRATEGY', 'SCRIPT'], rows)}\n`);
  return 0;
}

async function control(command: Exclude<Command, { kind: 'help' | 'version' | 'start' | 'list' }>): Promise<number> {
  const home = command.home ?? defaultHome();
  const { name, file } = await resolveCluster(home, command.name);
  switch (command.kind) {
    case 'status': {
      const status = (await sendCommand(file, { cmd: 'status' }, 10_000)) as ClusterStatus;
      process.stdout.write(command.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus(status)}\n`);
      return 0;
    }
    case 'reload': {
      const result = (await sendCommand(file, { cmd: 'reload' })) as { generation: number };
      process.stdout.write(`${name}: reloaded, every worker now runs generation ${result.generation}\n`);
      return 0;
    }
    case 'scale': {
      const result = (await sendCommand(file, { cmd: 'scale', ...command.target })) as { workers: number };
      process.stdout.write(`${name}: ${result.workers} workers ready\n`);
      return 0;
    }
    case 'stop': {
      const result = (await sendCommand(file, { cmd: 'stop' }, 10_000)) as { pid: number; deadlineMs: number };
      await waitForExit(result.pid, result.deadlineMs);
      process.stdout.write(`${name}: stopped\n`);
      return 0;
    }
  }
}

/** The socket goes away with the primary, so watch its pid, bounded by its own drain deadline. */
async function waitForExit(pid: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new CorralError('E_STOPPING', `the primary (pid ${pid}) is still running ${deadlineMs} ms after the stop request`);
}

const CLI_LABELS: Record<string, string> = {
  workers: '--workers',
  port: '--port',
  name: '--name',
  strategy: '--strategy',
  bootTimeout: '--boot-timeout',
  grace: '--grace',
  reloadParallel: '--reload-parallel',
  watchdog: '--watchdog',
  maxMemory: '--max-memory',
  maxRequests: '--max-requests',
  maxRequestsJitter: '--max-requests-jitter',
  logFormat: '--log-format',
};

function cliLabel(key: string): string {
  return CLI_LABELS[key] ?? key;
}

async function main(argv: string[]): Promise<number> {
  try {
    return await run(parseCommand(argv));
  } catch (err) {
    if (err instanceof CorralError) {
      // The supervisor already logged why the app could not start.
      if (err.code !== 'E_BOOT') process.stderr.write(`corral: ${err.message}\n`);
      if (err.code === 'E_USAGE') process.stderr.write(`usage: corral [start] <script> [options] [-- <script args>]   (corral --help)\n`);
      return USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILED;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
// Workers, sockets and timers are all closed by now; exit even if a user
// library left a handle open in this process.
process.exit();
