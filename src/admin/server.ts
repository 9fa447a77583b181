import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CorralError, UsageError, isErrnoException } from '../common/errors.js';
import type { AdminOptions } from '../config/options.js';
import { runCommand } from '../control/commands.js';
import { PROTOCOL_VERSION, ProtocolError, parseRequest } from '../control/protocol.js';
import { ClusterMetrics } from '../metrics/cluster-metrics.js';
import { MetricsScraper } from '../metrics/scrape.js';
import type { Supervisor } from '../primary/supervisor.js';
import { hostForUrl } from './address.js';
import { Dashboard } from './dashboard.js';
import { csrfProblem, hasToken, hostIsLoopback } from './guard.js';

/** Limits that keep a slow or hostile client from costing the primary more than a few sockets. */
export const ADMIN_LIMITS = {
  /** All headers must arrive within this (slowloris). */
  headersTimeoutMs: 5000,
  /** The whole request, body included. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5000,
  /** A connection that sends nothing for this long is closed. */
  idleTimeoutMs: 15_000,
  /** Connections at once; more are closed on accept. */
  maxConnections: 64,
  /** Largest request body (the actions' JSON); larger is refused before it is read. */
  maxBodyBytes: 16 * 1024,
  maxHeaderBytes: 16 * 1024,
  /** How long /metrics waits for a worker's app metrics. */
  workerMetricsTimeoutMs: 1000,
} as const;

export interface AdminContext {
  version: string;
  /** Answers a control command the way the control socket does (shared with it). */
  stopDeadlineMs: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

interface Route {
  method: 'GET' | 'POST';
  /** Answers without a token: /healthz and /readyz (one bit, for probes that cannot present one) and the page's static shell. */
  open?: boolean;
  handle: Handler;
}

/**
 * The admin HTTP server, run by the primary so it answers while workers are
 * stuck. It only reads the supervisor's state and calls its public methods
 * (which enqueue); nothing here blocks the supervisor's loop, and every
 * request is bounded in size and time.
 */
export class AdminServer {
  readonly #options: AdminOptions;
  readonly #supervisor: Supervisor;
  readonly #context: AdminContext;
  readonly #scraper: MetricsScraper;
  readonly #dashboard: Dashboard;
  readonly #routes: Map<string, Route>;
  readonly #server: http.Server;

