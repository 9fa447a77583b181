import { statSync, accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isLoopback, parseAdminAddress, type AdminAddress } from '../admin/address.js';
import { UsageError } from '../common/errors.js';
import { usableCpus } from '../primary/cpus.js';
import type { RequestHandler } from '../primary/messaging.js';

export const STRATEGIES = ['auto', 'rr', 'os', 'reuseport'] as const;
export type Strategy = (typeof STRATEGIES)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What a caller may pass: the CLI after parsing argv, or the library API. */
export interface StartOptions {
  script: string;
  args?: string[];
  workers?: number | 'auto';
  name?: string;
  port?: number;
  strategy?: Strategy;
  env?: Record<string, string>;
  cwd?: string;
  bootTimeout?: number;
  grace?: number;
  reloadParallel?: number;
  /** The reload's canary serves beside the old worker this long before the reload goes on (0: no canary). */
  reloadVerify?: number;
  watchdog?: number;
  maxMemory?: number;
  maxRequests?: number;
  maxRequestsJitter?: number;
  prefix?: boolean;
  logFormat?: LogFormat;
  /** Directory of control sockets; default $CORRAL_HOME or ~/.corral. */
  home?: string;
  /** Listen on the control socket (default true). */
  control?: boolean;
  /** Allow a worker count above WORKERS_PER_CPU_LIMIT × the usable CPUs. */
  force?: boolean;
  /** Warm spares: booted workers whose listen() waits until a slot needs them (default 0). */
  spares?: number;
  /** Share compiled code between the workers (Node >= 22.1; default true). */
  compileCache?: boolean;
  /**
   * Handlers for `worker.request(name)`, registered before any worker boots
   * (workers that ask at boot need not wait for `await start()`).
   */
  onRequest?: Record<string, RequestHandler>;
  /** Admin HTTP server: a port (bound on 127.0.0.1) or "host:port"; off when absent. */
  admin?: number | string;
  /** Bearer token for the admin server; default $CORRAL_ADMIN_TOKEN. Required on a non-loopback host. */
  adminToken?: string;
  /** /readyz answers 200 only with at least this many ready workers (default 1). */
  minReady?: number;
  /** Allow POST /actions/reload and /actions/scale on the admin server (default false). */
  adminActions?: boolean;
}

export interface AdminOptions extends AdminAddress {
  token: string | undefined;
  minReady: number;
  actions: boolean;
}

export interface ResolvedOptions {
  script: string;
  args: string[];
  workers: number | 'auto';
  name: string;
  port: number | undefined;
  strategy: Strategy;
  env: Record<string, string>;
  cwd: string;
  bootTimeout: number;
  grace: number;
  reloadParallel: number;
  reloadVerify: number;
  watchdog: number;
  maxMemory: number | undefined;
  maxRequests: number | undefined;
  maxRequestsJitter: number;
  prefix: boolean;
  logFormat: LogFormat;
  home: string;
  control: boolean;
  /** Largest worker count accepted without force (here and for scale()). */
  maxWorkers: number;
  spares: number;
  compileCache: boolean;
  onRequest: Record<string, RequestHandler>;
  admin: AdminOptions | undefined;
}

export const DEFAULTS = {
  bootTimeout: 30_000,
  grace: 10_000,
  reloadParallel: 1,
  reloadVerify: 2000,
  watchdog: 30_000,
  maxRequestsJitter: 0,
  minReady: 1,
} as const;

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

