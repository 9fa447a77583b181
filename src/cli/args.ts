import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../common/errors.js';
import { LOG_FORMATS, STRATEGIES, type LogFormat, type StartOptions, type Strategy } from '../config/options.js';
import { parseDuration, parseInteger, parseSize } from '../config/units.js';

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'start'; options: StartOptions; configPath: string | undefined }
  | { kind: 'status'; name: string | undefined; json: boolean; home: string | undefined }
  | { kind: 'reload'; name: string | undefined; home: string | undefined; timeout: number | undefined }
  | { kind: 'scale'; name: string | undefined; target: { workers: number } | { delta: number }; force: boolean; home: string | undefined; timeout: number | undefined }
  | { kind: 'stop'; name: string | undefined; home: string | undefined }
  | { kind: 'list'; json: boolean; home: string | undefined }
  | SystemdCommand;

/** `corral systemd [name] [--user] [-- <what corral start takes>]` */
export interface SystemdCommand {
  kind: 'systemd';
  name: string | undefined;
  user: boolean;
  start: { options: StartOptions; configPath: string | undefined };
  /** The start arguments as given, for ExecStart. */
  startArgs: string[];
}

const CONTROL_COMMANDS = ['status', 'reload', 'scale', 'stop', 'list'] as const;

export const START_OPTIONS = {
  workers: { type: 'string', short: 'w' },
  port: { type: 'string', short: 'p' },
  name: { type: 'string', short: 'n' },
  strategy: { type: 'string' },
  env: { type: 'string', short: 'e', multiple: true },
  'boot-timeout': { type: 'string' },
  grace: { type: 'string' },
  'reload-parallel': { type: 'string' },
  'reload-verify': { type: 'string' },
  spares: { type: 'string' },
  'no-compile-cache': { type: 'boolean' },
  cwd: { type: 'string' },
  watchdog: { type: 'string' },
  'max-memory': { type: 'string' },
  'max-requests': { type: 'string' },
  'max-requests-jitter': { type: 'string' },
  'no-prefix': { type: 'boolean' },
  'log-format': { type: 'string' },
  home: { type: 'string' },
  admin: { type: 'string' },
  'admin-token': { type: 'string' },
  'min-ready': { type: 'string' },
  'admin-actions': { type: 'boolean' },
  config: { type: 'string', short: 'c' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} satisfies ParseArgsConfig['options'];

const CONTROL_OPTIONS = {
  json: { type: 'boolean' },
  force: { type: 'boolean' },
  timeout: { type: 'string' },
  home: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

/** Turn parseArgs' own errors into one line that names the fix. */
function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    const e = err as { code?: string; message: string };
    const opt = /'(-[^']+)'/.exec(e.message)?.[1] ?? /(--[\w-]+)/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new UsageError(`unknown option ${opt ?? ''}; see 'corral --help' (arguments for your script go after --)`.replace('option ;', 'option;'));
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${opt ?? 'an option'} needs a value`);
    throw new UsageError(e.message);
  }
}

export function parseCommand(argv: string[]): Command {
  const first = argv[0];
  if (first === undefined) return { kind: 'start', options: { script: '' }, configPath: undefined };
  if (first === '--help' || first === '-h' || first === 'help') return { kind: 'help' };
  if (first === '--version' || first === '-v') return { kind: 'version' };
  if ((CONTROL_COMMANDS as readonly string[]).includes(first)) return parseControl(first as (typeof CONTROL_COMMANDS)[number], argv.slice(1));
  if (first === 'systemd') return parseSystemd(argv.slice(1));
  return parseStart(first === 'start' ? argv.slice(1) : argv);
}

/** `-w -3` would read "-3" as an option; glue a negative number to its option so the value check names it. */
function glueNegativeValues(argv: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const takesValue = new Set<string>();
  for (const [long, o] of Object.entries(options)) {
    if (o.type !== 'string') continue;
    takesValue.add(`--${long}`);
    if (o.short) takesValue.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') return [...out, ...argv.slice(i)];
    const next = argv[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-\d/.test(next)) {
      const long = arg.startsWith('--') ? arg : `--${Object.entries(options).find(([, o]) => `-${o.short}` === arg)?.[0]}`;
      out.push(`${long}=${next}`);
      i += 1;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function parseStart(argv: string[]): Command {
  const { values, positionals, tokens } = parse(glueNegativeValues(argv, START_OPTIONS), START_OPTIONS);
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const terminator = tokens.find((t) => t.kind === 'option-terminator');
  const before = terminator ? tokens.filter((t) => t.kind === 'positional' && t.index < terminator.index).length : positionals.length;
  const [script, ...extra] = positionals.slice(0, before);
  if (script !== undefined && values.config !== undefined) {
    throw new UsageError(`give either a script (${script}) or --config, not both`);
  }
  // No script: the apps come from a config file (--config, or corral.config.* in the cwd).
  const options: StartOptions = { script: script ?? '' };
  if (script !== undefined) options.args = [...extra, ...positionals.slice(before)];
  if (values.workers !== undefined) options.workers = values.workers === 'auto' ? 'auto' : parseInteger('--workers', values.workers, 1, 'a positive integer or "auto"');
  if (values.port !== undefined) options.port = parseInteger('--port', values.port, 0, 'a port number (0-65535)');
  if (options.port !== undefined && options.port > 65535) throw new UsageError(`--port must be a port number (0-65535), got "${values.port}"`);
  if (values.name !== undefined) options.name = values.name;
  if (values.strategy !== undefined) options.strategy = values.strategy as Strategy;
  if (options.strategy !== undefined && !(STRATEGIES as readonly string[]).includes(options.strategy)) {
    throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}, got "${values.strategy}"`);
  }
  if (values.env) options.env = parseEnv(values.env);
  if (values['boot-timeout'] !== undefined) options.bootTimeout = positive('--boot-timeout', parseDuration('--boot-timeout', values['boot-timeout']));
  if (values.grace !== undefined) options.grace = parseDuration('--grace', values.grace);
  if (values['reload-parallel'] !== undefined) options.reloadParallel = parseInteger('--reload-parallel', values['reload-parallel'], 1, 'a positive integer');
  if (values['reload-verify'] !== undefined) options.reloadVerify = parseDuration('--reload-verify', values['reload-verify']);
  if (values.cwd !== undefined) options.cwd = values.cwd;
  if (values.spares !== undefined) options.spares = parseInteger('--spares', values.spares, 0, 'an integer (0 or more)');
  if (values['no-compile-cache']) options.compileCache = false;
  if (values.watchdog !== undefined) options.watchdog = parseDuration('--watchdog', values.watchdog);
  if (values['max-memory'] !== undefined) options.maxMemory = parseSize('--max-memory', values['max-memory']);
  if (values['max-requests'] !== undefined) options.maxRequests = parseInteger('--max-requests', values['max-requests'], 1, 'a positive integer');
  if (values['max-requests-jitter'] !== undefined) options.maxRequestsJitter = parseInteger('--max-requests-jitter', values['max-requests-jitter'], 0, 'an integer (0 or more)');
  if (values['no-prefix']) options.prefix = false;
  if (values['log-format'] !== undefined) {
    if (!(LOG_FORMATS as readonly string[]).includes(values['log-format'])) throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}, got "${values['log-format']}"`);
    options.logFormat = values['log-format'] as LogFormat;
  }
  if (values.home !== undefined) options.home = values.home;
  if (values.force) options.force = true;
  if (values.admin !== undefined) options.admin = values.admin;
  if (values['admin-token'] !== undefined) options.adminToken = values['admin-token'];
  if (values['min-ready'] !== undefined) options.minReady = parseInteger('--min-ready', values['min-ready'], 0, 'an integer (0 or more)');
  if (values['admin-actions']) options.adminActions = true;
  return { kind: 'start', options, configPath: values.config };
}

function positive(label: string, n: number): number {
  if (n <= 0) throw new UsageError(`${label} must be a positive duration, got ${n}`);
  return n;
}

function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env takes KEY=VALUE, got "${pair}"`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

