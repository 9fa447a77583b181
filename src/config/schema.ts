/**
 * Every start option, once: its valibot schema, its command-line spelling
 * and its help line. The CLI's flags, a config file's keys and start()'s
 * options are all validated here, by the same rules and with the same
 * one-line messages. Adding an option is one entry in OPTIONS: the flag,
 * the config key, the library option, `corral help start` and the resolved
 * (defaulted) type all follow from it.
 *
 * Each option also accepts its text form ("8080", "10s", "512M"): what a
 * flag gives is the same value a config file or start() may give.
 */
import * as v from 'valibot';
import { UsageError } from '../common/errors.js';
import { parseDuration, parseSize } from './units.js';

export const STRATEGIES = ['auto', 'rr', 'os', 'reuseport'] as const;
export type Strategy = (typeof STRATEGIES)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** How an option is spelled on the command line. */
export interface Flag {
  /** `--long`, without the dashes. */
  long: string;
  short?: string;
  /** Placeholder shown in help (`<n|auto>`); absent: a switch that takes no value. */
  arg?: string;
  /** Repeatable: the values collect in an array. */
  multiple?: boolean;
  /** What a switch sets (default true): `--no-prefix` sets prefix to false. */
  sets?: unknown;
  /** A switch that may carry a value inline (`--watch`, `--watch=src`); never takes the next argument. */
  optionalArg?: boolean;
  /** Its value may begin with a dash (`--node-arg --inspect`). */
  dashValue?: boolean;
}

export interface OptionDef {
  schema: v.GenericSchema;
  flag?: Flag;
  /** One line for `corral help start`. */
  help?: string;
  /** Used when nobody gives the option. */
  default?: unknown;
  /** Where it may come from besides the CLI; both unless set to false. */
  config?: false;
  api?: false;
  /** Not a command-line flag and not listed in help (script, args, onRequest, control). */
}

// ---- building blocks: each validator carries the `expects` phrase of the error line ----

const INT_TEXT = /^\s*[+-]?\d+\s*$/;

/** A whole number in [min, max], or its text. */
export function int(expects: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return v.pipe(
    v.union([v.number(expects), v.pipe(v.string(expects), v.regex(INT_TEXT, expects), v.transform(Number))], expects),
    v.integer(expects),
    v.minValue(min, expects),
    v.maxValue(max, expects),
  );
}

const DURATION_TEXT = /^\s*\d+(\.\d+)?\s*(ms|s|m)?\s*$/i;

/** Milliseconds, or text such as "10s", "500ms", "2m". */
export function duration(expects: string, min = 0) {
  return v.pipe(
    v.union([v.number(expects), v.pipe(v.string(expects), v.regex(DURATION_TEXT, expects), v.transform((t) => parseDuration('', t)))], expects),
    v.integer(expects),
    v.minValue(min, expects),
  );
}

const SIZE_TEXT = /^\s*\d+(\.\d+)?\s*(b|k|kb|m|mb|g|gb)?\s*$/i;

/** Bytes, or text such as "512M", "2G". */
export function size(expects: string) {
  return v.pipe(
    v.union([v.number(expects), v.pipe(v.string(expects), v.regex(SIZE_TEXT, expects), v.transform((t) => parseSize('', t)))], expects),
    v.integer(expects),
    v.minValue(1, expects),
  );
}

export function bool() {
  return v.boolean('true or false');
}

export function text(expects: string) {
  return v.pipe(v.string(expects), v.minLength(1, expects));
}

/** One string or several; always an array after validation. */
export function strings(expects: string, item: v.GenericSchema<string, string> = text(expects)) {
  return v.union([v.pipe(item, v.transform((s: string) => [s])), v.array(item, expects)], expects);
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NAME = "1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit)";
const DURATION = 'a duration in ms (or with s/m, e.g. "10s")';
const ADMIN = 'a port or "host:port"';
const STICKY = 'ip, header:NAME or cookie:NAME (e.g. header:x-client-id, cookie:sid)';
/** A header or cookie name is an RFC 9110 token. */
const STICKY_RE = /^(ip|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|cookie:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/;

const ENV_PAIR = v.pipe(v.string('KEY=VALUE'), v.regex(/^[^=]+=/, 'KEY=VALUE'));
const ENV = 'an object of string values (or "KEY=VALUE" strings)';

/** `-e A=1 -e B=2`, or `{ A: '1' }` in a config file. */
const env = v.union(
  [
    v.pipe(
      v.array(ENV_PAIR, ENV),
      v.transform((pairs: string[]) => Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]))),
    ),
    // valibot's record() would take an array as an object with keys 0..n: the branch above reads arrays.
    v.pipe(v.custom<object>((o) => typeof o === 'object' && o !== null && !Array.isArray(o), ENV), v.record(v.string(), v.string('a string'))),
  ],
  ENV,
);

