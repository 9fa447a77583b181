import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkName, defaultHome, type ResolvedOptions } from '../config/options.js';
import { findConfig } from '../config/file.js';
import { KILL_TIMEOUT_MS } from '../primary/run.js';
import { notifySupport, parseSystemdVersion, renderUnit, type UnitInput } from '../systemd/unit.js';
import { START_OPTIONS, type SystemdCommand } from './args.js';

/** The machine facts a unit depends on; tests pass their own. */
export interface Host {
  /** The working directory as the user named it (symlinks kept). */
  cwd: string;
  /** process.cwd(): the same directory with symlinks resolved. */
  realCwd: string;
  node: string;
  /** The corral entry the user ran (process.argv[1]). */
  corral: string;
  uid: number;
  username: string;
  which(command: string): string | null;
  systemdVersion(): number | null;
}

export function thisHost(cwd: string): Host {
  return {
    cwd,
    realCwd: process.cwd(),
    node: process.execPath,
    corral: path.resolve(process.argv[1] ?? ''),
    uid: process.getuid?.() ?? 0,
    username: os.userInfo().username,
    which,
    systemdVersion: () => {
      const r = spawnSync('systemctl', ['--version'], { encoding: 'utf8', timeout: 5000 });
      return r.status === 0 ? parseSystemdVersion(r.stdout) : null;
    },
  };
}

function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {}
  }
  return null;
}

/** A path under the real cwd, spelled through the cwd the user named (releases/42/x -> current/x). */
function logical(file: string, host: Host): string {
  if (host.cwd === host.realCwd) return file;
  if (file === host.realCwd) return host.cwd;
  return file.startsWith(host.realCwd + path.sep) ? path.join(host.cwd, file.slice(host.realCwd.length)) : file;
}

/** The start arguments with the script, --config, --home and --cwd made absolute: the unit runs anywhere. */
export function absoluteStartArgs(args: string[], cwd: string): string[] {
  const out = [...args];
  const { tokens } = parseArgs({ args, options: START_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const abs = (p: string): string => path.resolve(cwd, p);
  let scriptSeen = false;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') break;
    if (t.kind === 'positional' && !scriptSeen) {
      scriptSeen = true;
      out[t.index] = abs(t.value);
    } else if (t.kind === 'option' && ['config', 'home', 'cwd'].includes(t.name) && t.value !== undefined) {
      if (t.inlineValue) out[t.index] = `${t.rawName}=${abs(t.value)}`;
      else out[t.index + 1] = abs(t.value);
    }
  }
  return out;
}

export interface GeneratedUnit {
  name: string;
  text: string;
  warnings: string[];
}

/** The unit for `command`, whose apps (already validated) are `apps`. */
export function systemdUnit(command: SystemdCommand, apps: ResolvedOptions[], host: Host, generatedBy: string): GeneratedUnit {
  const { options, configPath } = command.start;
  const hasScript = options.script !== '';
  const startArgs = absoluteStartArgs(command.startArgs, host.cwd);
  if (!hasScript && configPath === undefined) {
    const found = findConfig(host.cwd);
    if (found) startArgs.push('--config', found);
  }
  const only = apps.length === 1 ? apps[0] : undefined;
  const name = checkName('the unit name', command.name ?? only?.name ?? path.basename(host.cwd));
  if (hasScript && options.name === undefined && command.name !== undefined) startArgs.push('--name', command.name);
  const corral = logical(host.corral, host);
  const warnings: string[] = [];
  if (corral.includes(`${path.sep}_npx${path.sep}`)) {
    warnings.push(`corral runs from npx's cache (${corral}), which the unit would depend on; install it in the app (npm i corral) and run npx corral systemd again`);
  }
  if (!existsSync(host.node)) warnings.push(`node was not found at ${host.node}`);
  const runAs = command.user || host.uid === 0 ? null : host.username;
  const input: UnitInput = {
    unit: name,
    userUnit: command.user,
    runAs,
    execStart: [host.node, corral, 'start', ...startArgs],
    workingDirectory: host.cwd,
    corralHome: options.home !== undefined || (runAs === null && !command.user) ? null : defaultHome(),
    graceMs: Math.max(...apps.map((a) => a.grace)),
    bootTimeoutMs: Math.max(...apps.map((a) => a.bootTimeout)),
    killTimeoutMs: KILL_TIMEOUT_MS,
    notify: notifySupport(host.which('systemd-notify'), host.systemdVersion()),
    kill: host.which('kill') ?? '/bin/kill',
    description: hasScript ? `corral: ${options.name ?? name} (${path.relative(host.cwd, only?.script ?? options.script)})` : `corral: ${apps.map((a) => a.name).join(', ')} (config file)`,
    generatedBy,
  };
  return { name, text: renderUnit(input), warnings };
}