function integer(label: string, value: unknown, min: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new UsageError(`${label} must be ${what}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalInteger(label: string, value: unknown, min: number, what: string): number | undefined {
  return value === undefined ? undefined : integer(label, value, min, what);
}

function oneOf<T extends string>(label: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${label} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
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

function defaultName(script: string): string {
  const base = path.basename(script).replace(/\.[cm]?[jt]s$/, '').replace(/[^A-Za-z0-9_.-]/g, '-');
  return NAME_RE.test(base) ? base : 'app';
}

/** Validate and fill in defaults; `label` maps an option key to how the caller spelled it. */
export function resolveOptions(input: StartOptions, label: (key: string) => string = (k) => k): ResolvedOptions {
  const cwd = input.cwd === undefined ? logicalCwd() : path.resolve(logicalCwd(), input.cwd);
  if (typeof input.script !== 'string' || input.script === '') throw new UsageError('no script given; usage: corral <script> [options]');
  const script = checkScript(input.script, cwd);
  const workers = input.workers === undefined || input.workers === 'auto'
    ? 'auto'
    : integer(label('workers'), input.workers, 1, 'a positive integer or "auto"');
  const cpus = usableCpus();
  const maxWorkers = input.force ? Infinity : WORKERS_PER_CPU_LIMIT * cpus;
  if (workers !== 'auto' && workers > maxWorkers) {
    throw new UsageError(`${label('workers')} ${workers} is more than ${maxWorkers} (${WORKERS_PER_CPU_LIMIT} per usable CPU, ${cpus} usable); use ${label('force')} to run that many anyway`);
  }
  const spares = integer(label('spares'), input.spares ?? 0, 0, 'an integer (0 or more)');
  if ((workers === 'auto' ? cpus : workers) + spares > maxWorkers) {
    throw new UsageError(`${label('spares')} ${spares} with ${workers === 'auto' ? cpus : workers} workers is more than ${maxWorkers} processes (${WORKERS_PER_CPU_LIMIT} per usable CPU); use fewer or ${label('force')}`);
  }
  const maxMemory = optionalInteger(label('maxMemory'), input.maxMemory, 1, 'a positive size');
  const maxRequests = optionalInteger(label('maxRequests'), input.maxRequests, 1, 'a positive integer');
  return {
    script,
    args: input.args ?? [],
    workers,
    name: checkName(label('name'), input.name ?? defaultName(script)),
    port: optionalInteger(label('port'), input.port, 0, 'a port number (0-65535)'),
    strategy: oneOf(label('strategy'), input.strategy ?? 'auto', STRATEGIES),
    env: input.env ?? {},
    cwd,
    bootTimeout: integer(label('bootTimeout'), input.bootTimeout ?? DEFAULTS.bootTimeout, 1, 'a positive duration in ms'),
    grace: integer(label('grace'), input.grace ?? DEFAULTS.grace, 0, 'a duration in ms (0 or more)'),
    reloadParallel: integer(label('reloadParallel'), input.reloadParallel ?? DEFAULTS.reloadParallel, 1, 'a positive integer'),
    reloadVerify: integer(label('reloadVerify'), input.reloadVerify ?? DEFAULTS.reloadVerify, 0, 'a duration in ms (0 = no canary)'),
    watchdog: integer(label('watchdog'), input.watchdog ?? DEFAULTS.watchdog, 0, 'a duration in ms (0 = off)'),
    maxMemory,
    maxRequests,
    maxRequestsJitter: integer(label('maxRequestsJitter'), input.maxRequestsJitter ?? DEFAULTS.maxRequestsJitter, 0, 'an integer (0 or more)'),
    prefix: input.prefix ?? true,
    logFormat: oneOf(label('logFormat'), input.logFormat ?? 'text', LOG_FORMATS),
    home: input.home ?? defaultHome(),
    control: input.control ?? true,
    maxWorkers,
    spares,
    compileCache: input.compileCache ?? true,
    onRequest: checkHandlers(label('onRequest'), input.onRequest),
    admin: resolveAdmin(input, label),
  };
}

function checkHandlers(label: string, value: unknown): Record<string, RequestHandler> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Object.values(value).some((h) => typeof h !== 'function')) {
    throw new UsageError(`${label} must be an object mapping request names to functions`);
  }
  return { ...(value as Record<string, RequestHandler>) };
}

/**
 * The admin server's settings. A non-loopback host without a token is
 * refused: the cluster's status and its reload/scale actions would be open to
 * the network. The token may come from $CORRAL_ADMIN_TOKEN (kept out of `ps`).
 */
function resolveAdmin(input: StartOptions, label: (key: string) => string): AdminOptions | undefined {
  if (input.admin === undefined) {
    for (const key of ['adminToken', 'minReady', 'adminActions'] as const) {
      if (input[key] !== undefined) throw new UsageError(`${label(key)} needs ${label('admin')} <port|host:port> (the admin server is off without it)`);
    }
    return undefined;
  }
  if (typeof input.admin !== 'number' && typeof input.admin !== 'string') {
    throw new UsageError(`${label('admin')} must be a port or "host:port", got ${JSON.stringify(input.admin)}`);
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
    minReady: integer(label('minReady'), input.minReady ?? DEFAULTS.minReady, 0, 'an integer (0 or more)'),
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