const WATCH = 'true, a path, or a list of paths';

/** `--watch` (the app's directory), `--watch=src,lib`, or `watch: ['src']` / `true` in a config file. */
const watch = v.union(
  [
    v.boolean(WATCH),
    v.pipe(v.string(WATCH), v.transform((s: string) => s.split(',').map((p) => p.trim()).filter((p) => p !== ''))),
    v.pipe(
      v.array(v.union([v.boolean(WATCH), v.string(WATCH)], WATCH), WATCH),
      v.transform((items: (boolean | string)[]) => items.flatMap((i) => (typeof i === 'string' ? i.split(',').map((p) => p.trim()).filter((p) => p !== '') : []))),
    ),
  ],
  WATCH,
);

const nodeArg = v.pipe(v.string('a node flag'), v.regex(/^-/, 'a node flag such as --max-old-space-size=4096'));

/**
 * The options, in the order `corral help start` lists them. `default`s here
 * are what a caller gets when nobody sets the option.
 */
export const OPTIONS = {
  script: { schema: text('the path of the server script') },
  args: { schema: v.array(v.string('a string'), 'an array of strings') },
  workers: {
    schema: v.union([int('a positive integer or "auto"', 1), v.literal('auto', 'a positive integer or "auto"')], 'a positive integer or "auto"'),
    flag: { long: 'workers', short: 'w', arg: '<n|auto>' },
    help: 'worker count (default auto: usable CPUs, cgroup quota included)',
    default: 'auto' as const,
  },
  port: {
    schema: int('a port number (0-65535)', 0, 65535),
    flag: { long: 'port', short: 'p', arg: '<n>' },
    help: 'set PORT for the workers',
  },
  name: {
    schema: v.pipe(v.string(NAME), v.regex(NAME_RE, NAME)),
    flag: { long: 'name', short: 'n', arg: '<name>' },
    help: "cluster name (default: the nearest package.json's name, else the directory's)",
  },
  strategy: {
    schema: v.picklist(STRATEGIES, `one of ${STRATEGIES.join(', ')}`),
    flag: { long: 'strategy', arg: '<s>' },
    help: `${STRATEGIES.join(' | ')} (default auto)`,
    default: 'auto' as Strategy,
  },
  env: { schema: env, flag: { long: 'env', short: 'e', arg: '<KEY=VALUE>', multiple: true }, help: 'extra environment for the workers (repeatable)' },
  envFile: {
    schema: strings('a file name (or a list of them)'),
    flag: { long: 'env-file', arg: '<file>', multiple: true },
    help: "environment for the workers from a file in Node's .env syntax (repeatable)",
  },
  nodeArgs: {
    schema: strings('node flags such as "--max-old-space-size=4096"', nodeArg),
    flag: { long: 'node-arg', arg: '<flag>', multiple: true, dashValue: true },
    help: "a flag for the workers' node, e.g. --node-arg=--max-old-space-size=4096 (repeatable)",
  },
  cwd: { schema: text('a directory path'), flag: { long: 'cwd', arg: '<dir>' }, help: 'where workers run (default: the current directory)' },
  handlers: {
    schema: text('the path of a module'),
    flag: { long: 'handlers', arg: '<module>' },
    help: "module loaded in the primary that answers worker.request(): export default (cluster) => { cluster.onRequest(...) }",
  },
  bootTimeout: {
    schema: duration('a positive duration in ms (or with s/m, e.g. "10s")', 1),
    flag: { long: 'boot-timeout', arg: '<ms>' },
    help: 'a worker must be ready (listening, or worker.ready()) within this (default 30000)',
    default: 30_000,
  },
  grace: { schema: duration(DURATION), flag: { long: 'grace', arg: '<ms>' }, help: 'drain time on stop/reload before SIGTERM (default 10000)', default: 10_000 },
  reloadParallel: {
    schema: int('a positive integer', 1),
    flag: { long: 'reload-parallel', arg: '<k>' },
    help: 'replacements booting at once during a reload (default 1)',
    default: 1,
  },
  reloadVerify: {
    schema: duration(`${DURATION}; 0 = no canary`),
    flag: { long: 'reload-verify', arg: '<ms>' },
    help: "the reload's canary serves beside the old worker this long first (default 2000, 0 = off)",
    default: 2000,
  },
  spares: {
    schema: int('an integer (0 or more)', 0),
    flag: { long: 'spares', arg: '<k>' },
    help: 'keep k booted workers whose listen() waits until a slot needs one (default 0)',
    default: 0,
  },
  compileCache: {
    schema: bool(),
    flag: { long: 'no-compile-cache', sets: false },
    help: 'do not share compiled code between the workers (on by default, Node >= 22.1)',
    default: true,
  },
  watchdog: {
    schema: duration(`${DURATION}; 0 = off`),
    flag: { long: 'watchdog', arg: '<ms>' },
    help: 'kill a worker without a heartbeat for this long (default 30000, 0 = off)',
    default: 30_000,
  },
  maxMemory: {
    schema: size('a size such as 512M, 2G or a byte count'),
    flag: { long: 'max-memory', arg: '<size>' },
    help: 'replace a worker whose RSS stays above this (e.g. 512M, 2G)',
  },
  maxRequests: { schema: int('a positive integer', 1), flag: { long: 'max-requests', arg: '<n>' }, help: 'recycle a worker after n requests' },
  maxRequestsJitter: {
    schema: int('an integer (0 or more)', 0),
    flag: { long: 'max-requests-jitter', arg: '<n>' },
    help: "add 0..n to each worker's --max-requests",
    default: 0,
  },
  force: { schema: bool(), flag: { long: 'force' }, help: 'allow more than 4 workers per usable CPU', default: false },
  watch: {
    schema: watch,
    flag: { long: 'watch', arg: '[=<paths>]', optionalArg: true },
    help: "rolling reload when files change (default: the app's directory); a broken save is refused",
  },
  watchIgnore: {
    schema: strings('a name or glob (or a list of them)'),
    flag: { long: 'watch-ignore', arg: '<glob>', multiple: true },
    help: 'more to ignore besides node_modules, .git and build output (repeatable)',
  },
  prefix: { schema: bool(), flag: { long: 'no-prefix', sets: false }, help: 'print worker output without [name slot pid] prefixes', default: true },
  logFormat: {
    schema: v.picklist(LOG_FORMATS, `one of ${LOG_FORMATS.join(', ')}`),
    flag: { long: 'log-format', arg: '<text|json>' },
    help: "json: one object per line (time, level, source, app, worker, pid, msg; an app's own JSON lines merged)",
    default: 'text' as LogFormat,
  },
  logTime: { schema: bool(), flag: { long: 'log-time' }, help: 'text lines start with an ISO timestamp', default: false },
  logBuffer: {
    schema: int('a line count (0 = keep none)', 0, 1_000_000),
    flag: { long: 'log-buffer', arg: '<lines>' },
    help: "lines kept per worker slot (and of corral's own) for 'corral logs' (default 1000)",
    default: 1000,
  },
  home: { schema: text('a directory path'), flag: { long: 'home', arg: '<dir>' }, help: 'control socket directory (default $CORRAL_HOME or ~/.corral)', config: false },
  admin: {
    schema: v.union([v.pipe(v.number(ADMIN), v.integer(ADMIN), v.minValue(0, ADMIN), v.maxValue(65535, ADMIN)), text(ADMIN)], ADMIN),
    flag: { long: 'admin', arg: '<port|host:port>' },
    help: 'admin HTTP server: /metrics /status /healthz /readyz and a dashboard (default host 127.0.0.1)',
  },
  adminToken: {
    schema: text('a token string'),
    flag: { long: 'admin-token', arg: '<token>' },
    help: 'Bearer token for it (or $CORRAL_ADMIN_TOKEN); required on a non-loopback host',
  },
  minReady: { schema: int('an integer (0 or more)', 0), flag: { long: 'min-ready', arg: '<n>' }, help: '/readyz is 200 only with at least n ready workers (default 1)' },
  adminActions: { schema: bool(), flag: { long: 'admin-actions' }, help: 'allow reload and scale from the admin server (POST, off by default)' },
  sticky: {
    schema: v.pipe(v.string(STICKY), v.regex(STICKY_RE, STICKY)),
    flag: { long: 'sticky', arg: '<key>' },
    help: 'sticky sessions: ip | header:NAME | cookie:NAME; the primary routes each connection by its key (replaces --strategy)',
  },
  adapterRelay: {
    schema: bool(),
    flag: { long: 'no-adapter-relay', sets: false },
    help: 'do not relay Socket.IO cluster-adapter messages between the workers (on by default)',
    default: true,
  },
  control: { schema: bool(), config: false, default: true },
  onRequest: {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any handler signature; messaging.ts types the calls
    schema: v.record(v.string(), v.custom<(...args: any[]) => unknown>((f) => typeof f === 'function', 'a function'), 'an object mapping request names to functions'),
    config: false,
  },
} satisfies Record<string, OptionDef>;