  private constructor(options: AdminOptions, supervisor: Supervisor, context: AdminContext) {
    this.#options = options;
    this.#supervisor = supervisor;
    this.#context = context;
    this.#scraper = new MetricsScraper(supervisor, { minReady: options.minReady, version: context.version, workerTimeoutMs: ADMIN_LIMITS.workerMetricsTimeoutMs });
    this.#dashboard = new Dashboard({ actions: options.actions, token: options.token !== undefined });
    this.#routes = new Map<string, Route>([
      ['/healthz', { method: 'GET', open: true, handle: (_req, res) => send(res, 200, 'text/plain', 'ok\n') }],
      ['/readyz', { method: 'GET', open: true, handle: (_req, res) => this.#readyz(res) }],
      ['/status', { method: 'GET', handle: (_req, res) => json(res, 200, this.#supervisor.status()) }],
      ['/metrics', { method: 'GET', handle: (_req, res) => this.#metrics(res) }],
      // The page alone, with no data in it: see Dashboard.
      ['/', { method: 'GET', open: true, handle: (_req, res) => this.#dashboard.serve(res) }],
      ['/actions/reload', { method: 'POST', handle: (req, res) => this.#action(req, res, 'reload') }],
      ['/actions/scale', { method: 'POST', handle: (req, res) => this.#action(req, res, 'scale') }],
    ]);
    this.#server = http.createServer(
      {
        headersTimeout: ADMIN_LIMITS.headersTimeoutMs,
        requestTimeout: ADMIN_LIMITS.requestTimeoutMs,
        keepAliveTimeout: ADMIN_LIMITS.keepAliveTimeoutMs,
        maxHeaderSize: ADMIN_LIMITS.maxHeaderBytes,
        // The timeouts above are enforced by this sweep (Node's default: every 30 s).
        connectionsCheckingInterval: 1000,
      },
      (req, res) => void this.#dispatch(req, res),
    );
    this.#server.maxConnections = ADMIN_LIMITS.maxConnections;
    this.#server.setTimeout(ADMIN_LIMITS.idleTimeoutMs, (socket) => socket.destroy());
  }

  static async listen(options: AdminOptions, supervisor: Supervisor, context: AdminContext): Promise<AdminServer> {
    const admin = new AdminServer(options, supervisor, context);
    await new Promise<void>((resolve, reject) => {
      admin.#server.once('error', (err) => reject(listenError(err, options)));
      admin.#server.listen(options.port, options.host, () => resolve());
    });
    // After listening, a client's socket error is that client's problem alone.
    admin.#server.on('clientError', (_err, socket) => socket.destroy());
    return admin;
  }

  /** http://host:port/ as bound (the real port when 0 was asked for). */
  get url(): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://${hostForUrl(this.#options.host)}:${port}/`;
  }

  close(): void {
    this.#server.close();
    this.#server.closeAllConnections();
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    const path = (req.url ?? '/').split('?')[0] as string;
    const route = this.#routes.get(path);
    if (!route) return send(res, 404, 'text/plain', `not found: ${path} (routes: ${[...this.#routes.keys()].join(' ')})\n`);
    if (req.method !== route.method && !(req.method === 'HEAD' && route.method === 'GET')) {
      res.setHeader('allow', route.method === 'GET' ? 'GET, HEAD' : 'POST');
      return send(res, 405, 'text/plain', `${path} takes ${route.method}\n`);
    }
    const bodyLength = Number(req.headers['content-length'] ?? 0);
    if (bodyLength > ADMIN_LIMITS.maxBodyBytes) return refuseBody(res);
    if (route.method === 'GET' && (bodyLength > 0 || req.headers['transfer-encoding'])) res.shouldKeepAlive = false;
    if (!route.open) {
      const refusal = this.#authProblem(req);
      if (refusal) {
        if (refusal.status === 401) res.setHeader('www-authenticate', 'Bearer realm="corral"');
        return send(res, refusal.status, 'text/plain', `${refusal.message}\n`);
      }
    }
    try {
      await route.handle(req, res);
    } catch (err) {
      if (!res.headersSent) errorJson(res, 500, 'E_ADMIN', err instanceof Error ? err.message : String(err));
      else res.destroy();
    }
  }

  #authProblem(req: IncomingMessage): { status: number; message: string } | null {
    const token = this.#options.token;
    if (token !== undefined) return hasToken(req, token) ? null : { status: 401, message: 'unauthorized: send Authorization: Bearer <token>' };
    if (!hostIsLoopback(req)) return { status: 403, message: `refused: Host ${req.headers.host ?? '(none)'} is not a loopback name (a token is needed to serve other names)` };
    return null;
  }

  #readyz(res: ServerResponse): void {
    const status = this.#supervisor.status();
    const ready = ClusterMetrics.isReady(status, this.#options.minReady);
    const why = status.state === 'stopping' ? 'stopping' : `${status.totals.ready} of ${status.desired} workers ready (min ${this.#options.minReady})`;
    send(res, ready ? 200 : 503, 'text/plain', `${ready ? 'ready' : 'not ready'}: ${why}\n`);
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const text = await this.#scraper.render();
    send(res, 200, this.#scraper.contentType, text);
  }

  async #action(req: IncomingMessage, res: ServerResponse, cmd: 'reload' | 'scale'): Promise<void> {
    if (!this.#options.actions) return errorJson(res, 403, 'E_ACTIONS_OFF', 'actions are off; start corral with --admin-actions to allow reload and scale here');
    const csrf = csrfProblem(req);
    if (csrf) return errorJson(res, 403, 'E_CSRF', csrf);
    const body = await readBody(req, ADMIN_LIMITS.maxBodyBytes);
    if (body === null) return refuseBody(res);
    let request;
    try {
      const fields: unknown = body.trim() === '' ? {} : JSON.parse(body);
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw new ProtocolError('the body must be a JSON object');
      request = parseRequest(JSON.stringify({ ...(cmd === 'scale' ? pick(fields, ['workers', 'delta']) : {}), v: PROTOCOL_VERSION, id: 0, cmd }));
    } catch (err) {
      const message = err instanceof SyntaxError ? 'the body is not valid JSON' : (err as Error).message;
      return errorJson(res, 400, 'E_BAD_REQUEST', cmd === 'scale' ? `${message}; send {"workers": n} or {"delta": k}` : message);
    }
    // A reload takes as long as the workers need to boot and drain: only the timeouts above bound the request.
    req.socket.setTimeout(0);
    try {
      json(res, 200, await runCommand(this.#supervisor, request, () => {}, this.#context.stopDeadlineMs));
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const status = e.code === 'E_USAGE' ? 400 : e.code === 'E_STOPPING' ? 409 : 500;
      errorJson(res, status, e.code ?? 'E_ACTION', e.message ?? String(err));
    }
  }
}

function pick(obj: object, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => keys.includes(k)));
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type.includes('charset') ? type : `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}

function errorJson(res: ServerResponse, status: number, code: string, message: string): void {
  json(res, status, { error: { code, message } });
}

/** Too large to read: answer and close, so the rest is never read. */
function refuseBody(res: ServerResponse): void {
  res.shouldKeepAlive = false;
  errorJson(res, 413, 'E_TOO_LARGE', `request body over ${ADMIN_LIMITS.maxBodyBytes} bytes`);
}

/** The body as text, or null once it passes `limit` bytes (the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function listenError(err: Error, options: AdminOptions): Error {
  const where = `${hostForUrl(options.host)}:${options.port}`;
  if (isErrnoException(err, 'EADDRINUSE')) return new UsageError(`--admin ${where}: the address is in use; pick another port`);
  if (isErrnoException(err, 'EADDRNOTAVAIL')) return new UsageError(`--admin ${where}: no such address on this machine`);
  if (isErrnoException(err, 'EACCES')) return new UsageError(`--admin ${where}: permission denied (ports below 1024 need privileges)`);
  return new CorralError('E_USAGE', `--admin ${where}: cannot listen (${err.message})`);
}