function parseControl(kind: (typeof CONTROL_COMMANDS)[number], argv: string[]): Command {
  // "-1" is a count, not an option: pull signed numbers out before parseArgs sees them.
  const counts = kind === 'scale' ? argv.filter((a) => /^[+-]\d+$/.test(a)) : [];
  const rest = argv.filter((a) => !counts.includes(a));
  const { values, positionals } = parse(rest, CONTROL_OPTIONS);
  if (values.help) return { kind: 'help' };
  const home = values.home;
  const json = values.json ?? false;
  const timeout = values.timeout === undefined ? undefined : positive('--timeout', parseDuration('--timeout', values.timeout));
  if (kind === 'scale') return { ...parseScale(positionals, counts, home, values.force ?? false), timeout };
  if (positionals.length > 1) throw new UsageError(`corral ${kind} takes at most one cluster name, got ${positionals.length} arguments`);
  const name = positionals[0];
  switch (kind) {
    case 'status':
      return { kind, name, json, home };
    case 'list':
      if (name !== undefined) throw new UsageError('corral list takes no cluster name');
      return { kind, json, home };
    case 'reload':
      return { kind, name, home, timeout };
    default:
      return { kind, name, home };
  }
}

function parseScale(positionals: string[], counts: string[], home: string | undefined, force: boolean): Extract<Command, { kind: 'scale' }> {
  const all = [...positionals, ...counts];
  const countArg = counts[0] ?? positionals.find((p) => /^\d+$/.test(p));
  if (countArg === undefined || all.length > 2) throw new UsageError('usage: corral scale [name] <n|+k|-k>, e.g. corral scale 4 or corral scale web +1');
  const name = positionals.find((p) => p !== countArg);
  if (/^[+-]/.test(countArg)) return { kind: 'scale', name, target: { delta: Number(countArg) }, force, home, timeout: undefined };
  const workers = Number(countArg);
  if (workers < 1) throw new UsageError(`cannot scale to ${workers} workers: the count must be at least 1 (use 'corral stop' to stop the cluster)`);
  return { kind: 'scale', name, target: { workers }, force, home, timeout: undefined };
}

const SYSTEMD_OPTIONS = {
  user: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

const SYSTEMD_USAGE = 'usage: corral systemd [name] [--user] [-- <script> [start options]], e.g. corral systemd web -- server.js --port 8080';

function parseSystemd(argv: string[]): Command {
  const cut = argv.indexOf('--');
  const own = cut === -1 ? argv : argv.slice(0, cut);
  const startArgs = cut === -1 ? [] : argv.slice(cut + 1);
  const stray = own.find((a) => a.startsWith('-') && !['--user', '--help', '-h'].includes(a));
  if (stray !== undefined) throw new UsageError(`corral systemd: ${stray} belongs to the app; put the app's arguments after --. ${SYSTEMD_USAGE}`);
  const { values, positionals } = parse(own, SYSTEMD_OPTIONS);
  if (values.help) return { kind: 'help' };
  if (positionals.length > 1) throw new UsageError(`corral systemd takes one unit name before --, got ${positionals.length} words. ${SYSTEMD_USAGE}`);
  const start = parseStart(startArgs);
  if (start.kind !== 'start') throw new UsageError(`corral systemd: after -- come the arguments of corral start. ${SYSTEMD_USAGE}`);
  return { kind: 'systemd', name: positionals[0], user: values.user ?? false, start: { options: start.options, configPath: start.configPath }, startArgs };
}
