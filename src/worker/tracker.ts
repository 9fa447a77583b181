import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';

interface Connection {
  /** Requests on this connection whose response has not closed yet. */
  active: number;
  idleSince: number;
  /** Upgraded (WebSocket) connections belong to the app now; never swept as idle. */
  upgraded: boolean;
  pending: Set<ServerResponse>;
}

const SWEEP_EVERY_MS = 100;

/**
 * Tracks every server the user's script listens on and every connection on
 * them, so a drain can stop accepting without resetting a connection on
 * which a request is on its way.
 */
export class ServerTracker {
  readonly #servers = new Set<net.Server>();
  readonly #connections = new Map<net.Socket, Connection>();
  #requests = 0;
  #draining = false;
  readonly #requestLimit: number;
  readonly #onLimit: () => void;

  /** `onLimit` runs once, when the request count reaches `requestLimit`. */
  constructor(requestLimit = Infinity, onLimit: () => void = () => {}) {
    this.#requestLimit = requestLimit;
    this.#onLimit = onLimit;
  }

  adopt(server: net.Server, isTls: boolean): void {
    if (this.#servers.has(server)) return;
    this.#servers.add(server);
    server.on(isTls ? 'secureConnection' : 'connection', (socket: net.Socket) => this.#track(socket));
    server.on('upgrade', (req: IncomingMessage) => {
      const conn = this.#connections.get(req.socket);
      if (conn) conn.upgraded = true;
    });
    // Runs before the app's handler so the keep-alive decision is made first.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    server.once('close', () => this.#servers.delete(server));
  }

  connectionCount(): number {
    return this.#connections.size;
  }

  requestCount(): number {
    return this.#requests;
  }

  /**
   * Stop accepting, let requests in flight finish, then call `done` once no
   * connection is left. The caller's grace timer bounds how long this takes.
   */
  drain(idleCloseMs: number, done: () => void): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const server of this.#servers) stopAccepting(server);
    for (const conn of this.#connections.values()) {
      for (const res of conn.pending) refuseKeepAlive(res);
    }
    const sweep = (): void => {
      this.#closeIdle(idleCloseMs);
      if (this.#connections.size === 0) {
        clearInterval(timer);
        done();
      }
    };
    const timer = setInterval(sweep, SWEEP_EVERY_MS);
    sweep();
  }

  #track(socket: net.Socket): void {
    const conn: Connection = { active: 0, idleSince: Date.now(), upgraded: false, pending: new Set() };
    this.#connections.set(socket, conn);
    socket.once('close', () => this.#connections.delete(socket));
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.#requests += 1;
    if (this.#requests === this.#requestLimit) this.#onLimit();
    const conn = this.#connections.get(req.socket);
    if (this.#draining) refuseKeepAlive(res);
    if (!conn) return;
    conn.active += 1;
    conn.pending.add(res);
    res.once('close', () => {
      conn.active -= 1;
      conn.pending.delete(res);
      conn.idleSince = Date.now();
    });
  }

  #closeIdle(idleCloseMs: number): void {
    const now = Date.now();
    for (const [socket, conn] of this.#connections) {
      if (conn.active === 0 && !conn.upgraded && now - conn.idleSince >= idleCloseMs) socket.destroy();
    }
  }
}

/**
 * http.Server#close() also closes idle keep-alive connections at once (Node
 * >= 19); a client that is just sending its next request on one would get
 * ECONNRESET. net.Server#close() only stops accepting.
 */
function stopAccepting(server: net.Server): void {
  if (server.listening) net.Server.prototype.close.call(server);
}

function refuseKeepAlive(res: ServerResponse): void {
  if (res.headersSent) return;
  res.shouldKeepAlive = false;
}
