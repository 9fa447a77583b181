import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { WebSocketGoodbye, isWebSocketUpgrade } from './websocket.js';

/**
 * Who decides when a connection ends: corral for HTTP/1 and HTTP/2 (it
 * knows when a request or stream is in flight), the app for upgraded
 * (WebSocket) connections and for raw TCP/TLS servers, whose protocol
 * corral cannot see.
 */
type Owner = 'http' | 'h2' | 'upgraded' | 'raw';

interface Connection {
  owner: Owner;
  /** Requests (HTTP/1) or streams (HTTP/2) on this connection not finished yet. */
  active: number;
  /** Of those, Engine.IO long-polls: held by design until the server has something to say. */
  longPolls: number;
  /** An upgraded connection that speaks WebSocket: how corral closes it cleanly. */
  ws?: WebSocketGoodbye;
  idleSince: number;
  pending: Set<ServerResponse>;
  session?: Http2Session;
  /** When the HTTP/2 shutdown notice (GOAWAY with the highest stream id) went out. */
  noticeAt?: number;
}

const SWEEP_EVERY_MS = 100;
/** Highest HTTP/2 stream id: a GOAWAY carrying it announces shutdown while still accepting streams in flight (RFC 9113 §6.8). */
const MAX_STREAM_ID = 2 ** 31 - 1;
const HTTP2_NO_ERROR = 0;

/** The record of a connection: tagged on its TCP socket, reached from a TLS socket or an HTTP/2 session's socket proxy too. */
const RECORD = Symbol('corral.connection');

type Tagged = net.Socket & { [RECORD]?: Connection; _parent?: Tagged | null };

function recordOf(socket: unknown): Connection | undefined {
  const s = socket as Tagged | undefined;
  // A TLS socket wraps the TCP socket we tagged (its _parent); an HTTP/2 session's socket is a proxy that reads through.
  return s?.[RECORD] ?? s?._parent?.[RECORD];
}

function isHttp2Server(server: net.Server): boolean {
  const name = server.constructor.name;
  return name === 'Http2Server' || name === 'Http2SecureServer';
}

/**
 * Tracks every server the user's script listens on and every connection on
 * them, from the TCP `connection` event (a TLS handshake in progress is a
 * connection a request is on its way on), so a drain can stop accepting
 * without resetting any of them.
 */
export class ServerTracker {
  /** Servers listening (or closed but not yet quiet), the ones a drain stops. */
  readonly #servers = new Set<net.Server>();
  readonly #adopted = new WeakSet<net.Server>();
  readonly #connections = new Map<net.Socket, Connection>();
  #onSessionElsewhere: (() => void) | undefined;
  #requests = 0;
  #draining = false;
  #idleCloseMs = 1000;
  readonly #requestLimit: number;
  readonly #onLimit: () => void;

  /**
   * `onLimit` runs once, when the request count reaches `requestLimit`.
   * `onSessionElsewhere` (only without --sticky): called once, the first time
   * the app answers an Engine.IO polling request 400 ("Session ID unknown"):
   * the session lives on another worker, and the user needs to hear why.
   */
  constructor(requestLimit = Infinity, onLimit: () => void = () => {}, onSessionElsewhere?: () => void) {
    this.#requestLimit = requestLimit;
    this.#onLimit = onLimit;
    this.#onSessionElsewhere = onSessionElsewhere;
  }

