/**
 * The commands that read a running cluster without changing it: list,
 * status (once, or redrawn with --watch) and logs.
 */
import type { CorralError } from '../common/errors.js';
import { liveClusters, resolveGroup, sendCommand } from '../control/client.js';
import { socketPath } from '../control/paths.js';
import { fromWire, type WireRecord } from '../logs/ring.js';
import { jsonLine, textLine, type LogRecord } from '../logs/sink.js';
import type { ClusterStatus } from '../primary/status.js';
import { defaultHome } from '../config/options.js';
import type { Command } from './args.js';
import { formatStatus, table, useColor } from './format.js';

export async function list(home: string, json: boolean): Promise<number> {
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

export async function status(command: Extract<Command, { kind: 'status' }>): Promise<number> {
  const targets = await resolveGroup(command.home ?? defaultHome(), command.name, 'status');
  const statuses = await Promise.all(targets.map((t) => sendCommand(t.file, { cmd: 'status' }, 10_000) as Promise<ClusterStatus>));
  const json = statuses.length === 1 ? JSON.stringify(statuses[0], null, 2) : JSON.stringify(statuses, null, 2);
  const color = useColor(process.stdout);
  process.stdout.write(command.json ? `${json}\n` : `${statuses.map((s) => formatStatus(s, color)).join('\n\n')}\n`);
  return 0;
}

const WATCH_EVERY_MS = 1000;

/**
 * `corral status --watch`: the table redrawn in place every second (like
 * top) until Ctrl-C. Without a terminal, one snapshot after another with
 * its time, no escape codes; with --json, one JSON line each.
 */
export async function watchStatus(command: Extract<Command, { kind: 'status' }>): Promise<number> {
  const targets = await resolveGroup(command.home ?? defaultHome(), command.name, 'status');
  const tty = process.stdout.isTTY === true && !command.json;
  const color = useColor(process.stdout);
  const quit = new AbortController();
  const onSignal = (): void => quit.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (tty) process.stdout.write('\x1b[?25l');
  try {
    while (!quit.signal.aborted) {
      let statuses: ClusterStatus[];
      try {
        statuses = await Promise.all(targets.map((t) => sendCommand(t.file, { cmd: 'status' }, 5000) as Promise<ClusterStatus>));
      } catch (err) {
        if ((err as CorralError).code !== 'E_NO_CLUSTER' && (err as CorralError).code !== 'E_PROTOCOL') throw err;
        process.stdout.write(`${tty ? '\n' : ''}${targets.map((t) => t.name).join(', ')}: no longer running\n`);
        return 0;
      }
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      if (command.json) process.stdout.write(`${JSON.stringify(statuses.length === 1 ? statuses[0] : statuses)}\n`);
      else if (tty) process.stdout.write(`\x1b[H\x1b[2J${statuses.map((s) => formatStatus(s, color)).join('\n\n')}\n\n${now} · every ${WATCH_EVERY_MS / 1000} s · Ctrl-C to quit\n`);
      else process.stdout.write(`== ${now}\n${statuses.map((s) => formatStatus(s, false)).join('\n\n')}\n\n`);
      await sleep(WATCH_EVERY_MS, quit.signal);
    }
    return 0;
  } finally {
    if (tty) process.stdout.write('\x1b[?25h');
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/**
 * `corral logs`: the primary's recent lines (each slot's and corral's own),
 * then with --follow every new one until Ctrl-C or until the cluster stops.
 * The apps of one config file are shown together, their recent lines merged
 * by time.
 */
export async function logs(command: Extract<Command, { kind: 'logs' }>): Promise<number> {
  const targets = await resolveGroup(command.home ?? defaultHome(), command.name, 'logs');
  const style = { prefix: true, time: command.time, color: useColor(process.stdout) };
  const print = (record: LogRecord, name: string): void => {
    process.stdout.write(command.json ? jsonLine(record, name) : textLine(record, name, style));
  };
  const backlog: { record: LogRecord; name: string }[] = [];
  let live = false;
  let caughtUp = 0;
  // The recent lines of every app come first: printed together in time order, then the rest as it comes.
  const flush = (): void => {
    if (live) return;
    live = true;
    backlog.sort((a, b) => a.record.time.getTime() - b.record.time.getTime());
    for (const { record, name } of backlog.slice(-command.lines)) print(record, name);
  };
  const stream = (t: { name: string; file: string }): Promise<unknown> =>
    sendCommand(t.file, { cmd: 'logs', lines: command.lines, follow: command.follow }, {
      timeoutMs: command.follow ? 0 : 10_000,
      onProgress: (p) => {
        if (typeof p.skipped === 'number') process.stderr.write(`corral: ${p.skipped} lines of ${t.name} skipped: this reader fell behind\n`);
        if (p.caughtUp === true && ++caughtUp === targets.length) flush();
        if (!p.log) return;
        const record = fromWire(p.log as WireRecord);
        if (live) print(record, t.name);
        else backlog.push({ record, name: t.name });
      },
    }).then((result) => {
      if (command.follow && (result as { stopped?: boolean }).stopped) process.stderr.write(`corral: ${t.name} stopped\n`);
    });
  await Promise.all(targets.map(stream));
  flush();
  return 0;
}
