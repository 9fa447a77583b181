import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../common/errors.js';
import type { StartOptions } from '../config/options.js';
import { OPTIONS, closest, flagLabel, validateFlags, validateOptions, type OptionDef } from '../config/schema.js';
import { ALIASES, INSTEAD, VERBS, isVerb, type VerbName } from './verbs.js';

export type Command =
  | { kind: 'help'; topic: VerbName | undefined }
  | { kind: 'version' }
  | { kind: 'start'; options: StartOptions; configPath: string | undefined }
  | { kind: 'status'; name: string | undefined; json: boolean; watch: boolean; home: string | undefined }
  | { kind: 'reload'; name: string | undefined; home: string | undefined; timeout: number | undefined; hard: boolean; verb: 'reload' | 'restart' }
  | { kind: 'scale'; name: string | undefined; target: { workers: number } | { delta: number }; force: boolean; home: string | undefined; timeout: number | undefined }
  | { kind: 'stop'; name: string | undefined; home: string | undefined }
  | { kind: 'list'; json: boolean; home: string | undefined }
  | { kind: 'logs'; name: string | undefined; home: string | undefined; lines: number; follow: boolean; json: boolean; time: boolean }
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

/** A usage error that knows which command it is about, so the right usage line follows it. */
export function usageError(verb: VerbName, message: string): UsageError {
  return Object.assign(new UsageError(message), { verb });
}

/** The flags every command understands. */
const COMMON: Record<string, OptionDef> = {
  help: { schema: OPTIONS.force.schema, flag: { long: 'help', short: 'h' } },
};

/** Start's flags: every start option that has one, the config file, help and version. */
const START_FLAGS: Record<string, OptionDef> = {
  ...Object.fromEntries(Object.entries(OPTIONS as Record<string, OptionDef>).filter(([, d]) => d.flag)),
  ...VERBS.start.flags,
  ...COMMON,
  version: { schema: OPTIONS.force.schema, flag: { long: 'version', short: 'v' } },
};

/** The parseArgs option table for a table of flags (what `walk` reads tokens with). */
function parseArgsConfig(defs: Record<string, OptionDef>): NonNullable<ParseArgsConfig['options']> {
  const config: NonNullable<ParseArgsConfig['options']> = {};
  for (const def of Object.values(defs)) {
    const flag = def.flag;
    if (!flag) continue;
    const takesNext = flag.arg !== undefined && !flag.optionalArg;
    config[flag.long] = { type: takesNext ? 'string' : 'boolean', ...(flag.short ? { short: flag.short } : {}) };
  }
  return config;
}

/** Start's flags as parseArgs reads them (the systemd unit rewrites paths in them). */
export const START_OPTIONS: NonNullable<ParseArgsConfig['options']> = parseArgsConfig(START_FLAGS);

interface Walked {
  /** Option key -> the value the command line gave (strings, true, or arrays for repeatable flags). */
  raw: Record<string, unknown>;
  /** Positionals before `--`. */
  positionals: string[];
  /** Everything after `--`, untouched. */
  rest: string[];
}

/**
 * Read argv from parseArgs' tokens against a table of flags: unknown flags,
 * missing values and switches given a value are reported here in corral's
 * own words (never by rewriting parseArgs' English messages).
 */
export function walk(argv: string[], defs: Record<string, OptionDef>, verb: VerbName): Walked {
  const byLong = new Map<string, [string, OptionDef]>();
  for (const [key, def] of Object.entries(defs)) if (def.flag) byLong.set(def.flag.long, [key, def]);
  const { tokens } = parseArgs({ args: argv, options: parseArgsConfig(defs), strict: false, allowPositionals: true, tokens: true });
  const out: Walked = { raw: {}, positionals: [], rest: [] };
  let afterTerminator = false;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') afterTerminator = true;
    else if (token.kind === 'positional') (afterTerminator ? out.rest : out.positionals).push(token.value);
    else {
      const entry = byLong.get(token.name);
      if (!entry) throw unknownOption(token.rawName, [...byLong.keys()], verb);
      const [key, def] = entry;
      const value = flagValue(token, def, verb);
      if (def.flag?.multiple) out.raw[key] = [...((out.raw[key] as unknown[] | undefined) ?? []), value];
      else out.raw[key] = value;
    }
  }
  return out;
}