export type OptionKey = keyof typeof OPTIONS;
type Defs = typeof OPTIONS;

/** Where options come from: each names a key its own way in errors. */
export type Source = 'cli' | 'config' | 'api';

function entriesFor(source: Source) {
  const out: Record<string, v.GenericSchema> = {};
  for (const [key, def] of Object.entries(OPTIONS) as [string, OptionDef][]) {
    if (source === 'config' && def.config === false) continue;
    if (source === 'api' && def.api === false) continue;
    if (source === 'cli' && !def.flag) continue;
    out[key] = v.optional(def.schema);
  }
  return out;
}

type Entries = { [K in OptionKey]: v.OptionalSchema<Defs[K]['schema'], undefined> };
const optionsSchema = (source: Source) => v.strictObject(entriesFor(source) as Entries);

/** Valid options, every one still optional (no defaults applied). */
export type ValidOptions = v.InferOutput<ReturnType<typeof optionsSchema>>;

type DefaultedKey = { [K in OptionKey]: Defs[K] extends { default: unknown } ? K : never }[OptionKey];
/** Valid options with the defaults of OPTIONS filled in. */
export type WithDefaults = Omit<ValidOptions, DefaultedKey> & { [K in DefaultedKey]-?: Exclude<ValidOptions[K], undefined> };

