import { statSync, accessSync, constants, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isLoopback, parseAdminAddress, type AdminAddress } from '../admin/address.js';
import { UsageError } from '../common/errors.js';
import { usableCpus } from '../primary/cpus.js';
import type { RequestHandler } from '../primary/messaging.js';
import { DEFAULTS, validateOptions, type Label, type ValidOptions, type WithDefaults } from './schema.js';
import { toStickyKey, type StickyKey } from './sticky.js';

export { STRATEGIES, LOG_FORMATS, DEFAULTS, type Strategy, type LogFormat } from './schema.js';

/**
 * What a caller may pass: the CLI after parsing argv, a config file's app, or
 * the library API. Every key is described (and validated) in schema.ts;
 * text forms ("10s", "512M", "8080") are accepted too.
 */
export type StartOptions = Omit<ValidOptions, 'script' | 'onRequest'> & {
  script: string;
  /**
   * Handlers for `worker.request(name)`, registered before any worker boots
   * (workers that ask at boot need not wait for `await start()`).
   */
  onRequest?: Record<string, RequestHandler>;
};

export interface AdminOptions extends AdminAddress {
  token: string | undefined;
  minReady: number;
  actions: boolean;
}

/** Options checked and completed: paths absolute, defaults filled in. */
export interface ResolvedOptions extends Omit<WithDefaults, 'script' | 'args' | 'name' | 'env' | 'cwd' | 'home' | 'onRequest' | 'admin' | 'adminToken' | 'minReady' | 'adminActions' | 'envFile' | 'nodeArgs' | 'handlers' | 'watch' | 'watchIgnore' | 'sticky'> {
  script: string;
  args: string[];
  name: string;
  env: Record<string, string>;
  cwd: string;
  home: string;
  /** Absolute paths of the env files, read at every spawn (an edit applies at the next reload). */
  envFile: string[];
  nodeArgs: string[];
  /** Absolute path of the primary-side request handler module. */
  handlers: string | undefined;
  /** Absolute paths to watch (empty: no watching). */
  watch: string[];
  watchIgnore: string[];
  /** Largest worker count accepted without force (here and for scale()). */
  maxWorkers: number;
  spares: number;
  compileCache: boolean;
  onRequest: Record<string, RequestHandler>;
  admin: AdminOptions | undefined;
  /** --sticky: the primary owns the ports and routes connections by this key. */
  sticky: StickyKey | undefined;
}

/**
 * More workers than this per usable CPU only add memory and contention
 * (and a typo such as `scale 100000` would fork a process storm).
 */
export const WORKERS_PER_CPU_LIMIT = 4;
/** A token shorter than this is refused: it would be guessable. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The working directory as the user names it. process.cwd() is the physical
 * path: started in a symlinked `current -> releases/v1`, it says releases/v1
 * forever. The shell's PWD keeps the path the user stood in, when it still
 * names the same directory.
 */
export function logicalCwd(env: NodeJS.ProcessEnv = process.env, physical = process.cwd()): string {
  const pwd = env.PWD;
  if (pwd && path.isAbsolute(pwd) && sameDirectory(pwd, physical)) return path.normalize(pwd);
  return physical;
}