type OptionToken = { rawName: string; value?: string | undefined; inlineValue?: boolean | undefined };

function flagValue(token: OptionToken, def: OptionDef, verb: VerbName): unknown {
  const flag = def.flag!;
  const name = token.rawName;
  if (flag.arg === undefined || flag.optionalArg) {
    if (token.value !== undefined && !flag.optionalArg) throw usageError(verb, `${name} takes no value, got "${token.value}"`);
    return token.value ?? flag.sets ?? true;
  }
  if (token.value === undefined) throw usageError(verb, `${name} needs a value (${flag.arg})`);
  // parseArgs took the next argument even if it is an option: a missing value, unless a negative number or a node flag.
  if (!token.inlineValue && token.value.startsWith('-') && !/^-\d/.test(token.value) && !flag.dashValue) {
    throw usageError(verb, `${name} needs a value (${flag.arg}), got the option ${token.value}`);
  }
  return token.value;
}

function unknownOption(raw: string, longs: string[], verb: VerbName): UsageError {
  const near = raw.startsWith('--') ? closest(raw.slice(2), longs) : undefined;
  const hint = near ? `did you mean --${near}? ` : '';
  const tail = verb === 'start' ? ' (arguments for your script go after --)' : '';
  return usageError(verb, `unknown option ${raw}; ${hint}see 'corral help ${verb}'${tail}`);
}

export function parseCommand(argv: string[], exists: (file: string) => boolean = existsSync): Command {
  const first = argv[0];
  if (first === undefined) return { kind: 'start', options: { script: '' }, configPath: undefined };
  if (first === '--help' || first === '-h') return { kind: 'help', topic: undefined };
  if (first === 'help') return { kind: 'help', topic: helpTopic(argv[1]) };
  if (first === '--version' || first === '-v') return { kind: 'version' };
  const verb = isVerb(first) ? first : ALIASES[first];
  if (verb === 'start') return parseStart(argv.slice(1));
  if (verb === 'systemd') return parseSystemd(argv.slice(1));
  if (verb !== undefined) return parseControl(verb, argv.slice(1));
  if (looksLikeVerb(first) && !exists(path.resolve(first))) throw unknownCommand(first);
  return parseStart(argv);
}

/** `corral delete`: a word, not a file name: a command the user expected, not a missing script. */
function looksLikeVerb(word: string): boolean {
  return /^[a-z][a-z-]*$/.test(word);
}

function unknownCommand(word: string): UsageError {
  const instead = INSTEAD[word];
  const near = closest(word, [...Object.keys(VERBS), ...Object.keys(ALIASES)]);
  const hint = instead ? `; use ${instead}` : near ? `; did you mean '${near}'?` : '';
  const commands = [...Object.keys(VERBS), ...Object.keys(ALIASES)].join(', ');
  return new UsageError(`unknown command "${word}"${hint}. Commands: ${commands} (a script path runs it: corral ./${word}.js)`);
}

function helpTopic(word: string | undefined): VerbName | undefined {
  if (word === undefined) return undefined;
  const verb = isVerb(word) ? word : ALIASES[word];
  if (verb === undefined) throw unknownCommand(word);
  return verb;
}

function parseStart(argv: string[]): Command {
  const { raw, positionals, rest } = walk(argv, START_FLAGS, 'start');
  const { help, version, config, ...flags } = raw;
  if (help) return { kind: 'help', topic: 'start' };
  if (version) return { kind: 'version' };
  const [script, ...extra] = positionals;
  if (script !== undefined && config !== undefined) throw usageError('start', `give either a script (${script}) or --config, not both`);
  let valid;
  try {
    valid = validateOptions(flags, 'cli', flagLabel);
  } catch (err) {
    throw usageError('start', (err as Error).message);
  }
  // No script: the apps come from a config file (--config, or corral.config.* in the cwd).
  const options: StartOptions = { ...valid, script: script ?? '' } as StartOptions;
  if (script !== undefined) options.args = [...extra, ...rest];
  return { kind: 'start', options, configPath: config as string | undefined };
}

/**
 * `corral systemd [name] [--user] [-- <start arguments>]`: its own flags
 * before `--`, then exactly what `corral start` takes, checked the same way.
 */
