/**
 * The config file's schema (valibot: small, typed, and its issues carry the
 * path and the value we need for one precise line per mistake).
 */
import * as v from 'valibot';
import { UsageError } from '../common/errors.js';
import { LOG_FORMATS, STRATEGIES, type StartOptions } from './options.js';
import { parseDuration, parseSize } from './units.js';

const positiveInt = (what: string) => v.pipe(v.number(what), v.integer(what), v.minValue(1, what));
const nonNegativeInt = (what: string) => v.pipe(v.number(what), v.integer(what), v.minValue(0, what));
const DURATION = 'expected a duration: milliseconds or a string such as "10s"';
const duration = v.union([nonNegativeInt(DURATION), v.pipe(v.string(DURATION), v.regex(/^\d+(\.\d+)?\s*(ms|s|m)?$/i, DURATION))], DURATION);
const ADMIN = 'expected a port or "host:port"';
const SIZE = 'expected a size: bytes or a string such as "512M" or "2G"';
const size = v.union([positiveInt(SIZE), v.pipe(v.string(SIZE), v.regex(/^\d+(\.\d+)?\s*(b|k|kb|m|mb|g|gb)?$/i, SIZE))], SIZE);

export const AppSchema = v.strictObject({
  name: v.optional(v.pipe(v.string('expected a name'), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "expected 1-64 letters, digits, '.', '_' or '-'"))),
  script: v.pipe(v.string('expected the path of the server script'), v.minLength(1, 'expected the path of the server script')),
  args: v.optional(v.array(v.string('expected a string'), 'expected an array of strings')),
  cwd: v.optional(v.string('expected a directory path')),
  workers: v.optional(v.union([v.literal('auto'), positiveInt('')], 'expected a positive integer or "auto"')),
  port: v.optional(v.pipe(v.number('expected a port number (0-65535)'), v.integer('expected a port number (0-65535)'), v.minValue(0, 'expected a port number (0-65535)'), v.maxValue(65535, 'expected a port number (0-65535)'))),
  strategy: v.optional(v.picklist(STRATEGIES, `expected one of ${STRATEGIES.join(', ')}`)),
  env: v.optional(v.record(v.string(), v.string('expected a string value'), 'expected an object of string values')),
  bootTimeout: v.optional(duration),
  grace: v.optional(duration),
  reloadParallel: v.optional(positiveInt('expected a positive integer')),
  reloadVerify: v.optional(duration),
  spares: v.optional(nonNegativeInt('expected an integer (0 or more)')),
  compileCache: v.optional(v.boolean('expected true or false')),
  watchdog: v.optional(duration),
  maxMemory: v.optional(size),
  maxRequests: v.optional(positiveInt('expected a positive integer')),
  maxRequestsJitter: v.optional(nonNegativeInt('expected an integer (0 or more)')),
  prefix: v.optional(v.boolean('expected true or false')),
  logFormat: v.optional(v.picklist(LOG_FORMATS, `expected one of ${LOG_FORMATS.join(', ')}`)),
  admin: v.optional(v.union([v.pipe(v.number(ADMIN), v.integer(ADMIN), v.minValue(0, ADMIN), v.maxValue(65535, ADMIN)), v.pipe(v.string(ADMIN), v.minLength(1, ADMIN))], ADMIN)),
  adminToken: v.optional(v.pipe(v.string('expected a token string'), v.minLength(1, 'expected a token string'))),
  minReady: v.optional(nonNegativeInt('expected an integer (0 or more)')),
  adminActions: v.optional(v.boolean('expected true or false')),
});

export const ConfigSchema = v.strictObject({
  apps: v.pipe(v.array(AppSchema, 'expected an array of apps'), v.minLength(1, 'expected at least one app')),
});

export type AppConfig = v.InferOutput<typeof AppSchema>;

function pathText(path: v.BaseIssue<unknown>['path']): string {
  let out = '';
  for (const item of path ?? []) {
    const key = item.key;
    out += typeof key === 'number' ? `[${key}]` : out === '' ? String(key) : `.${String(key)}`;
  }
  return out || '(top level)';
}

function describe(issue: v.BaseIssue<unknown>, known: string[]): string {
  const where = pathText(issue.path);
  if (issue.type === 'strict_object' && issue.expected === 'never') {
    return `${where}: unknown key (known keys: ${known.join(', ')})`;
  }
  if (issue.type === 'strict_object' && issue.received === 'undefined') return `${where}: required, missing`;
  return `${where}: ${issue.message}, got ${JSON.stringify(issue.input)}`;
}

/** Validate a parsed config file; throws a UsageError naming the first mistake's path. */
export function parseConfig(value: unknown, file: string): StartOptions[] {
  const result = v.safeParse(ConfigSchema, value);
  if (!result.success) {
    const issue = result.issues[0];
    const known = (issue.path?.length ?? 0) > 2 ? Object.keys(AppSchema.entries) : ['apps'];
    throw new UsageError(`${file}: ${describe(issue, known)}`);
  }
  return result.output.apps.map((app, i) => toStartOptions(app, `apps[${i}]`));
}

function toStartOptions(app: AppConfig, at: string): StartOptions {
  const ms = (key: string, x: number | string | undefined) => (typeof x === 'string' ? parseDuration(`${at}.${key}`, x) : x);
  const { bootTimeout, grace, watchdog, reloadVerify, maxMemory, ...rest } = app;
  const out: StartOptions = { ...rest };
  if (bootTimeout !== undefined) out.bootTimeout = ms('bootTimeout', bootTimeout);
  if (grace !== undefined) out.grace = ms('grace', grace);
  if (watchdog !== undefined) out.watchdog = ms('watchdog', watchdog);
  if (reloadVerify !== undefined) out.reloadVerify = ms('reloadVerify', reloadVerify);
  if (maxMemory !== undefined) out.maxMemory = typeof maxMemory === 'string' ? parseSize(`${at}.maxMemory`, maxMemory) : maxMemory;
  return out;
}