  adopt(server: net.Server): void {
    this.#servers.add(server);
    // A server that closes and listens again is adopted again: its listeners are already on.
    if (this.#adopted.has(server)) return;
    this.#adopted.add(server);
    const isHttp1 = server instanceof http.Server || server instanceof https.Server;
    const isH2 = isHttp2Server(server);
    const owner: Owner = isHttp1 || isH2 ? 'http' : 'raw';
    server.on('connection', (socket: net.Socket) => this.#track(socket, owner));
    // 'close' comes once the old connections have ended: by then the app may have listened again.
    server.on('close', () => {
      if (!server.listening) this.#servers.delete(server);
    });
    if (isH2) {
      server.on('session', (session: Http2Session) => this.#onSession(session));
      // A 'request' listener switches an HTTP/2 server into its compatibility mode: join only if the app uses it.
      this.#joinWhenAppListens(server, 'request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    }
    if (!isHttp1) return;
    // Any 'upgrade' listener makes http.Server stop serving upgrade requests as plain ones: join only if the app has one.
    this.#joinWhenAppListens(server, 'upgrade', (req: IncomingMessage, socket: net.Socket) => {
      const conn = recordOf(req.socket);
      if (!conn) return;
      conn.owner = 'upgraded';
      if (isWebSocketUpgrade(req)) conn.ws = new WebSocketGoodbye(socket);
    });
    // Runs before the app's handler so the keep-alive decision is made first.
    server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
  }

  /** Prepend `listener` for `event` once the app has a listener of its own for it. */
  #joinWhenAppListens(server: net.Server, event: string, listener: (...args: any[]) => void): void {
    let joined = false;
    const join = (): void => {
      if (joined) return;
      joined = true;
      server.prependListener(event, listener);
    };
    if (server.listenerCount(event) > 0) join();
    else server.on('newListener', (name: string | symbol) => name === event && join());
  }

  connectionCount(): number {
    return this.#connections.size;
  }

  requestCount(): number {
    return this.#requests;
  }

  /** Upgraded (WebSocket) connections open now: clients that a close would send reconnecting. */
  upgradedCount(): number {
    let n = 0;
    for (const conn of this.#connections.values()) if (conn.owner === 'upgraded') n += 1;
    return n;
  }

  /**
   * Stop accepting, let HTTP requests and HTTP/2 streams in flight finish,
   * then call `done` once only app-owned connections are left (the app's
   * shutdown hooks run next). An Engine.IO long-poll is not waited for: it
   * is answered only when the server has something to send (at the latest
   * its 25 s ping), so it would hold every drain to the grace. The primary's
   * grace timer bounds all of it.
   */
  drain(idleCloseMs: number, done: () => void): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#idleCloseMs = idleCloseMs;
    for (const server of this.#servers) stopAccepting(server);
    for (const conn of this.#connections.values()) {
      for (const res of conn.pending) refuseKeepAlive(res);
      if (conn.session) this.#noticeShutdown(conn);
    }
    const sweep = (): void => {
      this.#closeIdle();
      if ([...this.#connections.values()].every((c) => !holdsDrain(c))) {
        clearInterval(timer);
        done();
      }
    };
    const timer = setInterval(sweep, SWEEP_EVERY_MS);
    sweep();
  }

  /**
   * After the shutdown hooks: WebSockets the app left open get a Close frame
   * with 1001 "going away" and end once the client answered; other upgraded
   * connections, idle keep-alive connections and held long-polls are closed
   * (the client reconnects); raw TCP connections are waited for (corral
   * cannot tell whether one is mid-message), then `done`.
   */
  finish(done: () => void): void {
    for (const [socket, conn] of this.#connections) sayGoodbye(socket, conn);
    const check = (): void => {
      if (this.#connections.size > 0) return;
      clearInterval(timer);
      done();
    };
    const timer = setInterval(check, SWEEP_EVERY_MS);
    check();
  }

  #track(socket: net.Socket, owner: Owner): void {
    const conn: Connection = { owner, active: 0, longPolls: 0, idleSince: Date.now(), pending: new Set() };
    (socket as Tagged)[RECORD] = conn;
    this.#connections.set(socket, conn);
    socket.once('close', () => this.#connections.delete(socket));
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    // An HTTP/2 compatibility request is one of its session's streams, counted there.
    if ('stream' in req) return;
    this.#countRequest();
    if (this.#onSessionElsewhere && isEngineIoSession(req)) this.#watchSessionAnswer(res);
    const conn = recordOf(req.socket);
    if (this.#draining) refuseKeepAlive(res);
    if (!conn) return;
    const longPoll = isLongPoll(req);
    conn.active += 1;
    if (longPoll) conn.longPolls += 1;
    conn.pending.add(res);
    res.once('close', () => {
      conn.active -= 1;
      if (longPoll) conn.longPolls -= 1;
      conn.pending.delete(res);
      conn.idleSince = Date.now();
    });
  }

  #watchSessionAnswer(res: ServerResponse): void {
    res.once('finish', () => {
      if (res.statusCode !== 400 || !this.#onSessionElsewhere) return;
      const tell = this.#onSessionElsewhere;
      this.#onSessionElsewhere = undefined;
      tell();
    });
  }

  #onSession(session: Http2Session): void {
    const conn = recordOf(session.socket);
    if (!conn) return;
    conn.owner = 'h2';
    conn.session = session;
    session.on('stream', (stream: ServerHttp2Stream) => {
      this.#countRequest();
      conn.active += 1;
      stream.once('close', () => {
        conn.active -= 1;
        conn.idleSince = Date.now();
      });
    });
    if (this.#draining) this.#noticeShutdown(conn);
  }

  #countRequest(): void {
    this.#requests += 1;
    if (this.#requests === this.#requestLimit) this.#onLimit();
  }

  /**
   * HTTP/2's graceful shutdown: a GOAWAY with the highest stream id first
   * (clients open no new streams, those already on the wire are still
   * served), the final close once the session is quiet.
   */
  #noticeShutdown(conn: Connection): void {
    const session = conn.session;
    if (!session || conn.noticeAt !== undefined || session.closed || session.destroyed) return;
    conn.noticeAt = Date.now();
    session.goaway(HTTP2_NO_ERROR, MAX_STREAM_ID);
  }

  #closeIdle(): void {
    const now = Date.now();
    for (const [socket, conn] of this.#connections) {
      if (conn.active > 0) continue;
      if (conn.owner === 'http' && now - conn.idleSince >= this.#idleCloseMs) socket.destroy();
      // Streams a client sent before it saw the notice have had a round trip's worth of time to arrive.
      if (conn.owner === 'h2' && conn.session && now - (conn.noticeAt ?? now) >= this.#idleCloseMs && !conn.session.closed) conn.session.close();
    }
  }
}

/** An HTTP/1 or HTTP/2 connection whose requests the drain waits for (long-polls aside). */
function holdsDrain(conn: Connection): boolean {
  if (conn.owner === 'h2') return true;
  return conn.owner === 'http' && !(conn.active > 0 && conn.active === conn.longPolls);
}

/**
 * Engine.IO's (Socket.IO's) polling transport: a GET carrying the session id
 * that the server holds open until it has packets to send. Recognised by the
 * protocol's query (EIO=, transport=polling, sid=), whatever path the app
 * mounts it on.
 */
export function isLongPoll(req: IncomingMessage): boolean {
  return req.method === 'GET' && isEngineIoSession(req);
}

/** A request of an Engine.IO session (a poll or a post): it must reach the worker holding the session. */
export function isEngineIoSession(req: IncomingMessage): boolean {
  const url = req.url;
  return url !== undefined && url.includes('transport=polling') && /[?&]sid=/.test(url) && /[?&]EIO=\d/.test(url);
}

function sayGoodbye(socket: net.Socket, conn: Connection): void {
  if (conn.owner === 'raw' || conn.owner === 'h2') return;
  if (conn.owner === 'http' && conn.active > conn.longPolls) return;
  const ws = conn.ws;
  if (!ws || !ws.frames.isWebSocket) {
    socket.destroy();
    return;
  }
  ws.goAway('server going away');
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