export const DEFAULTS = Object.fromEntries(
  Object.entries(OPTIONS).flatMap(([k, d]) => ('default' in d ? [[k, d.default]] : [])),
) as { [K in DefaultedKey]: Defs[K]['default'] };

const SCHEMAS: Record<Source, ReturnType<typeof optionsSchema>> = {
  cli: optionsSchema('cli'),
  config: optionsSchema('config'),
  api: optionsSchema('api'),
};

/** How a caller spelled a key: `--workers`, `apps[0].workers`, `workers`. */
export type Label = (key: string) => string;

export function flagLabel(key: string): string {
  const flag = (OPTIONS as Record<string, OptionDef>)[key]?.flag;
  return flag ? `--${flag.long}` : key;
}

export function knownKeys(source: Source): string[] {
  return Object.keys(entriesFor(source));
}

/**
 * Validate options from `source`; returns them typed and converted ("10s"
 * -> 10000), or throws a UsageError naming the first mistake in one line.
 */
export function validateOptions(input: unknown, source: Source, label: Label = (k) => k): ValidOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new UsageError(`options must be an object, got ${JSON.stringify(input)}`);
  }
  const result = v.safeParse(SCHEMAS[source], input);
  if (result.success) return result.output;
  throw new UsageError(describe(result.issues[0], input as Record<string, unknown>, source, label));
}