function sameDirectory(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

export function defaultHome(): string {
  return process.env.CORRAL_HOME || path.join(os.homedir(), '.corral');
}

/** The script must be a readable file; say which and how to fix it. */
export function checkScript(script: string, cwd: string): string {
  const abs = path.resolve(cwd, script);
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new UsageError(`script not found: ${script} (looked at ${abs}); check the path`);
  }
  if (st.isDirectory()) {
    throw new UsageError(`${script} is a directory; name the server file inside it, e.g. ${path.join(script, 'server.js')}`);
  }
  try {
    accessSync(abs, constants.R_OK);
  } catch {
    throw new UsageError(`script is not readable: ${abs}; check its permissions`);
  }
  return abs;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkName(label: string, name: string): string {
  if (!NAME_RE.test(name)) {
    throw new UsageError(`${label} must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * The cluster's default name: the nearest package.json's name (two
 * projects' server.js no longer collide), else the script's directory's name.
 */
export function defaultName(script: string, readJson: (file: string) => unknown = readPackageJson): string {
  const dir = path.dirname(script);
  for (let d = dir; ; d = path.dirname(d)) {
    const pkg = readJson(path.join(d, 'package.json')) as { name?: unknown } | undefined;
    if (pkg && typeof pkg.name === 'string' && pkg.name !== '') return asName(pkg.name);
    if (path.dirname(d) === d) break;
  }
  return asName(path.basename(dir));
}

function readPackageJson(file: string): unknown {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** "@acme/api" -> "acme-api"; anything else not allowed in a name becomes '-'. */
function asName(text: string): string {
  const name = text.replace(/^@/, '').replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64);
  return NAME_RE.test(name) ? name : 'app';
}

/** A file named by an option must exist: say which, where it was looked for, and how to fix it. */
function existingFile(label: string, file: string, cwd: string): string {
  const abs = path.resolve(cwd, file);
  if (!existsSync(abs)) throw new UsageError(`${label} ${file}: not found (looked at ${abs}); check the path`);
  return abs;
}

/** Validate start()'s options (the library API) and fill in defaults. */
export function resolveStartOptions(input: unknown): ResolvedOptions {
  return resolveOptions(validateOptions(input, 'api'));
}

/**
 * Check what only the machine can tell (files exist, CPUs for the worker
 * count, the admin address) and fill in defaults. `input` is already valid
 * by the schema; `label` maps an option key to how the caller spelled it.
 */
export function resolveOptions(input: ValidOptions, label: Label = (k) => k): ResolvedOptions {
  const o = { ...DEFAULTS, ...withoutUndefined(input) } as WithDefaults;
  const cwd = o.cwd === undefined ? logicalCwd() : path.resolve(logicalCwd(), o.cwd);
  if (typeof o.script !== 'string' || o.script === '') throw new UsageError('no script given; usage: corral <script> [options]');
  const script = checkScript(o.script, cwd);
  const cpus = usableCpus();
  const maxWorkers = o.force ? Infinity : WORKERS_PER_CPU_LIMIT * cpus;
  if (o.workers !== 'auto' && o.workers > maxWorkers) {
    throw new UsageError(`${label('workers')} ${o.workers} is more than ${maxWorkers} (${WORKERS_PER_CPU_LIMIT} per usable CPU, ${cpus} usable); use ${label('force')} to run that many anyway`);
  }
  if (o.sticky !== undefined && o.strategy !== 'auto') {
    throw new UsageError(`${label('sticky')} routes every TCP connection through the primary by its key, in place of ${label('strategy')} ${o.strategy}; drop ${label('strategy')}`);
  }
  const workerCount = o.workers === 'auto' ? cpus : o.workers;
  if (workerCount + o.spares > maxWorkers) {
    throw new UsageError(`${label('spares')} ${o.spares} with ${workerCount} workers is more than ${maxWorkers} processes (${WORKERS_PER_CPU_LIMIT} per usable CPU); use fewer or ${label('force')}`);
  }
  return {
    ...o,
    script,
    args: o.args ?? [],
    name: o.name ?? defaultName(script),
    env: o.env ?? {},
    cwd,
    home: o.home ?? defaultHome(),
    envFile: (o.envFile ?? []).map((f) => existingFile(label('envFile'), f, cwd)),
    nodeArgs: o.nodeArgs ?? [],
    handlers: o.handlers === undefined ? undefined : existingFile(label('handlers'), o.handlers, cwd),
    watch: watchPaths(o.watch, cwd, label('watch')),
    watchIgnore: o.watchIgnore ?? [],
    maxWorkers,
    onRequest: { ...(o.onRequest as Record<string, RequestHandler> | undefined) },
    admin: resolveAdmin(o, label),
    sticky: o.sticky === undefined ? undefined : toStickyKey(o.sticky),
  };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
}

/** `--watch` alone watches the app's directory; named paths must exist. */
function watchPaths(watch: boolean | string[] | undefined, cwd: string, label: string): string[] {
  if (watch === undefined || watch === false) return [];
  if (watch === true || watch.length === 0) return [cwd];
  return watch.map((p) => existingFile(label, p, cwd));
}

/**
 * The admin server's settings. A non-loopback host without a token is
 * refused: the cluster's status and its reload/scale actions would be open to
 * the network. The token may come from $CORRAL_ADMIN_TOKEN (kept out of `ps`).
 */
function resolveAdmin(input: ValidOptions, label: Label): AdminOptions | undefined {
  if (input.admin === undefined) {
    for (const key of ['adminToken', 'minReady', 'adminActions'] as const) {
      if (input[key] !== undefined) throw new UsageError(`${label(key)} needs ${label('admin')} <port|host:port> (the admin server is off without it)`);
    }
    return undefined;
  }
  const address = parseAdminAddress(label('admin'), input.admin);
  const token = input.adminToken ?? (process.env.CORRAL_ADMIN_TOKEN || undefined);
  if (token !== undefined) checkToken(input.adminToken !== undefined ? label('adminToken') : 'CORRAL_ADMIN_TOKEN', token);
  if (token === undefined && !isLoopback(address.host)) {
    throw new UsageError(
      `${label('admin')} ${address.host}:${address.port} is not a loopback address: give a token with ${label('adminToken')} or CORRAL_ADMIN_TOKEN (e.g. $(openssl rand -hex 32)), or bind 127.0.0.1`,
    );
  }
  return {
    ...address,
    token,
    minReady: input.minReady ?? 1,
    actions: input.adminActions ?? false,
  };
}

function checkToken(label: string, token: unknown): void {
  if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
    throw new UsageError(`${label} must be printable ASCII without spaces (it travels in an HTTP header)`);
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(`${label} is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. $(openssl rand -hex 32))`);
  }
}