function parseSystemd(argv: string[]): Command {
  const cut = argv.indexOf('--');
  const own = cut === -1 ? argv : argv.slice(0, cut);
  const startArgs = cut === -1 ? [] : argv.slice(cut + 1);
  const defs = { ...VERBS.systemd.flags, ...COMMON } as Record<string, OptionDef>;
  const startFlag = own.find((a) => a.startsWith('-') && !/^--?(user|help|h)$/.test(a) && walkable(a, START_FLAGS));
  if (startFlag !== undefined) throw usageError('systemd', `${startFlag} belongs to the app; put the app's arguments after --, e.g. corral systemd web -- server.js --port 8080`);
  const { raw, positionals } = walk(own, defs, 'systemd');
  if (raw.help) return { kind: 'help', topic: 'systemd' };
  if (positionals.length > 1) throw usageError('systemd', `corral systemd takes one unit name before --, got ${positionals.length} words`);
  const start = parseStart(startArgs);
  if (start.kind !== 'start') throw usageError('systemd', 'after -- come the arguments of corral start');
  return { kind: 'systemd', name: positionals[0], user: raw.user === true, start: { options: start.options, configPath: start.configPath }, startArgs };
}

/** Is `arg` one of these flags (`--port`, `--port=1`, `-p`)? */
function walkable(arg: string, defs: Record<string, OptionDef>): boolean {
  const name = arg.replace(/^--?/, '').replace(/=.*$/, '');
  return Object.values(defs).some((d) => d.flag && (d.flag.long === name || d.flag.short === name));
}

function parseControl(verb: Exclude<VerbName, 'start' | 'systemd'>, argv: string[]): Command {
  // "-1" is a count, not an option: pull signed numbers out before the flags are read.
  const counts = verb === 'scale' ? argv.filter((a) => /^[+-]\d+$/.test(a)) : [];
  const defs = { ...VERBS[verb].flags, ...COMMON } as Record<string, OptionDef>;
  const { raw, positionals, rest } = walk(argv.filter((a) => !counts.includes(a)), defs, verb);
  if (raw.help) return { kind: 'help', topic: verb };
  let f: Record<string, unknown>;
  try {
    f = validateFlags(defs, raw);
  } catch (err) {
    throw usageError(verb, (err as Error).message);
  }
  const names = [...positionals, ...rest];
  const home = f.home as string | undefined;
  const timeout = f.timeout as number | undefined;
  if (verb === 'scale') return { ...parseScale(names, counts, home, f.force === true), timeout };
  if (names.length > 1) throw usageError(verb, `corral ${verb} takes at most one cluster name, got ${names.length} arguments`);
  const name = names[0];
  switch (verb) {
    case 'status':
      return { kind: verb, name, json: f.json === true, watch: f.watch === true, home };
    case 'list':
      if (name !== undefined) throw usageError(verb, 'corral list takes no cluster name');
      return { kind: verb, json: f.json === true, home };
    case 'reload':
    case 'restart':
      return { kind: 'reload', name, home, timeout, hard: f.hard === true, verb };
    case 'logs':
      return { kind: verb, name, home, lines: (f.lines as number | undefined) ?? 200, follow: f.follow === true, json: f.json === true, time: f.time === true };
    case 'stop':
      return { kind: verb, name, home };
  }
}

function parseScale(positionals: string[], counts: string[], home: string | undefined, force: boolean): Extract<Command, { kind: 'scale' }> {
  const all = [...positionals, ...counts];
  const countArg = counts[0] ?? positionals.find((p) => /^\d+$/.test(p));
  if (countArg === undefined || all.length > 2) throw usageError('scale', 'corral scale needs a count: n, +k or -k, e.g. corral scale 4 or corral scale web +1');
  const name = positionals.find((p) => p !== countArg);
  if (/^[+-]/.test(countArg)) return { kind: 'scale', name, target: { delta: Number(countArg) }, force, home, timeout: undefined };
  const workers = Number(countArg);
  if (workers < 1) throw usageError('scale', `cannot scale to ${workers} workers: the count must be at least 1 (use 'corral stop' to stop the cluster)`);
  return { kind: 'scale', name, target: { workers }, force, home, timeout: undefined };
}