/** Validate a command's own flags (`--timeout`, `-n`) by the same rules; `raw` holds what the command line gave. */
export function validateFlags(defs: Record<string, OptionDef>, raw: Record<string, unknown>): Record<string, unknown> {
  const schema = v.strictObject(Object.fromEntries(Object.entries(defs).map(([k, d]) => [k, v.optional(d.schema)])));
  const result = v.safeParse(schema, raw);
  if (result.success) return result.output;
  throw new UsageError(describe(result.issues[0], raw, 'cli', (k) => (defs[k]?.flag ? `--${defs[k]!.flag!.long}` : k)));
}

function describe(top: v.BaseIssue<unknown>, input: Record<string, unknown>, source: Source, label: Label): string {
  // A union whose branches all failed carries their issues: the first says it best (`-e NOEQUALS`: the KEY=VALUE item).
  // Every schema here is built with an "expects" message, so whichever issue it is reads as one. Its path continues the union's.
  let issue = top;
  let path = [...(top.path ?? [])];
  while (issue.type === 'union' && issue.issues?.length) {
    issue = issue.issues[0] as v.BaseIssue<unknown>;
    path = [...path, ...(issue.path ?? [])];
  }
  const [first, ...nested] = path;
  const key = String(first?.key ?? '');
  if (issue.type === 'strict_object' && issue.expected === 'never') return unknownKey(key, source, label);
  // Repeated flags are one option: an item's index would mean nothing on the command line.
  const where = label(key) + (source === 'cli' ? '' : nested.map((p) => (typeof p.key === 'number' ? `[${p.key}]` : `.${String(p.key)}`)).join(''));
  // At the top, the value as the caller wrote it ("0", not the 0 it became).
  const value = nested.length === 0 ? input[key] : issue.input;
  return `${where} must be ${issue.message}, got ${JSON.stringify(value) ?? String(value)}`;
}

function unknownKey(key: string, source: Source, label: Label): string {
  const known = knownKeys(source);
  const near = closest(key, known);
  const hint = near ? `did you mean ${label(near)}? ` : '';
  const what = source === 'config' ? 'unknown key' : 'unknown option';
  return `${label(key)}: ${what}; ${hint}(known: ${known.join(', ')})`;
}

/** The known name a typo most likely meant (edit distance at most 2), if any. */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const d = editDistance(word.toLowerCase(), name.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const swap = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? 1 : Infinity;
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1), swap);
    }
    prev = row;
  }
  return prev[b.length] as number;
}

// ---- config files ----------------------------------------------------------

/**
 * A config file's apps: `{ apps: [...] }`, or a single app's keys at the
 * top level. Each is validated like start()'s options; errors name the
 * file and the key path.
 */
export function parseConfig(value: unknown, file: string): ConfigApps {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${file}: must describe an app ({ "script": "server.js", ... }) or { "apps": [ ... ] }, got ${JSON.stringify(value)}`);
  }
  const top = value as Record<string, unknown>;
  if (!('apps' in top)) return { apps: [parseApp(top, file, '')], wrapped: false };
  const extra = Object.keys(top).filter((k) => k !== 'apps');
  if (extra.length > 0) {
    throw new UsageError(`${file}: ${extra[0]}: unknown key next to "apps"; put app options inside each app (or drop the "apps" wrapper for a single app)`);
  }
  if (!Array.isArray(top.apps)) throw new UsageError(`${file}: apps must be an array of apps, got ${JSON.stringify(top.apps)}`);
  if (top.apps.length === 0) throw new UsageError(`${file}: apps must be an array of at least one app, got []`);
  const apps = top.apps.map((app, i) => {
    if (typeof app !== 'object' || app === null || Array.isArray(app)) throw new UsageError(`${file}: apps[${i}] must be an object with a "script", got ${JSON.stringify(app)}`);
    return parseApp(app as Record<string, unknown>, file, `apps[${i}].`);
  });
  return { apps, wrapped: true };
}

export interface ConfigApps {
  apps: ValidOptions[];
  /** Written as `{ apps: [...] }` (errors then say `apps[0]`), not as a single app's keys. */
  wrapped: boolean;
}

function parseApp(app: Record<string, unknown>, file: string, at: string): ValidOptions {
  if (app.script === undefined) throw new UsageError(`${file}: ${at}script is required: the server file to run, e.g. "script": "server.js"`);
  try {
    return validateOptions(app, 'config', (key) => `${at}${key}`);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${file}: ${err.message}`);
    throw err;
  }
}
