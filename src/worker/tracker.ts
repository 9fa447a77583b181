import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

/**
 * Who decides when a connection ends: corral for HTTP (it knows when a
 * request is in flight), the app for upgraded (WebSocket) connections and
 * for raw TCP/TLS servers, whose protocol corral cannot see.
 */
type Owner = 'http' | 'upgraded' | 'raw';

interface Connection {
  owner: Owner;
  /** Requests on this connection whose response has not closed yet. */
  active: number;
  idleSince: number;
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

  adopt(server: net.Server): void {
    if (this.#servers.has(server)) return;
    this.#servers.add(server);
    const isHttp = server instanceof http.Server || server instanceof https.Server;
    const owner: Owner = isHttp ? 'http' : 'raw';
    server.on(server instanceof tls.Server ? 'secureConnection' : 'connection', (socket: net.Socket) => this.#track(socket, owner));
    server.once('close', () => this.#servers.delete(server));
    if (!isHttp) return;
    this.#watchUpgrades(server);
    // Runs before the app's handler so the keep-alive decision is made first.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
  }

  /**
   * A listener on 'upgrade' changes how http.Server treats upgrade requests
   * (with none, they are served as plain requests), so ours joins only once
   * the app has one of its own.
   */
  #watchUpgrades(server: net.Server): void {
    const mark = (req: IncomingMessage): void => {
      const conn = this.#connections.get(req.socket);
      if (conn) conn.owner = 'upgraded';
    };
    let watching = false;
    const watch = (): void => {
      if (watching) return;
      watching = true;
      server.prependListener('upgrade', mark);
    };
    if (server.listenerCount('upgrade') > 0) watch();
    else server.on('newListener', (event: string | symbol) => event === 'upgrade' && watch());
  }

  connectionCount(): number {
    return this.#connections.size;
  }

  requestCount(): number {
    return this.#requests;
  }

  /**
   * Stop accepting, let HTTP requests in flight finish, then call `done`
   * once only app-owned connections are left (the app's shutdown hooks run
   * next). The primary's grace timer bounds all of it.
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
      if ([...this.#connections.values()].every((c) => c.owner !== 'http')) {
        clearInterval(timer);
        done();
      }
    };
    const timer = setInterval(sweep, SWEEP_EVERY_MS);
    sweep();
  }

  /**
   * After the shutdown hooks: upgraded connections the app left open are
   * closed; raw TCP connections are waited for (corral cannot tell whether
   * one is mid-message), then `done`.
   */
  finish(done: () => void): void {
    for (const [socket, conn] of this.#connections) if (conn.owner === 'upgraded') socket.destroy();
    const check = (): void => {
      if (this.#connections.size > 0) return;
      clearInterval(timer);
      done();
    };
    const timer = setInterval(check, SWEEP_EVERY_MS);
    check();
  }

  #track(socket: net.Socket, owner: Owner): void {
    const conn: Connection = { owner, active: 0, idleSince: Date.now(), pending: new Set() };
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
      if (conn.owner === 'http' && conn.active === 0 && now - conn.idleSince >= idleCloseMs) socket.destroy();
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
